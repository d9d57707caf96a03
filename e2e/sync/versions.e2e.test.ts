// Sync across server versions: the source is the server under test (REDIS_SERVER, Debian's by
// default), the targets are the same server and the newest Redis and Valkey of the servers'
// folder when they are newer. A snapshot of every type, then live writes, then a compare: the
// portable payloads restore whatever the pair (an 8.6 source into 7.x is covered by running
// the matrix, where each server is the source once and newer ones are targets).
import { RedisSync } from '@redis-events/replication';
import {
  findServer,
  listServers,
  type ServerBinary,
  type SpawnedRedis,
  spawnRedis,
  versionAtLeast,
} from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences, writeChanges, writeData } from './helpers.ts';

function newer(a: ServerBinary, b: ServerBinary): boolean {
  const va = a.version;
  const vb = b.version;
  return va.major !== vb.major
    ? va.major > vb.major
    : va.minor !== vb.minor
      ? va.minor > vb.minor
      : va.patch > vb.patch;
}

const sourceBinary = await findServer();
const all = await listServers(process.env.REDIS_SERVERS_DIR).catch(() => []);
const newest = (flavor: 'redis' | 'valkey') =>
  all
    .filter((s) => s.version.flavor === flavor)
    .reduce<ServerBinary | undefined>((best, s) => (!best || newer(s, best) ? s : best), undefined);
const targets: ServerBinary[] = [sourceBinary];
for (const flavor of ['redis', 'valkey'] as const) {
  const candidate = newest(flavor);
  // Newer than the source: a Valkey target counts as newer than any Redis up to 7.2 it forked from.
  if (!candidate || candidate.path === sourceBinary.path) continue;
  const isNewer =
    candidate.version.flavor === sourceBinary.version.flavor
      ? newer(candidate, sourceBinary)
      : candidate.version.flavor === 'valkey' && !versionAtLeast(sourceBinary.version, '7.4');
  if (isNewer) targets.push(candidate);
}

describe(`sync from ${sourceBinary.version.text}`, () => {
  let source: SpawnedRedis;
  beforeAll(async () => {
    source = await spawnRedis({ binary: sourceBinary });
  });
  afterAll(async () => {
    await source?.stop();
  });

  for (const binary of targets) {
    it(`into ${binary.version.text}: snapshot, live writes, nothing different`, async () => {
      await source.flushAll();
      const target = await spawnRedis({ binary });
      try {
        const client = source.createClient();
        await writeData(client, 'v:');
        await client.select(5);
        await client.set('other-db', 'x');
        await client.select(0);
        const sync = new RedisSync({ source: source.url, target: target.url });
        void sync.run().catch(() => {});
        await sync.caughtUp({ timeoutMs: 60_000 });
        for (let round = 0; round < 20; round++) await writeChanges(client, 'v:', round);
        await sync.caughtUp({ timeoutMs: 60_000 });
        expect(await differences({ source: source.url, target: target.url })).toEqual([]);
        await sync.close();
      } finally {
        await target.stop();
      }
    });
  }
});
