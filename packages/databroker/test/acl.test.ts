// The README's minimal ACL, exactly: the backend needs nothing more (no scripting, no admin), and
// with the default scripting: 'auto' it finds out by itself that scripts are refused and commits
// with WATCH/MULTI. With the scripting additions it uses scripts. Also Pomerium's recommended ACL,
// which forbids scripting, dangerous and connection commands.
import { type SpawnedRedis, spawnRedis, startCluster } from '@redis-events/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataBroker } from '../src/index.ts';
import type { RedisClient } from '../src/link.ts';
import { collect, rejection, take, uniqueName } from './helpers.ts';

/** The rules printed in the README under "Minimal ACL", for a backend named `name`. */
function minimalAcl(name: string): string[] {
  return [
    `~{${name}}:*`,
    `&{${name}}:*`,
    '+get',
    '+set',
    '+del',
    '+hget',
    '+hmget',
    '+hset',
    '+hsetnx',
    '+hdel',
    '+hincrby',
    '+sadd',
    '+smembers',
    '+zadd',
    '+zrem',
    '+zcard',
    '+zrange',
    '+zrangebylex',
    '+zrangebyscore',
    '+zremrangebyscore',
    '+time',
    '+watch',
    '+unwatch',
    '+multi',
    '+exec',
    '+publish',
    '+subscribe',
  ];
}

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server.stop());

async function everything(
  client: () => RedisClient,
  name: string,
  extra: { scripting?: boolean },
  mode: 'script' | 'watch',
): Promise<void> {
  const backgroundErrors: Error[] = [];
  const db = new DataBroker(client(), {
    name,
    expiryMs: 60_000,
    cleanupIntervalMs: 50,
    pollIntervalMs: 60_000,
    logger: { debug() {}, warn() {}, error: (context) => backgroundErrors.push((context as { err: Error }).err) },
    ...extra,
  });
  const other = new DataBroker(client(), { name, expiryMs: 0, ...extra });
  try {
    await db.setOptions('t', { capacity: 2, indexableFields: ['k'] });
    expect(await db.getOptions('t')).toEqual({ capacity: 2, indexableFields: ['k'] });
    const { serverVersion } = await db.put([
      { type: 't', id: 'a', data: { k: 1 } },
      { type: 't', id: 'b', data: { k: 2 } },
      { type: 't', id: 'c', data: { k: 3 } },
    ]);
    expect(db.stats.commitMode).toBe(mode);
    expect(await db.get('t', 'a')).toBeUndefined(); // evicted by capacity
    expect((await db.get('t', 'c'))?.data).toEqual({ k: 3 });
    expect(await db.listTypes()).toEqual(['t']);
    const latest = await db.syncLatest('t', { k: 3 });
    expect((await collect(latest.stream)).map((r) => r.id)).toEqual(['c']);
    const stream = db.sync('', serverVersion, latest.recordVersion);
    const woken = take(stream, 1); // the poll interval is a minute: only Pub/Sub wakes it in time
    await new Promise((resolve) => setTimeout(resolve, 100));
    await other.put([{ type: 't', id: 'd', deletedAt: new Date() }]);
    expect((await woken)[0]?.id).toBe('d');
    await stream.close();
    expect(await db.lease('job', 'me', 10_000)).toBe(true);
    expect(await other.lease('job', 'you', 10_000)).toBe(false);
    expect(await db.lease('job', 'me', 20_000)).toBe(true);
    expect(await db.lease('job', 'me', 0)).toBe(false);
    expect(await db.removeChangesBefore(new Date(Date.now() + 1000))).toBeGreaterThan(0);
    expect((await db.versions()).earliestRecordVersion).toBeGreaterThan(0);
    await db.clear();
    expect((await db.versions()).serverVersion).not.toBe(serverVersion);
    await new Promise((resolve) => setTimeout(resolve, 120)); // a background cleanup pass or two
    expect(backgroundErrors).toEqual([]);
  } finally {
    await Promise.all([db.close(), other.close()]);
  }
}

function users(rules: string[], username: string): Promise<() => Redis> & { clients: Redis[] } {
  const clients: Redis[] = [];
  const made = server.createUser({ username, password: 'pw', rules }).then((user) => () => {
    // INFO is not in the minimal ACL: the ready check would only warn, so it is turned off.
    const c = new Redis({ ...user.connection, enableReadyCheck: false });
    clients.push(c);
    return c;
  });
  return Object.assign(made, { clients });
}

const SCRIPTING = ['+evalsha', '+eval', '+lpush', '+ltrim', '+lrange'];

describe('with the README minimal ACL', () => {
  it('runs every operation, falling back to WATCH/MULTI on its own (scripting refused)', async () => {
    const name = uniqueName('acl');
    const made = users(minimalAcl(name), 'databroker');
    try {
      await everything(await made, name, {}, 'watch');
    } finally {
      for (const c of made.clients) c.disconnect();
    }
  });

  it('is refused outside its name, with an error that points at the ACL', async () => {
    const name = uniqueName('acl');
    const user = await server.createUser({ username: 'narrow', password: 'pw', rules: minimalAcl(name) });
    const client = new Redis({ ...user.connection, enableReadyCheck: false });
    const db = new DataBroker(client, { name: `${name}-other`, expiryMs: 0 });
    try {
      const err = await rejection(db.put([{ type: 't', id: 'a', data: 1 }]));
      expect(err.code).toBe('ERR_DATABROKER_REDIS');
      expect(err.message).toMatch(/NOPERM.*Minimal ACL/);
    } finally {
      await db.close();
      client.disconnect();
    }
  });
});

describe('with the README minimal ACL and its additions for scripting', () => {
  it('runs every operation with scripts, by default and with scripting: true', async () => {
    const name = uniqueName('acl');
    const made = users([...minimalAcl(name), ...SCRIPTING], 'scripted');
    try {
      await everything(await made, name, {}, 'script');
      await everything(await made, name, { scripting: true }, 'script');
    } finally {
      for (const c of made.clients) c.disconnect();
    }
  });

  it('uses WATCH/MULTI when one command the scripts need is refused, and writes nothing half', async () => {
    const name = uniqueName('acl');
    const made = users([...minimalAcl(name), '+evalsha', '+eval', '+lrange'], 'halfscripted'); // no LPUSH
    try {
      await everything(await made, name, {}, 'watch');
      const strict = new DataBroker((await made)(), { name, expiryMs: 0, scripting: true });
      const err = await rejection(strict.put([{ type: 't', id: 'x', data: 1 }]));
      expect(err.code).toBe('ERR_DATABROKER_REDIS');
      expect(err.message).toMatch(/may not run LPUSH, LTRIM.*scripting: true/);
      expect(await strict.get('t', 'x').catch(() => undefined)).toBeUndefined();
      await strict.close();
    } finally {
      for (const c of made.clients) c.disconnect();
    }
  });

  it('falls back to WATCH/MULTI when scripting is taken away at run time', async () => {
    const name = uniqueName('acl');
    const rules = [...minimalAcl(name), ...SCRIPTING];
    const made = users(rules, 'revoked');
    const warnings: string[] = [];
    const db = new DataBroker((await made)(), {
      name,
      expiryMs: 0,
      logger: { debug() {}, warn: (_, message) => warnings.push(message), error() {} },
    });
    try {
      expect(await db.lease('l', 'me', 10_000)).toBe(true); // by script
      expect(db.stats.commitMode).toBe('script');
      await server.command('ACL', 'SETUSER', 'revoked', '-evalsha', '-eval');
      expect(await db.lease('l', 'me', 10_000)).toBe(true); // refused as a script, done by WATCH/MULTI
      expect(db.stats.commitMode).toBe('watch');
      expect(warnings.join('\n')).toMatch(/scripting was refused.*WATCH\/MULTI from now on/);
      await db.put([{ type: 't', id: 'a', data: 1 }]);
      expect((await db.get('t', 'a'))?.data).toBe(1);
    } finally {
      await db.close();
      for (const c of made.clients) c.disconnect();
    }
  });

  it('without them, says that the ACL lacks scripting when scripting: true', async () => {
    const name = uniqueName('acl');
    const user = await server.createUser({ username: 'unscripted', password: 'pw', rules: minimalAcl(name) });
    const client = new Redis({ ...user.connection, enableReadyCheck: false });
    const db = new DataBroker(client, { name, expiryMs: 0, scripting: true });
    try {
      const err = await rejection(db.put([{ type: 't', id: 'a', data: 1 }]));
      expect(err.code).toBe('ERR_DATABROKER_REDIS');
      expect(err.message).toMatch(/may not run EVAL.*scripting: true.*Minimal ACL/);
    } finally {
      await db.close();
      client.disconnect();
    }
  });
});

describe('a script cache emptied under the backend (SCRIPT FLUSH, a restart, a failover)', () => {
  it('loads the scripts again (NOSCRIPT, then EVAL) and goes on', async () => {
    const db = new DataBroker(server.createClient(), { name: uniqueName('noscript'), expiryMs: 0, scripting: true });
    try {
      await db.put([{ type: 't', id: 'a', data: 1 }]);
      await server.command('SCRIPT', 'FLUSH');
      const { records } = await db.put([{ type: 't', id: 'b', data: 2 }]);
      expect(records[0]?.version).toBe(2);
      await server.command('SCRIPT', 'FLUSH');
      expect(await db.lease('l', 'me', 1000)).toBe(true);
    } finally {
      await db.close();
    }
  });
});

describe('with the README minimal ACL on a cluster (plus what a Cluster client needs)', () => {
  it('runs every operation', async () => {
    await using cluster = await startCluster({ masters: 3 });
    const name = uniqueName('acl');
    const rules = [...minimalAcl(name), '+cluster|slots', '+cluster|info'];
    for (const node of cluster.nodes) await node.createUser({ username: 'databroker', password: 'pw', rules });
    const clients: Cluster[] = [];
    try {
      await everything(
        () => {
          const c = new Cluster(cluster.startupNodes, {
            redisOptions: { username: 'databroker', password: 'pw', enableReadyCheck: false },
          } as never);
          clients.push(c);
          return c;
        },
        name,
        {},
        'watch',
      );
    } finally {
      for (const c of clients) c.disconnect();
    }
  }, 60_000);
});

describe("with Pomerium's recommended ACL (no scripting, dangerous, admin or connection commands)", () => {
  it('runs every operation', async () => {
    const name = uniqueName('pomerium');
    const user = await server.createUser({
      username: 'pomerium',
      password: 'pw',
      rules: ['~*', '&*', '+@all', '-@scripting', '-@dangerous', '-@admin', '-@connection'],
    });
    const clients: Redis[] = [];
    try {
      await everything(
        () => {
          const c = new Redis({ ...user.connection, enableReadyCheck: false });
          clients.push(c);
          return c;
        },
        name,
        {},
        'watch',
      );
    } finally {
      for (const c of clients) c.disconnect();
    }
  });
});
