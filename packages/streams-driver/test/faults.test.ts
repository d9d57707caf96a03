// Faults: a consumer killed with SIGKILL mid-batch, a Redis killed and restarted with AOF, TCP
// connections cut and frozen by the testkit proxy, and a server that answers nonsense.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type SpawnedRedis, spawnRedis, startProxy, type TcpProxy } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Message, type RetryEvent, type StreamsError, Subscription, Topic } from '../src/index.ts';
import { bodies, consumeAll, eventually, receiveN, sleep } from './helpers.ts';

describe('a consumer killed mid-batch', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  it('loses nothing: a survivor reclaims what the dead one held or had read ahead; duplicates are counted', async () => {
    const redis = server.createClient();
    const key = server.keyPrefix();
    const all = bodies(300);
    const topic = new Topic(redis, key, { create: true });
    await redis.call('xgroup', 'CREATE', key, 'g', '$', 'MKSTREAM');
    await Promise.all(all.map((b) => topic.send({ body: b })));

    const child = spawn(
      process.execPath,
      [
        '--conditions=@redis-events/source',
        join(import.meta.dirname, 'fixtures/consumer.ts'),
        server.url,
        key,
        'g',
        'doomed',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const ackedByChild = new Set<string>();
    const ackingByChild = new Set<string>();
    const heldByChild = new Set<string>();
    const reports: Record<string, Set<string>> = { acked: ackedByChild, acking: ackingByChild, held: heldByChild };
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const [what, body] = line.split(' ') as [string, string];
      reports[what]?.add(body);
    });
    await eventually(
      'the child to be in the middle of its work',
      () => ackedByChild.size >= 40 && heldByChild.size >= 20,
    );
    child.kill('SIGKILL');
    await once(child, 'exit');

    // The survivor starts after the kill: everything the child did not acknowledge must reach it.
    const survivor = new Subscription(redis, {
      topic: key,
      group: 'g',
      consumer: 'survivor',
      ackDeadlineMs: 500,
      claimIntervalMs: 100,
    });
    // An ack the child sent but was killed before confirming may or may not have reached Redis.
    const missing = new Set(all.filter((b) => !ackingByChild.has(b)));
    const seen = await consumeAll([survivor], missing, 30_000);
    const duplicates = [...seen.keys()].filter((b) => heldByChild.has(b) || ackedByChild.has(b));
    expect(duplicates.length).toBeGreaterThanOrEqual(heldByChild.size); // everything the child held came again
    expect(duplicates.filter((b) => ackedByChild.has(b))).toEqual([]); // acked work never came back
    expect(survivor.stats.claimed).toBeGreaterThanOrEqual(heldByChild.size);
    await eventually(
      'an empty pending list',
      async () => ((await redis.call('xpending', key, 'g')) as unknown[])[0] === 0,
    );
    console.log(
      `kill test: child acked ${ackedByChild.size}, held ${heldByChild.size}; survivor got ${seen.size} (${duplicates.length} duplicates)`,
    );
    await survivor.shutdown({ timeoutMs: 0 });
    await topic.shutdown();
  });
});

describe('Redis restarted with AOF under a live topic and subscription', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ persistence: 'aof' });
  });
  afterAll(() => server.stop());

  it('brings back no acknowledged message and loses no unacknowledged one, across kill -9 and a restart', async () => {
    const redis = server.createClient();
    redis.on('error', () => {});
    const key = server.keyPrefix();
    const topic = new Topic(redis, key, { create: true });
    const sub = new Subscription(redis, {
      topic: key,
      group: 'g',
      consumer: 'c',
      ackDeadlineMs: 1000,
      claimIntervalMs: 200,
      prefetch: 20,
      retry: { maxDelayMs: 200 },
    });
    const retries: RetryEvent[] = [];
    sub.on('retry', (e) => retries.push(e));
    await sub.ready();
    const confirmed = new Set<string>(); // acks Redis answered, so fsynced to the AOF
    const cameBack: string[] = []; // deliveries of a message after its ack was confirmed
    const received: string[] = [];
    const take = async (n: number, ack: boolean): Promise<Message[]> => {
      const got = await receiveN(sub, n, 30_000);
      for (const m of got) {
        if (confirmed.has(m.body.toString())) cameBack.push(m.body.toString());
        received.push(m.body.toString());
        if (ack) {
          await m.ack();
          confirmed.add(m.body.toString());
        }
      }
      return got;
    };

    const first = bodies(100, 'a');
    await Promise.all(first.map((b) => topic.send({ body: b })));
    await take(60, true);
    const held = await take(10, false); // handed out, not acked when the server dies
    await server.kill();
    const during = bodies(20, 'k').map((b) => topic.send({ body: b })); // retried until the server is back
    await sleep(300);
    await server.start();
    await Promise.all(during);
    await Promise.all(
      held.map(async (m) => {
        await m.ack();
        confirmed.add(m.body.toString());
      }),
    );
    await take(50, true); // 30 left of the first batch, 20 sent while it was down

    const second = bodies(50, 'b');
    await Promise.all(second.map((b) => topic.send({ body: b })));
    await take(20, true);
    await server.restart(); // SIGTERM and back, same port and AOF
    await take(30, true);

    const everything = [...first, ...bodies(20, 'k'), ...second];
    expect(new Set(received)).toEqual(new Set(everything));
    expect(cameBack).toEqual([]);
    expect(retries.length).toBeGreaterThan(0);
    expect(((await redis.call('xpending', key, 'g')) as unknown[])[0]).toBe(0);
    const redelivered = received.length - new Set(received).size;
    console.log(`AOF test: ${received.length} deliveries of ${everything.length} messages, ${redelivered} redelivered`);
    await sub.shutdown({ timeoutMs: 0 });
    await topic.shutdown();
  });
});

describe('connections cut and frozen by a proxy', () => {
  let server: SpawnedRedis;
  let proxy: TcpProxy;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(async () => {
    await proxy?.close();
    await server.stop();
  });

  it('keeps sending and receiving through repeated connection resets, losing nothing', async () => {
    proxy = await startProxy({ target: server });
    const redis = server.createClient({ port: proxy.port, retryStrategy: () => 20 });
    redis.on('error', () => {});
    const key = server.keyPrefix();
    const topic = new Topic(redis, key, { create: true, retry: { maxDelayMs: 100 } });
    const sub = new Subscription(redis, {
      topic: key,
      group: 'g',
      ackDeadlineMs: 2000,
      claimIntervalMs: 200,
      retry: { maxDelayMs: 100 },
    });
    const failures: StreamsError[] = [];
    sub.on('failed', (e) => failures.push(e));
    await sub.ready();
    const all = bodies(2000);
    const cutter = setInterval(() => proxy.cut(), 60);
    // Consuming and producing run together, both awaited at once: a failure of either is
    // reported as it happens, never as an unhandled rejection of the other.
    const [seen] = await Promise.all([
      consumeAll([sub], new Set(all), 60_000),
      (async () => {
        try {
          for (let i = 0; i < all.length; i += 100)
            await Promise.all(all.slice(i, i + 100).map((b) => topic.send({ body: b })));
          await sleep(200);
        } finally {
          clearInterval(cutter);
        }
      })(),
    ]);
    expect(seen.size).toBe(2000);
    expect(proxy.stats.cut).toBeGreaterThan(3);
    expect(failures).toEqual([]);
    await sub.shutdown({ timeoutMs: 1000 });
    await topic.shutdown();
    redis.disconnect();
  });

  it('reconnects a reader whose connection froze without a reset', async () => {
    proxy = await startProxy({ target: server });
    const redis = server.createClient();
    const key = server.keyPrefix();
    const sub = new Subscription(server.createClient({ port: proxy.port }), {
      topic: key,
      group: 'g',
      blockMs: 100,
      readTimeoutMs: 300,
    });
    await sub.ready();
    const timeouts: RetryEvent[] = [];
    sub.on('retry', (e) => {
      if (e.error.code === 'ERR_STREAMS_TIMEOUT') timeouts.push(e);
    });
    proxy.pause(); // bytes stop; sockets stay open: no FIN, no RST
    await eventually('the watchdog to notice', () => timeouts.length > 0);
    proxy.resume();
    await new Topic(redis, key).send({ body: 'after the freeze' });
    const [m] = await receiveN(sub, 1);
    expect(m?.body.toString()).toBe('after the freeze');
    await m?.ack();
    await sub.shutdown({ timeoutMs: 0 });
  });
});

/** A TCP server that speaks just enough RESP to get a client going, then answers `reply`. */
function fakeRedis(reply: (command: string[]) => string | undefined): Promise<Server> {
  const server = createServer((socket: Socket) => {
    let buffer = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const parsed = parseCommand(buffer);
        if (!parsed) return;
        buffer = buffer.subarray(parsed.used);
        const answer = reply(parsed.args);
        if (answer === undefined) socket.destroy();
        else socket.write(answer);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** One RESP array of bulk strings, or undefined when more bytes are needed. */
function parseCommand(buffer: Buffer): { args: string[]; used: number } | undefined {
  let at = 0;
  const line = (): string | undefined => {
    const end = buffer.indexOf('\r\n', at);
    if (end === -1) return undefined;
    const text = buffer.toString('latin1', at, end);
    at = end + 2;
    return text;
  };
  const head = line();
  if (head === undefined || !head.startsWith('*')) return undefined;
  const args: string[] = [];
  for (let i = 0; i < Number(head.slice(1)); i++) {
    const len = line();
    if (len === undefined) return undefined;
    const n = Number(len.slice(1));
    if (buffer.length < at + n + 2) return undefined;
    args.push(buffer.toString('latin1', at, at + n));
    at += n + 2;
  }
  return { args, used: at };
}

describe('a server that answers nonsense', () => {
  it('fails ready() with ERR_STREAMS_PROTOCOL when the group start script gets a reply no Redis sends', async () => {
    const fake = await fakeRedis(([name = '']) =>
      name.toLowerCase() === 'eval' ? ':5\r\n' : '-ERR unknown command\r\n',
    );
    const port = (fake.address() as { port: number }).port;
    const { Redis } = await import('ioredis');
    const client = new Redis({ port, protocol: 2, enableReadyCheck: false, disableClientInfo: true } as never);
    client.on('error', () => {});
    const sub = new Subscription(client, { topic: 's', group: 'g' });
    await expect(sub.ready()).rejects.toMatchObject({ code: 'ERR_STREAMS_PROTOCOL' });
    await expect(sub.receive()).rejects.toMatchObject({ code: 'ERR_STREAMS_PROTOCOL' });
    await sub.shutdown({ timeoutMs: 0 });
    client.disconnect();
    fake.close();
  });

  it('fails the subscription with ERR_STREAMS_PROTOCOL instead of crashing', async () => {
    const fake = await fakeRedis(([name = '']) => {
      const command = name.toLowerCase();
      if (command === 'xreadgroup') return '*1\r\n*2\r\n$1\r\ns\r\n:42\r\n'; // entries are not a list
      if (command === 'xgroup') return '+OK\r\n';
      if (command === 'eval') return '*3\r\n$7\r\ncreated\r\n$10\r\n1700000000\r\n$1\r\n0\r\n'; // the group start script
      return '-ERR unknown command\r\n';
    });
    const port = (fake.address() as { port: number }).port;
    const { Redis } = await import('ioredis');
    const client = new Redis({ port, protocol: 2, enableReadyCheck: false, disableClientInfo: true } as never);
    client.on('error', () => {});
    const sub = new Subscription(client, { topic: 's', group: 'g' });
    const failed = new Promise<StreamsError>((resolve) => sub.once('failed', resolve));
    await expect(sub.receive()).rejects.toSatisfy((e) => (e as StreamsError).code === 'ERR_STREAMS_PROTOCOL');
    expect((await failed).message).toMatch(/not a list/);
    await sub.shutdown({ timeoutMs: 0 });
    client.disconnect();
    fake.close();
  });

  it('retries a server that drops the connection in the middle of a reply, and a topic gets a clear error for a non-ID reply', async () => {
    let reads = 0;
    const fake = await fakeRedis(([name = '']) => {
      const command = name.toLowerCase();
      if (command === 'xreadgroup') return ++reads <= 3 ? undefined : '*-1\r\n'; // three resets, then timeouts
      if (command === 'xgroup') return '+OK\r\n';
      if (command === 'eval') return '*3\r\n$7\r\ncreated\r\n$10\r\n1700000000\r\n$1\r\n0\r\n'; // the group start script
      if (command === 'xadd') return ':7\r\n';
      return '-ERR unknown command\r\n';
    });
    const port = (fake.address() as { port: number }).port;
    const { Redis } = await import('ioredis');
    const client = new Redis({
      port,
      protocol: 2,
      enableReadyCheck: false,
      disableClientInfo: true,
      retryStrategy: () => 10,
    } as never);
    client.on('error', () => {});
    const sub = new Subscription(client, { topic: 's', group: 'g', retry: { maxDelayMs: 20 } });
    const retries: RetryEvent[] = [];
    sub.on('retry', (e) => retries.push(e));
    await eventually('three retried reads and a healthy read after them', () => reads > 4);
    expect(retries.filter((e) => e.operation === 'read')).toHaveLength(3);
    const topic = new Topic(client, 's');
    await expect(topic.send({ body: 'x' })).rejects.toSatisfy(
      (e) => (e as StreamsError).code === 'ERR_STREAMS_PROTOCOL',
    );
    await sub.shutdown({ timeoutMs: 0 });
    client.disconnect();
    fake.close();
  });
});
