// A sync over TLS with ACL users on both sides: the source's user has only what replication
// and the key re-reads need, the target's only what writing needs. A wrong password or an
// unknown certificate authority fail at once, with the address and the reason.
import { RedisSync, ReplicationError } from '@redis-events/replication';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences } from './helpers.ts';

describe('TLS and ACL users', () => {
  let source: SpawnedRedis;
  let target: SpawnedRedis;
  let sourceUrl: string;
  let targetUrl: string;
  beforeAll(async () => {
    source = await spawnRedis({ tls: true });
    target = await spawnRedis({ tls: true });
    const reader = await source.createUser({
      username: 'syncer',
      password: 'read-secret',
      rules: [
        '~*',
        '+@connection',
        '+psync',
        '+replconf',
        '+ping',
        '+dump',
        '+pexpiretime',
        '+role',
        '+multi',
        '+exec',
        '+select',
        '+info',
      ],
    });
    const writer = await target.createUser({
      username: 'loader',
      password: 'write-secret',
      rules: [
        '~*',
        '&*',
        '+@connection',
        '+@write',
        '+@read',
        '+select',
        '+info',
        '+restore',
        '+function',
        '+multi',
        '+exec',
      ],
    });
    sourceUrl = reader.url;
    targetUrl = writer.url;
  });
  afterAll(async () => {
    await source?.stop();
    await target?.stop();
  });

  it('copies and follows over TLS, as users with only the rights a sync needs', async () => {
    const client = source.createClient();
    await client.mset('a', '1', 'b', '2');
    await client.hset('h', 'f', 'v');
    const tls = source.tls as NonNullable<SpawnedRedis['tls']>;
    const options = { ca: tls.ca, cert: tls.cert, key: tls.key };
    const sync = new RedisSync({ source: { url: sourceUrl, tls: options }, target: { url: targetUrl, tls: options } });
    void sync.run().catch(() => {});
    await sync.caughtUp({ timeoutMs: 30_000 });
    await client.set('c', '3');
    await client.rename('a', 'a2');
    await sync.caughtUp();
    const admin = (server: SpawnedRedis) => ({ url: server.url, tls: options });
    expect(await differences({ source: admin(source), target: admin(target) })).toEqual([]);
    await sync.close();
  });

  it('fails at once on a wrong password or an unknown certificate authority, naming the server', async () => {
    const tls = source.tls as NonNullable<SpawnedRedis['tls']>;
    const options = { ca: tls.ca, cert: tls.cert, key: tls.key };
    const wrong = targetUrl.replace('write-secret', 'nope');
    const denied = (await new RedisSync({
      source: { url: sourceUrl, tls: options },
      target: { url: wrong, tls: options },
    })
      .run()
      .catch((e: unknown) => e)) as ReplicationError;
    expect(denied).toBeInstanceOf(ReplicationError);
    expect(denied.code).toBe('ERR_SYNC_TARGET');
    expect(denied.message).toMatch(/WRONGPASS|invalid username-password/);
    expect(denied.message).toContain(`127.0.0.1:${target.port}`);
    const untrusted = (await new RedisSync({ source: { url: sourceUrl }, target: { url: targetUrl, tls: options } })
      .run()
      .catch((e: unknown) => e)) as ReplicationError;
    expect(untrusted.code).toBe('ERR_REPLICATION_CONNECT');
    expect(untrusted.message).toMatch(/certificate/);
  });
});
