import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, type SpawnedRedis, spawnRedis, startProxy, type TcpProxy } from '@redis-events/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, RespConnection, type RespConnectionOptions } from '../src/connection.ts';
import { ReplyError, RespError, RespProtocolError } from '../src/errors.ts';
import { type RespNode, VerbatimString } from '../src/values.ts';

const open: { destroy(): void }[] = [];
afterEach(() => {
  for (const connection of open.splice(0)) connection.destroy();
});

function track<V>(connection: RespConnection<V>): RespConnection<V> {
  open.push(connection);
  return connection;
}
async function connected<V = unknown>(options: RespConnectionOptions<V> | string): Promise<RespConnection<V>> {
  const connection = track(new RespConnection<V>(options));
  await connection.connect();
  return connection;
}

/** Collects push events. */
function pushes<V>(connection: RespConnection<V>): V[] {
  const seen: V[] = [];
  connection.on('push', (value) => seen.push(value));
  return seen;
}

/** An untilPush that completes after `count` confirmations of `kind`. */
function confirmations(kind: string, count: number) {
  let seen = 0;
  return (value: unknown) => Array.isArray(value) && value[0] === kind && ++seen === count;
}

async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function rejection(promise: Promise<unknown>): Promise<RespError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(RespError);
    return err as RespError;
  }
  throw new Error('expected a rejection');
}

describe('RespConnection on a Redis server', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  it('speaks RESP3 through HELLO 3 and reports the server', async () => {
    const connection = await connected(server.url);
    expect(connection.status).toBe('ready');
    expect(connection.protocol).toBe(3);
    expect(connection.server).toMatchObject({ proto: 3, mode: 'standalone', role: 'master' });
    expect(connection.server?.version).toBe(`${server.version.major}.${server.version.minor}.${server.version.patch}`);
    const key = server.keyPrefix();
    expect(await connection.send(['HSET', `${key}h`, 'f', 'v'])).toBe(1);
    expect(await connection.send(['HGETALL', `${key}h`])).toEqual(new Map([['f', 'v']]));
    expect(await connection.send(['INFO', 'server'])).toBeInstanceOf(VerbatimString);
  });

  it('pipelines 10 000 commands and matches every reply in order', async () => {
    const connection = await connected(server.url);
    const key = server.keyPrefix();
    const replies = await Promise.all(
      Array.from({ length: 10_000 }, (_, i) =>
        i % 2 === 0 ? connection.send(['INCR', `${key}n`]) : connection.send(['ECHO', `echo-${i}`]),
      ),
    );
    replies.forEach((reply, i) => {
      expect(reply).toBe(i % 2 === 0 ? i / 2 + 1 : `echo-${i}`);
    });
    expect(connection.pendingCount).toBe(0);
  });

  it('rejects an error reply with a ReplyError naming the command; errors inside EXEC stay values', async () => {
    const connection = await connected(server.url);
    const key = server.keyPrefix();
    await connection.send(['SET', `${key}s`, 'text']);
    const err = await rejection(connection.send(['LPUSH', `${key}s`, 'x']));
    expect(err).toBeInstanceOf(ReplyError);
    expect(err).toMatchObject({ code: 'ERR_RESP_REPLY', prefix: 'WRONGTYPE', command: 'LPUSH' });
    await connection.send(['MULTI']);
    await connection.send(['INCR', `${key}s`]);
    await connection.send(['SET', `${key}t`, '1']);
    const exec = (await connection.send(['EXEC'])) as unknown[];
    expect(exec[0]).toBeInstanceOf(ReplyError);
    expect(exec[1]).toBe('OK');
    await expect(connection.send(['NOSUCHCOMMAND'])).rejects.toMatchObject({ prefix: 'ERR', command: 'NOSUCHCOMMAND' });
  });

  it('routes RESP3 pushes apart from replies; SUBSCRIBE settles on its confirmations', async () => {
    const subscriber = await connected(server.url);
    const publisher = await connected(server.url);
    const seen = pushes(subscriber);
    const channel = server.keyPrefix('ch');
    const confirmed = await subscriber.send(['SUBSCRIBE', `${channel}a`, `${channel}b`], {
      untilPush: confirmations('subscribe', 2),
    });
    expect(confirmed).toEqual(['subscribe', `${channel}b`, 2]);
    expect(await publisher.send(['PUBLISH', `${channel}a`, 'hello'])).toBe(1);
    expect(await subscriber.send(['PING'])).toBe('PONG');
    await until(() => seen.length === 3, 'the message');
    expect(seen).toEqual([
      ['subscribe', `${channel}a`, 1],
      ['subscribe', `${channel}b`, 2],
      ['message', `${channel}a`, 'hello'],
    ]);
    const bye = await subscriber.send(['UNSUBSCRIBE'], { untilPush: confirmations('unsubscribe', 2) });
    expect(bye).toEqual(['unsubscribe', expect.any(String), 0]);
  });

  it('fails a push-settled command on its in-band error and keeps later replies in order', async () => {
    const user = await server.createUser({ username: 'limited', password: 'pw', rules: ['~*', '&allowed:*', '+@all'] });
    const connection = await connected(user.url);
    const err = await rejection(
      connection.send(['SUBSCRIBE', 'forbidden'], { untilPush: confirmations('subscribe', 1) }),
    );
    expect(err).toMatchObject({ prefix: 'NOPERM', command: 'SUBSCRIBE' });
    expect(await connection.send(['PING'])).toBe('PONG');
  });

  it('selects the database and names the connection', async () => {
    const key = server.keyPrefix();
    const inDb3 = await connected(`${server.url}/3?name=resp-test`);
    await inDb3.send(['SET', `${key}k`, 'three']);
    expect(await inDb3.send(['CLIENT', 'GETNAME'])).toBe('resp-test');
    const inDb0 = await connected(server.url);
    expect(await inDb0.send(['GET', `${key}k`])).toBeNull();
    expect(await inDb0.send(['SELECT', 3])).toBe('OK');
    expect(await inDb0.send(['GET', `${key}k`])).toBe('three');
  });

  it('speaks RESP2 when asked, and decodes strings as Buffers on request', async () => {
    const connection = await connected<unknown>({ url: server.url, protocol: 2, decoder: { strings: 'buffer' } });
    expect(connection.protocol).toBe(2);
    expect(connection.server).toBeUndefined();
    const key = server.keyPrefix();
    await connection.send(['HSET', `${key}h`, 'f', Buffer.from([0, 255])]);
    expect(await connection.send(['HGETALL', `${key}h`])).toEqual([Buffer.from('f'), Buffer.from([0, 255])]);
  });

  it('works in the typed mapping too: nodes for replies, ReplyError for error replies', async () => {
    const connection = await connected<RespNode>({ url: server.url, decoder: { typed: true } });
    expect(connection.server).toMatchObject({ proto: 3 });
    expect(await connection.send(['PING'])).toEqual({ type: 'simple-string', value: 'PONG' });
    expect(await connection.send(['HSET', `${server.keyPrefix()}h`, 'f', 'v'])).toEqual({ type: 'integer', value: 1 });
    await expect(connection.send(['NOSUCHCOMMAND'])).rejects.toMatchObject({
      code: 'ERR_RESP_REPLY',
      command: 'NOSUCHCOMMAND',
    });
  });

  it('times out a command and keeps the replies after it in order', async () => {
    const connection = await connected(server.url);
    const slow = connection.send(['DEBUG', 'SLEEP', '0.3'], { timeout: 50 });
    const next = connection.send(['ECHO', 'after']);
    const err = await rejection(slow);
    expect(err.code).toBe('ERR_RESP_TIMEOUT');
    expect(err.message).toMatch(/DEBUG got no reply within 50 ms/);
    expect(await next).toBe('after');
    const defaults = await connected({ url: server.url, commandTimeout: 40 });
    expect((await rejection(defaults.send(['DEBUG', 'SLEEP', '0.2']))).code).toBe('ERR_RESP_TIMEOUT');
    expect(await defaults.send(['PING'], { timeout: 1000 })).toBe('PONG');
  });

  it('aborts: a command never written never runs; a written one has its reply dropped', async () => {
    const key = server.keyPrefix();
    const connection = track(new RespConnection(server.url));
    const controller = new AbortController();
    const queued = connection.send(['INCR', `${key}aborted`], { signal: controller.signal });
    controller.abort(new Error('changed my mind'));
    const err = await rejection(queued);
    expect(err).toMatchObject({ code: 'ERR_RESP_ABORTED', message: expect.stringMatching(/before it was sent/) });
    expect(err.cause).toMatchObject({ message: 'changed my mind' });
    await connection.connect();
    expect(await connection.send(['GET', `${key}aborted`])).toBeNull();
    const inFlight = connection.send(['DEBUG', 'SLEEP', '0.2'], { signal: AbortSignal.timeout(30) });
    const after = connection.send(['ECHO', 'still in order']);
    expect((await rejection(inFlight)).code).toBe('ERR_RESP_ABORTED');
    expect(await after).toBe('still in order');
    expect((await rejection(connection.send(['PING'], { signal: AbortSignal.abort() }))).code).toBe('ERR_RESP_ABORTED');
  });

  it('pauses reading: nothing is delivered while paused, everything after resume', async () => {
    const subscriber = await connected(server.url);
    const publisher = await connected(server.url);
    const seen = pushes(subscriber);
    const channel = server.keyPrefix('paused');
    await subscriber.send(['SUBSCRIBE', channel], { untilPush: confirmations('subscribe', 1) });
    subscriber.pause();
    expect(subscriber.isPaused).toBe(true);
    for (let i = 0; i < 3; i++) await publisher.send(['PUBLISH', channel, `m${i}`]);
    const ping = subscriber.send(['PING']);
    let answered = false;
    void ping.then(() => {
      answered = true;
    });
    await sleep(150);
    expect(seen).toHaveLength(1);
    expect(answered).toBe(false);
    subscriber.resume();
    expect(await ping).toBe('PONG');
    expect(seen.slice(1).map((m) => (m as unknown[])[2])).toEqual(['m0', 'm1', 'm2']);
  });

  it('sends a command that expects no reply', async () => {
    const connection = await connected(server.url);
    const key = server.keyPrefix();
    await connection.send(['CLIENT', 'REPLY', 'OFF'], { noReply: true });
    await connection.send(['SET', `${key}quiet`, 'yes'], { noReply: true });
    await connection.send(['CLIENT', 'REPLY', 'ON']);
    expect(await connection.send(['GET', `${key}quiet`])).toBe('yes');
  });

  it('closes in order: pending replies arrive, later sends fail', async () => {
    const connection = await connected(server.url);
    const ends: unknown[] = [];
    connection.on('end', (info) => ends.push(info));
    const pending = connection.send(['DEBUG', 'SLEEP', '0.1']);
    const closing = connection.close();
    expect((await rejection(connection.send(['PING']))).code).toBe('ERR_RESP_CLOSED');
    expect(await pending).toBe('OK');
    await closing;
    expect(connection.status).toBe('closed');
    expect(ends).toEqual([{ cause: undefined, takenOver: false }]);
  });

  it('destroys at once, failing what is pending', async () => {
    const connection = await connected(server.url);
    const pending = connection.send(['DEBUG', 'SLEEP', '0.2']);
    connection.destroy(new Error('shutting down'));
    const err = await rejection(pending);
    expect(err.code).toBe('ERR_RESP_CLOSED');
    expect(err.message).toMatch(/shutting down/);
  });

  it('connects over a unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'resp-unix-'));
    const socketPath = join(dir, 'redis.sock');
    const unix = await spawnRedis({ config: { unixsocket: socketPath, unixsocketperm: 700 } });
    try {
      const connection = await connected(`unix://${socketPath}?db=2`);
      expect(await connection.send(['PING'])).toBe('PONG');
      expect(String(await connection.send(['CLIENT', 'INFO']))).toMatch(/db=2/);
    } finally {
      await unix.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('socket takeover', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  async function readUntil(socket: Socket, head: Buffer, enough: (data: Buffer) => boolean): Promise<Buffer> {
    let data = head;
    if (enough(data)) return data;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`not enough data: ${JSON.stringify(data.toString('latin1'))}`)),
        5000,
      );
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        if (enough(data)) {
          clearTimeout(timer);
          resolve(data);
        }
      });
      socket.resume();
    });
  }

  it('hands over the socket and the bytes read after the reply (an invalidation push in the same write)', async () => {
    const connection = await connected(server.url);
    const key = `${server.keyPrefix()}tracked`;
    await connection.send(['CLIENT', 'TRACKING', 'on']);
    await connection.send(['GET', key]);
    const seen = pushes(connection);
    const { socket, head, reply } = await connection.takeOver(['SET', key, 'v']);
    expect(reply).toBe('OK');
    const invalidation = Buffer.from(`>2\r\n$10\r\ninvalidate\r\n*1\r\n$${key.length}\r\n${key}\r\n`);
    expect(head.length).toBeGreaterThan(0);
    const data = await readUntil(socket, head, (d) => d.length >= invalidation.length);
    expect(data).toEqual(invalidation);
    expect(seen).toEqual([]);
    expect(connection.status).toBe('taken-over');
    expect((await rejection(connection.send(['PING']))).code).toBe('ERR_RESP_TAKEN_OVER');
    socket.destroy();
  });

  it('hands over after PSYNC with the start of the RDB transfer', async () => {
    const connection = await connected({ url: server.url, protocol: 2 });
    expect(await connection.send(['REPLCONF', 'capa', 'eof', 'capa', 'psync2'])).toBe('OK');
    const { socket, head, reply } = await connection.takeOver(['PSYNC', '?', '-1']);
    expect(reply).toMatch(/^FULLRESYNC [0-9a-f]{40} \d+$/);
    // Keep-alive newlines may come first, then $EOF:<mark> (diskless) or $<length>, then the RDB.
    const data = await readUntil(socket, head, (d) => d.includes('REDIS'));
    const stream = data.toString('latin1').replace(/^\n+/, '');
    expect(stream).toMatch(/^\$(EOF:[0-9a-f]{40}|\d+)\r\nREDIS\d{4}/);
    socket.destroy();
  });

  it('takes over with no command once every pending reply is in', async () => {
    const connection = await connected(server.url);
    const slow = connection.send(['DEBUG', 'SLEEP', '0.05']);
    const taking = connection.takeOver();
    expect((await rejection(connection.send(['PING']))).code).toBe('ERR_RESP_TAKEN_OVER');
    expect(await slow).toBe('OK');
    const { socket, head, reply } = await taking;
    expect(reply).toBeUndefined();
    expect(head).toHaveLength(0);
    socket.write('*1\r\n$4\r\nPING\r\n');
    expect((await readUntil(socket, head, (d) => d.length >= 7)).toString()).toBe('+PONG\r\n');
    socket.destroy();
  });

  it('keeps the connection when the takeover command fails', async () => {
    const connection = await connected(server.url);
    await expect(connection.takeOver(['NOSUCHCOMMAND'])).rejects.toBeInstanceOf(ReplyError);
    expect(connection.status).toBe('ready');
    expect(await connection.send(['PING'])).toBe('PONG');
    await expect(new RespConnection(server.url).takeOver()).rejects.toMatchObject({ code: 'ERR_RESP_STATE' });
  });
});

describe('backpressure on writes', () => {
  let server: SpawnedRedis;
  let proxy: TcpProxy;
  beforeAll(async () => {
    server = await spawnRedis();
    proxy = await startProxy({ target: server });
  });
  afterAll(async () => {
    await proxy.close();
    await server.stop();
  });

  it('holds commands while the socket is full and writes them after drain', async () => {
    const connection = await connected({ host: '127.0.0.1', port: proxy.port });
    const key = server.keyPrefix();
    const value = Buffer.alloc(1024 * 1024, 'v');
    proxy.pause();
    const writes = Array.from({ length: 48 }, (_, i) => connection.send(['SET', `${key}${i}`, value]));
    await sleep(50);
    expect(connection.needsDrain).toBe(true);
    const held = connection.send(['INCR', `${key}counter`]);
    let drained = false;
    const draining = connection.drained().then(() => {
      drained = true;
    });
    await sleep(200);
    expect(drained).toBe(false);
    proxy.resume();
    await draining;
    expect(await Promise.all(writes)).toEqual(writes.map(() => 'OK'));
    expect(await held).toBe(1);
    expect(connection.needsDrain).toBe(false);
  });

  it('bounds the queue of commands that wait', async () => {
    const connection = track(new RespConnection({ url: server.url, maxQueueLength: 2 }));
    const a = connection.send(['PING']);
    const b = connection.send(['PING']);
    expect((await rejection(connection.send(['PING']))).code).toBe('ERR_RESP_QUEUE_FULL');
    await connection.connect();
    expect(await Promise.all([a, b])).toEqual(['PONG', 'PONG']);
  });
});

describe('reconnecting', () => {
  let server: SpawnedRedis;
  let proxy: TcpProxy;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());
  afterEach(async () => {
    await proxy.close();
  });

  it('fails what was in flight, reconnects with backoff, runs onConnect first, then sends what waited', async () => {
    proxy = await startProxy({ target: server });
    const key = server.keyPrefix();
    const events: string[] = [];
    const connection = track(
      new RespConnection({
        host: '127.0.0.1',
        port: proxy.port,
        reconnect: { initialDelay: 10, maxDelay: 50 },
        onConnect: async (session) => {
          events.push(`onConnect ${session.attempt} protocol ${session.protocol}`);
          await session.send(['RPUSH', `${key}log`, `hook ${session.attempt}`]);
        },
      }),
    );
    connection.on('connect', (info) => events.push(`connect ${info.attempt}`));
    connection.on('disconnect', (info) => events.push(`disconnect reconnect=${info.reconnect}`));
    connection.on('reconnecting', (info) => events.push(`reconnecting ${info.attempt} ${info.cause.message}`));
    await connection.connect();
    const blocked = connection.send(['BLPOP', `${key}never`, 5]);
    await until(() => proxy.stats.bytesUpstream > 0, 'the BLPOP to pass');
    await sleep(50);
    proxy.cut();
    const lost = await rejection(blocked);
    expect(lost.code).toBe('ERR_RESP_CONNECTION_LOST');
    expect(lost.message).toMatch(/BLPOP|lost/);
    const queued = connection.send(['RPUSH', `${key}log`, 'user']);
    expect(await queued).toBe(3);
    expect(await connection.send(['LRANGE', `${key}log`, 0, -1])).toEqual(['hook 0', 'hook 1', 'user']);
    expect(events[0]).toBe('onConnect 0 protocol 3');
    expect(events[1]).toBe('connect 0');
    expect(events[2]).toBe('disconnect reconnect=true');
    expect(events[3]).toMatch(/^reconnecting 1 /);
    expect(events.slice(4)).toEqual(['onConnect 1 protocol 3', 'connect 1']);
  });

  it('keeps trying while the server is down, then comes back', async () => {
    proxy = await startProxy({ target: server });
    const connection = track(
      new RespConnection({ host: '127.0.0.1', port: proxy.port, reconnect: { initialDelay: 5, maxDelay: 20 } }),
    );
    const attempts: number[] = [];
    connection.on('reconnecting', (info) => attempts.push(info.attempt));
    await connection.connect();
    proxy.refuse(true);
    proxy.cut();
    await until(() => attempts.length >= 3, 'three attempts');
    expect(connection.status).not.toBe('ready');
    const waiting = connection.send(['PING']);
    proxy.refuse(false);
    expect(await waiting).toBe('PONG');
    expect(attempts.slice(0, 3)).toEqual([1, 2, 3]);
  });

  it('ends when reconnect is off or the strategy gives up', async () => {
    proxy = await startProxy({ target: server });
    const off = track(new RespConnection({ host: '127.0.0.1', port: proxy.port, reconnect: false }));
    const ended = new Promise((resolve) => off.once('end', resolve));
    await off.connect();
    proxy.cut();
    expect(await ended).toMatchObject({ cause: expect.objectContaining({ code: 'ERR_RESP_CLOSED' }) });
    expect((await rejection(off.send(['PING']))).code).toBe('ERR_RESP_CLOSED');

    const giveUp = track(
      new RespConnection({ host: '127.0.0.1', port: proxy.port, reconnect: (attempt) => (attempt <= 2 ? 5 : false) }),
    );
    const gaveUp = new Promise((resolve) => giveUp.once('end', resolve));
    await giveUp.connect();
    const waiting = rejection(giveUp.send(['BLPOP', 'x', 5]));
    proxy.refuse(true);
    proxy.cut();
    expect(await gaveUp).toMatchObject({
      cause: expect.objectContaining({ message: expect.stringMatching(/gave up reconnecting .* after 2 attempts/) }),
    });
    expect((await waiting).code).toBe('ERR_RESP_CONNECTION_LOST');
    proxy.refuse(false);
  });

  it('stays paused across a reconnect', async () => {
    proxy = await startProxy({ target: server });
    const connection = await connected({ host: '127.0.0.1', port: proxy.port, reconnect: { initialDelay: 1 } });
    connection.pause();
    const reconnected = new Promise((resolve) => connection.once('connect', resolve));
    proxy.cut();
    await reconnected;
    const ping = connection.send(['PING']);
    let answered = false;
    void ping.then(() => {
      answered = true;
    });
    await sleep(100);
    expect(answered).toBe(false);
    expect(connection.isPaused).toBe(true);
    connection.resume();
    expect(await ping).toBe('PONG');
  });

  it('reconnects on demand, for a failed health check', async () => {
    proxy = await startProxy({ target: server });
    const connection = await connected({ host: '127.0.0.1', port: proxy.port, reconnect: { initialDelay: 1 } });
    const reconnected = new Promise((resolve) => connection.once('connect', resolve));
    connection.reconnect(new Error('health check failed'));
    expect(await reconnected).toMatchObject({ attempt: 1 });
    expect(await connection.send(['PING'])).toBe('PONG');
  });
});

describe('connecting', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ password: 'topsecret' });
  });
  afterAll(() => server.stop());

  it('authenticates with HELLO AUTH, and explains a wrong or missing password', async () => {
    const good = await connected(server.url);
    expect(await good.send(['PING'])).toBe('PONG');
    const wrong = await rejection(connect(`redis://:nope@127.0.0.1:${server.port}`));
    expect(wrong.code).toBe('ERR_RESP_HANDSHAKE');
    expect(wrong.message).toMatch(/wrong user name or password/);
    expect(wrong.message).not.toMatch(/nope/);
    expect(wrong.cause).toBeInstanceOf(ReplyError);
    const missing = await rejection(connect(`redis://127.0.0.1:${server.port}`));
    expect(missing.code).toBe('ERR_RESP_HANDSHAKE');
    expect(missing.message).toMatch(/requires a password|NOAUTH/);
  });

  it('logs in as an ACL user over RESP3 and RESP2', async () => {
    const user = await server.createUser({
      username: 'app',
      password: 'pw',
      rules: ['~app:*', '+@all', '-@dangerous'],
    });
    for (const protocol of [3, 2] as const) {
      const connection = await connected({ url: user.url, protocol });
      expect(connection.protocol).toBe(protocol);
      expect(await connection.send(['SET', 'app:1', 'ok'])).toBe('OK');
      await expect(connection.send(['GET', 'other:1'])).rejects.toMatchObject({ prefix: 'NOPERM' });
      expect(await connection.send(['ACL', 'WHOAMI'])).toBe('app');
    }
  });

  it('fails fast when nothing listens, and fails what waited', async () => {
    const port = await freePort();
    const connection = track(new RespConnection({ port }));
    const waiting = connection.send(['PING']);
    const err = await rejection(connection.connect());
    expect(err.code).toBe('ERR_RESP_CONNECT');
    expect(err.message).toMatch(new RegExp(`127.0.0.1:${port}.*ECONNREFUSED`));
    expect((await rejection(waiting)).code).toBe('ERR_RESP_CONNECT');
    expect(connection.status).toBe('idle');
  });

  it('gives up after connectTimeout when the server does not answer', async () => {
    const proxy = await startProxy({ target: server });
    try {
      proxy.pause();
      const err = await rejection(connect({ port: proxy.port, password: 'topsecret', connectTimeout: 200 }));
      expect(err.code).toBe('ERR_RESP_CONNECT');
      expect(err.message).toMatch(/connectTimeout 200 ms/);
    } finally {
      await proxy.close();
    }
  });

  it('fails the connection when onConnect fails, and can connect again', async () => {
    let fail = true;
    const connection = track(
      new RespConnection({
        url: server.url,
        onConnect: async (session) => {
          await session.send(['PING']);
          if (fail) throw new Error('not today');
        },
      }),
    );
    const err = await rejection(connection.connect());
    expect(err).toMatchObject({
      code: 'ERR_RESP_HANDSHAKE',
      message: expect.stringMatching(/onConnect failed: not today/),
    });
    fail = false;
    await connection.connect();
    expect(await connection.send(['PING'])).toBe('PONG');
  });
});

describe('RESP2 fallback', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    // A server without HELLO, as before Redis 6. Servers quote their arguments differently, so
    // the empty new name is spelled two ways.
    let lastError: unknown;
    for (const empty of ['""', '']) {
      try {
        server = await spawnRedis({ password: 'pw', config: { 'rename-command': ['HELLO', empty] } });
        return;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  });
  afterAll(() => server?.stop());

  it('falls back to AUTH and RESP2 when HELLO is unknown', async () => {
    expect(await server.command('HELLO', '3').catch((err: Error) => err.message)).toMatch(/unknown command|NOAUTH/);
    const connection = await connected(`${server.url}/1?name=fallback`);
    expect(connection.protocol).toBe(2);
    expect(connection.server).toBeUndefined();
    expect(await connection.send(['CLIENT', 'GETNAME'])).toBe('fallback');
    expect(String(await connection.send(['CLIENT', 'INFO']))).toMatch(/db=1 .*resp=2/);
  });

  it('lets a RESP2 subscriber classify in-band messages as pushes', async () => {
    const subscriber = await connected(server.url);
    const publisher = await connected(server.url);
    const kinds = new Set(['message', 'pmessage', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe']);
    subscriber.classify = (value) => (Array.isArray(value) && kinds.has(value[0] as string) ? 'push' : 'reply');
    const seen = pushes(subscriber);
    await subscriber.send(['SUBSCRIBE', 'r2a', 'r2b'], { untilPush: confirmations('subscribe', 2) });
    await publisher.send(['PUBLISH', 'r2a', 'over resp2']);
    // In RESP2 subscriber mode PING answers with an array, in-band.
    expect(await subscriber.send(['PING'])).toEqual(['pong', '']);
    await until(() => seen.length === 3, 'the message');
    expect(seen[2]).toEqual(['message', 'r2a', 'over resp2']);
  });
});

describe('TLS', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ tls: true });
  });
  afterAll(() => server.stop());

  it('connects with rediss:// and the CA, and refuses an untrusted server', async () => {
    const tls = server.tls as NonNullable<SpawnedRedis['tls']>;
    const connection = await connected({ url: server.url, tls: { ca: tls.ca } });
    expect(connection.protocol).toBe(3);
    expect(await connection.send(['PING'])).toBe('PONG');
    const byHost = await connected({
      host: 'localhost',
      port: server.port,
      tls: { ca: tls.ca, cert: tls.cert, key: tls.key },
    });
    expect(await byHost.send(['ECHO', 'tls'])).toBe('tls');
    const err = await rejection(connect({ url: server.url, connectTimeout: 2000 }));
    expect(err.code).toBe('ERR_RESP_CONNECT');
    expect(err.message).toMatch(/certificate|self.signed|issuer/i);
  });
});

describe('a hostile server', () => {
  let fake: Server;
  let port: number;
  let reply: (socket: Socket) => void;
  beforeAll(async () => {
    fake = createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => reply(socket));
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    port = (fake.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => fake.close(() => resolve())));

  it('drops the connection on malformed bytes and fails pending commands with the protocol error', async () => {
    reply = (socket) => socket.write('$5\r\nhelloXX');
    const connection = track(new RespConnection({ port, protocol: 2, reconnect: false }));
    await connection.connect();
    const err = await rejection(connection.send(['GET', 'k']));
    expect(err.code).toBe('ERR_RESP_CONNECTION_LOST');
    expect(err.cause).toBeInstanceOf(RespProtocolError);
    expect(err.cause).toMatchObject({ offset: 9, reason: expect.stringMatching(/missing CRLF/) });
    expect(connection.status).toBe('closed');
  });

  it('drops the connection on a reply nobody asked for', async () => {
    reply = (socket) => socket.write('+PONG\r\n+EXTRA\r\n');
    const connection = track(new RespConnection({ port, protocol: 2, reconnect: false }));
    const ended = new Promise((resolve) => connection.once('end', resolve));
    await connection.connect();
    expect(await connection.send(['PING'])).toBe('PONG');
    expect(await ended).toMatchObject({ cause: expect.objectContaining({ cause: expect.any(RespProtocolError) }) });
  });

  it('rejects a huge declared bulk length without allocating it', async () => {
    reply = (socket) => socket.write('$999999999999\r\n');
    const connection = track(new RespConnection({ port, protocol: 2, reconnect: false }));
    await connection.connect();
    const err = await rejection(connection.send(['GET', 'k']));
    expect(err.cause).toMatchObject({ code: 'ERR_RESP_LIMIT' });
  });
});

describe('the lifecycle contract', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  /** A Logger that records what it is given. */
  function recordingLogger() {
    const lines: { level: string; context: Record<string, unknown>; message: string }[] = [];
    const at = (level: string) => (context: object, message: string) =>
      lines.push({ level, context: context as Record<string, unknown>, message });
    return { lines, logger: { debug: at('debug'), warn: at('warn'), error: at('error') } };
  }

  it('stops connecting on a signal: AbortError, the attempt given up, waiting commands failed', async () => {
    const proxy = await startProxy({ target: server });
    try {
      proxy.pause(); // accepts and never answers: the handshake waits
      const connection = track(new RespConnection({ port: proxy.port, connectTimeout: 60_000 }));
      const waiting = connection.send(['PING']);
      const controller = new AbortController();
      const connecting = rejection(connection.connect({ signal: controller.signal }));
      await until(() => proxy.stats.open > 0, 'the proxy to accept');
      controller.abort(new Error('shutting down'));
      const err = await connecting;
      expect(err).toMatchObject({ name: 'AbortError', code: 'ERR_RESP_ABORTED' });
      expect(err.message).toMatch(new RegExp(`connecting to 127.0.0.1:${proxy.port} was aborted: shutting down`));
      expect((await rejection(waiting)).code).toBe('ERR_RESP_CONNECT');
      expect(connection.status).toBe('idle');
      proxy.resume(); // the proxy reads again, and sees that our side is gone
      await until(() => proxy.stats.open === 0, 'the socket to close');
      const already = await rejection(connection.connect({ signal: controller.signal }));
      expect(already.name).toBe('AbortError');
    } finally {
      await proxy.close();
    }
  });

  it('resolves close() when every reply came, and does not wait for calls their callers gave up', async () => {
    const connection = await connected(server.url);
    const controller = new AbortController();
    const answered = connection.send(['DEBUG', 'SLEEP', '0.05']);
    const blocked = rejection(connection.send(['BLPOP', 'lifecycle:nothing', 0], { signal: controller.signal }));
    controller.abort();
    expect((await blocked).name).toBe('AbortError');
    await connection.close({ timeoutMs: 30_000 });
    expect(await answered).toBe('OK');
    expect(connection.status).toBe('closed');
  });

  it('rejects close() with ERR_RESP_ABANDONED counting the commands left without reply', async () => {
    const connection = await connected(server.url);
    const ends: unknown[] = [];
    connection.on('end', (info) => ends.push(info));
    const stuck = [1, 2].map(() => rejection(connection.send(['BLPOP', 'lifecycle:nothing', 0])));
    const first = rejection(connection.close({ timeoutMs: 100 }));
    const second = rejection(connection.close()); // the same close
    const err = await first;
    expect(err).toMatchObject({ code: 'ERR_RESP_ABANDONED', abandoned: { commands: 2 } });
    expect(err.message).toMatch(/after 100 ms: 2 commands got no reply/);
    expect(await second).toBe(err);
    for (const s of await Promise.all(stuck)) {
      expect(s.code).toBe('ERR_RESP_CLOSED');
      expect(s.message).toMatch(/may or may not have run the command/);
    }
    expect(connection.status).toBe('closed');
    expect(ends).toHaveLength(1);
  });

  it('stops waiting for replies when the close signal fires', async () => {
    const connection = await connected(server.url);
    const stuck = rejection(connection.send(['BLPOP', 'lifecycle:nothing', 0]));
    const controller = new AbortController();
    const closing = rejection(connection.close({ timeoutMs: 60_000, signal: controller.signal }));
    controller.abort();
    const err = await closing;
    expect(err).toMatchObject({ code: 'ERR_RESP_ABANDONED', abandoned: { commands: 1 } });
    expect(err.message).toMatch(/when its signal fired/);
    expect((await stuck).code).toBe('ERR_RESP_CLOSED');
  });

  it('abandons at once what waits for a connection when closed while not connected', async () => {
    const port = await freePort();
    const connection = track(new RespConnection({ port }));
    const waiting = rejection(connection.send(['PING']));
    const err = await rejection(connection.close());
    expect(err).toMatchObject({ code: 'ERR_RESP_ABANDONED', abandoned: { commands: 1 } });
    expect((await waiting).message).toMatch(/never sent/);
    await new RespConnection({ port }).close(); // nothing waited: resolves
  });

  it('closes the same way with await using', async () => {
    const outside: RespConnection<unknown>[] = [];
    {
      await using scoped = await connected(server.url);
      outside.push(scoped);
      expect(await scoped.send(['PING'])).toBe('PONG');
    }
    expect(outside[0]?.status).toBe('closed');
  });

  it('rejects unknown options, a typo included, with ERR_RESP_ARGUMENT', async () => {
    expect(() => new RespConnection({ conectTimeout: 5 } as RespConnectionOptions)).toThrow(
      /RespConnection has no option "conectTimeout"/,
    );
    expect(() => new RespConnection({ logger: { warn() {} } } as never)).toThrow(/logger needs debug, warn and error/);
    const connection = await connected(server.url);
    const err = await rejection(connection.send(['PING'], { timout: 5 } as never));
    expect(err).toMatchObject({ code: 'ERR_RESP_ARGUMENT' });
    expect(err.message).toMatch(/send\(\) has no option "timout"/);
    expect((await rejection(connection.close({ timeOut: 5 } as never))).code).toBe('ERR_RESP_ARGUMENT');
    expect((await rejection(connection.connect({ sigal: undefined } as never))).code).toBe('ERR_RESP_ARGUMENT');
    expect((await rejection(connection.close({ timeoutMs: -1 }))).code).toBe('ERR_RESP_ARGUMENT');
    await connection.close({ timeout: 1000 }); // the former name still works
  });

  it('tells its logger about a lost connection, each attempt, the reconnect, and giving up', async () => {
    const proxy = await startProxy({ target: server });
    try {
      const { lines, logger } = recordingLogger();
      const connection = track(
        new RespConnection({ port: proxy.port, logger, reconnect: { initialDelay: 10, maxDelay: 20, jitter: 0 } }),
      );
      await connection.connect();
      proxy.refuse(true);
      proxy.cut();
      await until(() => lines.filter((l) => l.level === 'debug').length >= 2, 'two reconnect attempts');
      proxy.refuse(false);
      await until(() => lines.some((l) => l.message.startsWith('reconnected')), 'the reconnect');
      const address = `127.0.0.1:${proxy.port}`;
      expect(lines[0]).toMatchObject({
        level: 'warn',
        message: `connection to ${address} lost; reconnecting`,
        context: { package: '@redis-events/resp', address, reconnect: true },
      });
      expect(lines[0]?.context.err).toBeInstanceOf(Error);
      expect(lines[1]).toMatchObject({ level: 'debug', context: { attempt: 1, delayMs: 10 } });
      expect(lines.at(-1)).toMatchObject({ level: 'warn', context: { address } });
      await connection.close();

      const { lines: ended, logger: endLogger } = recordingLogger();
      const giving = track(
        new RespConnection({ port: proxy.port, logger: endLogger, reconnect: { maxAttempts: 1, initialDelay: 5 } }),
      );
      await giving.connect();
      proxy.refuse(true);
      proxy.cut();
      await until(() => giving.status === 'closed', 'giving up');
      expect(ended.at(-1)).toMatchObject({ level: 'error', message: `gave up reconnecting to ${address}` });
    } finally {
      await proxy.close();
    }
  });
});
