// @redis-events/resp/ioredis against real servers: a standalone Redis, a Cluster, TLS, ACL users
// and a paused proxy.
import { getEventListeners } from 'node:events';
import {
  type RedisCluster,
  type SpawnedRedis,
  spawnRedis,
  startCluster,
  startProxy,
  type TcpProxy,
} from '@redis-events/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisEventsError, RespError } from '../src/errors.ts';
import {
  type ConnectFailure,
  describeAddress,
  isCluster,
  isRedisClient,
  isTransientError,
  LuaScript,
  replyPrefix,
  runScript,
  ScriptRunner,
  waitUntilReady,
} from '../src/ioredis.ts';
import { keySlot } from '../src/key-slot.ts';

let server: SpawnedRedis;
let cluster: RedisCluster;
const clients: (Redis | Cluster)[] = [];

/** A client closed after the file, whatever happens. */
function track<C extends Redis | Cluster>(client: C): C {
  clients.push(client);
  client.on('error', () => {}); // the tests read failures from the calls
  return client;
}

beforeAll(async () => {
  [server, cluster] = await Promise.all([spawnRedis({ password: 'pw' }), startCluster({ masters: 3 })]);
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await Promise.all([server?.stop(), cluster?.stop()]);
});

/** The error a promise rejects with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

describe('client type and cluster detection', () => {
  it('tells a Cluster from a Redis by flag', () => {
    const redis = track(server.createClient({ lazyConnect: true }));
    const clusterClient = track(cluster.createClient({ lazyConnect: true }));
    expect(isCluster(redis)).toBe(false);
    expect(isCluster(clusterClient)).toBe(true);
    expect(isCluster({ isCluster: true })).toBe(true); // another copy of ioredis
    expect(isCluster(null)).toBe(false);
    expect(isRedisClient(redis)).toBe(true);
    expect(isRedisClient(clusterClient)).toBe(true);
    expect(isRedisClient({ call() {} })).toBe(false);
    expect(isRedisClient('redis://127.0.0.1')).toBe(false);
  });

  it('describes where a client connects', () => {
    const lazy = { lazyConnect: true } as const;
    expect(describeAddress(track(new Redis({ host: 'cache', port: 6380, ...lazy })))).toBe('cache:6380');
    expect(describeAddress(track(new Redis({ path: '/run/redis.sock', ...lazy })))).toBe('unix:/run/redis.sock');
    expect(describeAddress(track(new Redis({ port: 6390, tls: {}, ...lazy })))).toBe('localhost:6390 (TLS)');
    expect(describeAddress(track(new Redis({ sentinels: [{ host: 's1', port: 26379 }], name: 'main', ...lazy })))).toBe(
      'sentinel master "main" via s1:26379',
    );
    const nodes = [{ host: '10.0.0.1', port: 7000 }, 7001, '10.0.0.3:7002'];
    expect(describeAddress(track(new Cluster(nodes, lazy)))).toBe('cluster 10.0.0.1:7000,127.0.0.1:7001,10.0.0.3:7002');
  });
});

describe('runScript', () => {
  const INCR = new LuaScript("return redis.call('INCRBY', KEYS[1], ARGV[1])", { name: 'incr', keys: 1 });
  const APPEND = new LuaScript("return redis.call('RPUSH', KEYS[1], ARGV[1])", { name: 'append', keys: 1 });
  const READ = new LuaScript("return redis.call('LRANGE', KEYS[1], 0, -1)");
  const CLEAR = new LuaScript("return redis.call('DEL', KEYS[1])", { keys: 1 });

  it('runs a script, with its keys prefixed and string or Buffer replies', async () => {
    const client = track(server.createClient({ keyPrefix: 'pre:' }));
    expect(await runScript(client, INCR, ['n'], [5])).toBe(5);
    expect(await server.command('GET', 'pre:n')).toBe('5');
    await runScript(client, APPEND, ['l'], ['é']);
    expect(await runScript(client, READ, ['l'], [], { buffers: true })).toEqual([Buffer.from('é')]);
    expect(await runScript(client, READ, ['l'], [])).toEqual(['é']);
  });

  it('keeps the order of calls on a fresh connection and after the server lost its scripts', async () => {
    await server.command('SCRIPT', 'FLUSH');
    const client = track(server.createClient());
    const calls: Promise<unknown>[] = [];
    const run = (n: number) => calls.push(runScript(client, APPEND, ['order'], [n]));
    for (let n = 0; n < 5; n++) run(n);
    calls.push(runScript(client, CLEAR, ['order'], []));
    for (let n = 5; n < 8; n++) run(n);
    const read = runScript(client, READ, ['order'], []);
    await Promise.all(calls);
    expect(await read).toEqual(['5', '6', '7']);

    await server.command('SCRIPT', 'FLUSH'); // the connection stays; the server forgets the scripts
    const again: Promise<unknown>[] = [];
    for (let n = 0; n < 5; n++) again.push(runScript(client, APPEND, ['order2'], [n]));
    again.push(runScript(client, CLEAR, ['order2'], []));
    for (let n = 5; n < 8; n++) again.push(runScript(client, APPEND, ['order2'], [n]));
    const reread = runScript(client, READ, ['order2'], []);
    await Promise.all(again);
    expect(await reread).toEqual(['5', '6', '7']);
  });

  it('keeps the order when scripts it never ran come after calls the server forgot (SCRIPT FLUSH)', async () => {
    const client = track(server.createClient());
    const PUSH = new LuaScript("return redis.call('RPUSH', KEYS[1], ARGV[1])", { keys: 1 });
    const DROP = new LuaScript("return redis.call('DEL', KEYS[1])", { keys: 1 });
    const LIST = new LuaScript("return redis.call('LRANGE', KEYS[1], 0, -1)", { keys: 1 });
    await runScript(client, PUSH, ['mixed'], ['-1']); // PUSH known; DROP and LIST not yet
    await server.command('SCRIPT', 'FLUSH');
    const calls: Promise<unknown>[] = [];
    for (let n = 0; n < 5; n++) calls.push(runScript(client, PUSH, ['mixed'], [n]));
    calls.push(runScript(client, DROP, ['mixed'], []));
    for (let n = 5; n < 8; n++) calls.push(runScript(client, PUSH, ['mixed'], [n]));
    const read = runScript(client, LIST, ['mixed'], []);
    await Promise.all(calls);
    expect(await read).toEqual(['5', '6', '7']);
  });

  it('runs scripts for a user without SCRIPT: EVALSHA, and EVAL where the server lacks one', async () => {
    const user = await server.createUser({
      username: 'noscript',
      password: 'p',
      rules: ['~*', '+@all', '-script'],
    });
    const client = track(new Redis({ port: server.port, username: user.username, password: user.password }));
    await expect(client.call('SCRIPT', 'LOAD', 'return 1')).rejects.toThrow(/NOPERM/);
    await server.command('SCRIPT', 'FLUSH');
    const calls = [1, 2, 3].map(() => runScript(client, INCR, ['acl:n'], [2]));
    calls.push(runScript(client, INCR, ['acl:n'], [5]));
    expect(await Promise.all(calls)).toEqual([2, 4, 6, 11]);
    const sha = INCR.sha;
    expect(await server.command('SCRIPT', 'EXISTS', sha)).toEqual([1]); // cached by the EVAL
    expect(await runScript(client, INCR, ['acl:n'], [1])).toBe(12);
  });

  it('shares one runner per client, knowing the scripts named up front', () => {
    const client = track(server.createClient({ lazyConnect: true }));
    expect(ScriptRunner.for(client, [INCR, APPEND])).toBe(ScriptRunner.for(client));
    expect(ScriptRunner.for(track(server.createClient({ lazyConnect: true })))).not.toBe(ScriptRunner.for(client));
  });

  it('runs on every master of a Cluster, each slot on its owner', async () => {
    const client = track(cluster.createClient());
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    const replies = await Promise.all(keys.map((k) => runScript(client, INCR, [k], [1])));
    expect(replies).toEqual(keys.map(() => 1));
    const owners = new Set(keys.map((k) => client.slots[keySlot(k)]?.[0]));
    expect(owners.size).toBe(3);
    expect(await runScript(client, INCR, ['k0'], [1])).toBe(2);
  });

  it('checks the number of keys, and reports script errors as the server sends them', async () => {
    const client = track(server.createClient());
    const err = await failure(runScript(client, INCR, ['a', 'b'], [1]));
    expect(err).toBeInstanceOf(RespError);
    expect(err).toMatchObject({ code: 'ERR_RESP_ARGUMENT' });
    expect(err.message).toBe('incr takes 1 keys, got 2');
    await client.set('str', 'x');
    const wrong = await failure(runScript(client, APPEND, ['str'], ['v']));
    expect(replyPrefix(wrong)).toBe('WRONGTYPE');
    expect(() => new LuaScript('')).toThrow(RespError);
    expect(() => new LuaScript('return 1', { keys: -1 })).toThrow(/keys must be/);
    expect(new LuaScript('return 1').name).toMatch(/^script [0-9a-f]{8}$/);
  });
});

describe('isTransientError', () => {
  it('says yes to lost, refused and closed connections', async () => {
    const refused = track(new Redis({ port: 1, lazyConnect: true, retryStrategy: () => null }));
    const err = await failure(refused.connect());
    expect(isTransientError(err)).toBe(true); // ECONNREFUSED

    const closed = track(server.createClient());
    await closed.ping();
    closed.disconnect();
    expect(isTransientError(await failure(closed.get('k')))).toBe(true); // Connection is closed.

    const limited = track(new Redis({ port: 1, maxRetriesPerRequest: 1, retryStrategy: () => 10 }));
    const retries = await failure(limited.get('k'));
    expect(retries.name).toBe('MaxRetriesPerRequestError');
    expect(isTransientError(retries)).toBe(true);
    limited.disconnect();
  });

  it('says yes to command timeouts, READONLY, MASTERDOWN, UNBLOCKED and BUSY replies', async (ctx) => {
    const replica = await spawnRedis({ config: { 'replica-serve-stale-data': 'no' } });
    ctx.onTestFinished(() => replica.stop());
    await replica.command('REPLICAOF', '127.0.0.1', '1'); // a master that never answers
    const client = track(replica.createClient());
    const readonly = await failure(client.set('k', 'v'));
    expect(replyPrefix(readonly)).toBe('READONLY');
    expect(isTransientError(readonly)).toBe(true);
    const masterdown = await failure(client.get('k'));
    expect(replyPrefix(masterdown)).toBe('MASTERDOWN');
    expect(isTransientError(masterdown)).toBe(true);
    await replica.command('REPLICAOF', 'NO', 'ONE');

    const blocked = track(replica.createClient());
    const id = await blocked.client('ID');
    const pop = failure(blocked.blpop('nothing', 0));
    await expect
      .poll(async () => String(await replica.command('CLIENT', 'LIST', 'ID', String(id))))
      .toMatch(/cmd=blpop/);
    await replica.command('CLIENT', 'UNBLOCK', String(id), 'ERROR');
    const unblocked = await pop;
    expect(replyPrefix(unblocked)).toBe('UNBLOCKED');
    expect(isTransientError(unblocked)).toBe(true);

    const slow = track(replica.createClient({ commandTimeout: 50 }));
    await replica.command('CONFIG', 'SET', 'busy-reply-threshold', '20');
    // A script that keeps the server busy for a second, well past busy-reply-threshold.
    const script = slow.eval(
      'local t = redis.call("TIME") while true do local n = redis.call("TIME") if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 1000000 then return 1 end end',
      0,
    );
    const timedOut = await failure(script);
    expect(timedOut.message).toMatch(/Command timed out/);
    expect(isTransientError(timedOut)).toBe(true);
    const busy = await failure(client.get('k'));
    expect(replyPrefix(busy)).toBe('BUSY');
    expect(isTransientError(busy)).toBe(true);
  });

  it('says yes to CLUSTERDOWN from a slot nobody serves', async () => {
    const client = track(cluster.createClient());
    await client.get('orphan'); // the slot table is known
    const slot = keySlot('orphan');
    const [, port] = (client.slots[slot]?.[0] ?? '').split(':');
    const admin = track(new Redis({ port: Number(port) }));
    await admin.call('CLUSTER', 'DELSLOTS', slot);
    try {
      const err = await failure(admin.get('orphan'));
      expect(replyPrefix(err)).toBe('CLUSTERDOWN');
      expect(isTransientError(err)).toBe(true);
    } finally {
      await admin.call('CLUSTER', 'ADDSLOTS', slot);
      for (const master of cluster.masters) {
        await expect.poll(async () => String(await master.command('CLUSTER', 'INFO'))).toMatch(/cluster_state:ok/);
      }
    }
  });

  it('says yes to the messages ioredis and Redis use for passing states', () => {
    for (const message of [
      'LOADING Redis is loading the dataset in memory',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'Too many Cluster redirections. Last error: ReplyError: MOVED 7346 127.0.0.1:45979',
      'Failed to refresh slots cache.',
      "Stream isn't writeable and enableOfflineQueue options is false",
    ]) {
      expect(isTransientError(new Error(message)), message).toBe(true);
    }
    expect(isTransientError(new RespError('ERR_RESP_CONNECTION_LOST', 'lost'))).toBe(true);
    expect(isTransientError(new RespError('ERR_RESP_TIMEOUT', 'slow'))).toBe(true);
  });

  it('says no to what retrying cannot fix, and to aborts', async () => {
    const client = track(server.createClient());
    await client.set('str', 'x');
    const wrongType = await failure(client.lpush('str', 'v'));
    expect(isTransientError(wrongType)).toBe(false);
    const syntax = await failure(client.call('SET', 'a'));
    expect(isTransientError(syntax)).toBe(false);
    const user = await server.createUser({ username: 'noget', password: 'p', rules: ['~*', '+@all', '-get'] });
    const limited = track(new Redis({ port: server.port, username: user.username, password: user.password }));
    const noperm = await failure(limited.get('str'));
    expect(replyPrefix(noperm)).toBe('NOPERM');
    expect(isTransientError(noperm)).toBe(false);
    expect(isTransientError(new RespError('ERR_RESP_ABORTED', 'aborted', { name: 'AbortError' }))).toBe(false);
    expect(isTransientError(new RespError('ERR_RESP_CLOSED', 'closed'))).toBe(false);
    expect(isTransientError('ECONNRESET')).toBe(false);
    expect(isTransientError(undefined)).toBe(false);
  });
});

describe('waitUntilReady', () => {
  const noRetries = { retryStrategy: () => 50, maxRetriesPerRequest: 0 } as const;
  const reasons: ConnectFailure[] = [];
  const record = (f: ConnectFailure) => {
    reasons.push(f);
    return new RespError('ERR_RESP_CONNECT', f.message, { cause: f.cause });
  };

  /** The listeners a client has for the events waitUntilReady uses. */
  const listening = (client: Redis | Cluster) =>
    ['ready', 'end', 'error', 'node error'].map((e) => client.listenerCount(e)).join(',');

  it('resolves at once for a ready client, and connects a lazy one', async () => {
    const client = track(server.createClient());
    await client.ping();
    await waitUntilReady(client);
    const lazy = track(server.createClient({ lazyConnect: true }));
    expect(lazy.status).toBe('wait');
    const before = listening(lazy);
    await waitUntilReady(lazy, { timeoutMs: 5000 });
    expect(lazy.status).toBe('ready');
    expect(listening(lazy)).toBe(before);
    const clusterClient = track(cluster.createClient({ lazyConnect: true }));
    await waitUntilReady(clusterClient, { timeoutMs: 10_000 });
    expect(clusterClient.status).toBe('ready');
  });

  it('names the address and ECONNREFUSED when nothing listens, at the bound', async () => {
    const client = track(new Redis({ port: 1, ...noRetries }));
    const before = listening(client);
    const err = await failure(waitUntilReady(client, { timeoutMs: 1000 }));
    expect(err).toBeInstanceOf(RespError);
    expect(err).toBeInstanceOf(RedisEventsError);
    expect(err).toMatchObject({ code: 'ERR_RESP_CONNECT' });
    expect(err.message).toMatch(/^cannot connect to localhost:1 within 1000 ms: connect ECONNREFUSED/);
    expect(err.message).toMatch(/nothing accepts connections there/);
    expect((err.cause as { code?: string }).code).toBe('ECONNREFUSED');
    // ioredis holds a 'ready' listener of its own while a reconnection attempt is in flight (a
    // loaded machine can be in one at the bound): once it stops, only ours would be left.
    client.disconnect();
    await expect.poll(() => listening(client)).toBe(before);
  });

  it('finds the cause for a client that failed before the call and will not retry within the bound', async () => {
    const client = new Redis({ port: 1, retryStrategy: () => 60_000 });
    const failed = new Promise((resolve) => client.once('error', resolve));
    track(client);
    await failed;
    await expect.poll(() => client.status).toBe('reconnecting');
    const err = await failure(waitUntilReady(client, { timeoutMs: 800 }));
    expect(err.message).toMatch(/^cannot connect to localhost:1 within 800 ms: connect ECONNREFUSED/);
  });

  it('names a host that does not resolve', async () => {
    const client = track(new Redis({ host: 'no-such-host.invalid', ...noRetries }));
    const err = await failure(waitUntilReady(client, { timeoutMs: 1500 }));
    expect(err.message).toMatch(/no-such-host\.invalid:6379 .*ENOTFOUND.*does not resolve/);
  });

  it('fails at once on a wrong password, no password, or an ACL user missing a command', async () => {
    const wrong = track(new Redis({ port: server.port, password: 'wrong', ...noRetries }));
    const err = await failure(waitUntilReady(wrong, { timeoutMs: 60_000 }));
    expect(err).toMatchObject({ code: 'ERR_RESP_HANDSHAKE' });
    expect(err.message).toMatch(/^localhost:\d+ refused the connection: WRONGPASS .*wrong user name or password/);

    const none = track(new Redis({ port: server.port, ...noRetries }));
    const noauth = await failure(waitUntilReady(none, { timeoutMs: 60_000, error: record }));
    expect(noauth.message).toMatch(/NOAUTH .*requires a password/);
    expect(reasons.at(-1)?.reason).toBe('rejected');

    const user = await server.createUser({ username: 'noselect', password: 'p', rules: ['~*', '+@all', '-select'] });
    const limited = track(
      new Redis({ port: server.port, username: user.username, password: user.password, db: 1, ...noRetries }),
    );
    const noperm = await failure(waitUntilReady(limited, { timeoutMs: 60_000 }));
    expect(noperm.message).toMatch(/NOPERM .*select/i);
  });

  it('fails at once on a certificate the client does not trust, and explains TLS on a plain port', async (ctx) => {
    const tls = await spawnRedis({ tls: true });
    ctx.onTestFinished(() => tls.stop());
    const untrusting = track(new Redis({ port: tls.port, tls: {}, ...noRetries }));
    const err = await failure(waitUntilReady(untrusting, { timeoutMs: 60_000, error: record }));
    expect(reasons.at(-1)).toMatchObject({ reason: 'rejected', address: `localhost:${tls.port} (TLS)` });
    expect(err.message).toMatch(/certificate|self.signed/i);
    expect(err.message).toMatch(/tls\.ca/);

    const plain = await spawnRedis();
    ctx.onTestFinished(() => plain.stop());
    const wrongSide = track(new Redis({ port: plain.port, tls: {}, ...noRetries }));
    // The server reads the TLS hello as the start of a command and waits for the rest.
    const mismatch = await failure(waitUntilReady(wrongSide, { timeoutMs: 1000 }));
    expect(mismatch.message).toMatch(/no answer to the TLS handshake.*does not speak TLS/);
  });

  it('reports a server that accepts but never answers (a paused proxy), at the bound', async (ctx) => {
    const plain = await spawnRedis();
    const proxy: TcpProxy = await startProxy({ target: plain });
    ctx.onTestFinished(async () => {
      await proxy.close();
      await plain.stop();
    });
    proxy.pause();
    const client = track(new Redis({ port: proxy.port, ...noRetries }));
    const err = await failure(waitUntilReady(client, { timeoutMs: 500, error: record }));
    expect(reasons.at(-1)?.reason).toBe('timeout');
    expect(err.message).toMatch(new RegExp(`^cannot connect to localhost:${proxy.port} within 500 ms`));
    expect(err.message).toMatch(/handshake did not complete/);
  });

  it('ends when the client gives up, and when it was closed', async () => {
    const giving = track(new Redis({ port: 1, retryStrategy: (n) => (n > 2 ? null : 10) }));
    const err = await failure(waitUntilReady(giving, { timeoutMs: 60_000, error: record }));
    expect(reasons.at(-1)?.reason).toBe('ended');
    expect(err.message).toMatch(/gave up connecting or was closed: connect ECONNREFUSED/);
    const closed = track(server.createClient());
    await closed.ping();
    await closed.quit();
    await expect.poll(() => closed.status).toBe('end');
    const after = await failure(waitUntilReady(closed, { error: record }));
    expect(reasons.at(-1)?.reason).toBe('ended');
    expect(after.message).toMatch(/is closed \(end\)/);
  });

  it("stops on the caller's signal with an AbortError, leaving nothing behind", async () => {
    const client = track(new Redis({ port: 1, ...noRetries }));
    const controller = new AbortController();
    const before = listening(client);
    const waiting = failure(waitUntilReady(client, { timeoutMs: 60_000, signal: controller.signal }));
    controller.abort(new Error('shutting down'));
    const err = await waiting;
    expect(err).toMatchObject({ name: 'AbortError', code: 'ERR_RESP_ABORTED' });
    expect(err.message).toMatch(/^waiting for localhost:1 was aborted: shutting down/);
    expect(listening(client)).toBe(before);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const already = await failure(waitUntilReady(client, { signal: controller.signal }));
    expect(already.name).toBe('AbortError');
    await expect(waitUntilReady(client, { timeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_RESP_ARGUMENT' });
  });

  it('finds the real cause behind a Cluster that cannot reach its nodes', async () => {
    const nowhere = track(new Cluster([{ host: '127.0.0.1', port: 1 }], { clusterRetryStrategy: () => 100 }));
    const err = await failure(waitUntilReady(nowhere, { timeoutMs: 1500 }));
    expect(err.message).toMatch(/^cannot connect to cluster 127\.0\.0\.1:1 within 1500 ms: connect ECONNREFUSED/);
    expect(err.message).not.toMatch(/Connection is closed/);

    const secured = await startCluster({ masters: 3, password: 'pw' });
    try {
      const wrong = track(
        new Cluster([{ port: secured.masters[0]?.port ?? 0 }], {
          redisOptions: { password: 'wrong' },
          clusterRetryStrategy: () => 100,
        }),
      );
      const rejected = await failure(waitUntilReady(wrong, { timeoutMs: 60_000 }));
      expect(rejected.message).toMatch(/^cluster 127\.0\.0\.1:\d+ refused the connection: WRONGPASS/);
      wrong.disconnect();
    } finally {
      await secured.stop();
    }
  });
});
