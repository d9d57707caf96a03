// The listener's contract with its consumer, against a real master: options checked up front,
// one consumer (an async iterator or the emitter), close and AbortSignal, snapshot-only and
// stream-only syncs, pause and resume, backpressure down to the socket, what REPLCONF ACK
// reports (what was delivered), and progress figures during a slow transfer.
import { once } from 'node:events';
import { spawnRedis, startProxy } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import {
  type CommandEvent,
  type RdbEntryEvent,
  ReplicaListener,
  type ReplicaListenerOptions,
  ReplicationError,
  type ReplicationEvent,
} from '../src/index.ts';
import { thrown } from './event-helpers.ts';
import { expectContiguous, Recorder } from './live-helpers.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('options', () => {
  const bad: [string, ReplicaListenerOptions | string, RegExp][] = [
    ['a URL that is not one', 'localhost:6379', /unknown scheme/],
    ['a URL with a database', 'redis://127.0.0.1:6379/2', /receives every database/],
    ['a port out of range', { port: 70_000 }, /port must be 1 to 65535/],
    ['a replId without its offset', { replId: 'a'.repeat(40) }, /needs the replOffset/],
    ['an offset without its replId', { replOffset: 10 }, /needs the replId/],
    ['a replId of the wrong length', { replId: 'abc', replOffset: 1 }, /40-character/],
    ['a negative offset', { replId: 'a'.repeat(40), replOffset: -2 }, /integer >= -1/],
    ['a negative db', { db: -1 }, /db must be/],
    ['discardRdb without aof', { discardRdb: true, aof: false }, /deliver nothing/],
    ['a negative timeout', { readTimeout: -1 }, /readTimeout must be a non-negative integer/],
    ['no room in the queue', { maxQueuedEvents: 0 }, /maxQueuedEvents must be at least 1/],
    ['a version that is not one', { announceVersion: 'nine' }, /announceVersion/],
  ];
  it.each(bad)('%s: ERR_REPLICATION_ARGUMENT', (_name, options, message) => {
    const err = thrown(() => new ReplicaListener(options)) as ReplicationError;
    expect(err).toBeInstanceOf(ReplicationError);
    expect(err.code).toBe('ERR_REPLICATION_ARGUMENT');
    expect(err.message).toMatch(message);
  });

  it('never repeats a password from a URL in its errors', () => {
    const err = thrown(() => new ReplicaListener('redis://user:hunter2@127.0.0.1:6379/9')) as Error;
    expect(err.message).not.toContain('hunter2');
  });

  it('reads host, port, credentials and TLS from a URL', () => {
    const listener = new ReplicaListener('rediss://user:pw@cache.internal:6380');
    expect(listener.master).toBe('cache.internal:6380');
    expect(listener.status).toBe('idle');
    expect(listener.checkpoint).toBeUndefined();
    expect(new ReplicaListener({ replId: 'b'.repeat(40), replOffset: 5, db: 2 }).checkpoint).toEqual({
      replId: 'b'.repeat(40),
      replOffset: 5,
      db: 2,
    });
  });
});

describe('consuming', () => {
  it('one consumer: a second iterator or start() is ERR_REPLICATION_STATE', async () => {
    await using master = await spawnRedis();
    await using listener = new ReplicaListener({ port: master.port });
    const iterator = listener[Symbol.asyncIterator]();
    expect(thrown(() => listener.start())).toMatchObject({ code: 'ERR_REPLICATION_STATE' });
    expect(thrown(() => listener[Symbol.asyncIterator]())).toMatchObject({ code: 'ERR_REPLICATION_STATE' });
    expect((await iterator.next()).value).toMatchObject({ kind: 'connected' });
  });

  it('close() ends the iteration, once, whatever the listener is doing', async () => {
    await using master = await spawnRedis();
    await using silent = await startProxy({ target: master });
    silent.pause();
    // During the handshake (a master that does not answer), and during the stream.
    for (const port of [silent.port, master.port]) {
      const listener = new ReplicaListener({ port });
      let closes = 0;
      listener.on('close', () => closes++);
      const kinds: string[] = [];
      const loop = (async () => {
        for await (const event of listener) kinds.push(event.kind);
      })();
      await sleep(300);
      await listener.close();
      await loop;
      await listener.close();
      expect(listener.status).toBe('closed');
      expect(closes).toBe(1);
      expect(kinds.includes('snapshot-done')).toBe(port === master.port);
    }
    expect((await master.info('replication')).connected_slaves).toBe('0');
  });

  it('an AbortSignal closes it; an aborted one ends it at once', async () => {
    await using master = await spawnRedis();
    const controller = new AbortController();
    const listener = new ReplicaListener({ port: master.port, signal: controller.signal });
    const kinds: string[] = [];
    for await (const event of listener) {
      kinds.push(event.kind);
      if (event.kind === 'snapshot-done') controller.abort();
    }
    expect(kinds.at(-1)).toBe('snapshot-done');
    const aborted = new ReplicaListener({ port: master.port, signal: AbortSignal.abort() });
    for await (const event of aborted) throw new Error(`unexpected ${event.kind}`);
    expect(aborted.status).toBe('closed');
  });

  it('aof: false ends after the snapshot', async () => {
    await using master = await spawnRedis();
    await master.createClient({ protocol: 2 }).set('k', 'v');
    const kinds: string[] = [];
    for await (const event of new ReplicaListener({ port: master.port, aof: false })) kinds.push(event.kind);
    expect(kinds.filter((k) => k !== 'aux' && k !== 'sync-progress')).toEqual([
      'connected',
      'full-sync-start',
      'header',
      'selectdb',
      'resizedb',
      'entry',
      'end',
      'snapshot-done',
    ]);
  });

  it('discardRdb: lifecycle and commands only, with the database from the stream', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    await client.set('in-snapshot', 'v');
    await using listener = new ReplicaListener({ port: master.port, discardRdb: true, progressInterval: 0 });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    await client.select(4);
    await client.set('after', 'v');
    await recorder.untilSet('after');
    expect([...new Set(recorder.kinds())]).toEqual([
      'connected',
      'full-sync-start',
      'sync-progress',
      'snapshot-done',
      'command',
    ]);
    expect(recorder.commands().find((c) => c.name === 'SET')?.db).toBe(4);
    expectContiguous(recorder.events);
  });

  it('as an emitter: typed events, pause() and resume(), then error and close', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    await client.set('k', 'v');
    const listener = new ReplicaListener({ port: master.port, reconnect: false });
    const seen = { event: 0, rdb: 0, entry: 0, command: 0, lifecycle: 0 };
    for (const name of Object.keys(seen) as (keyof typeof seen)[]) listener.on(name, () => seen[name]++);
    const entries: RdbEntryEvent[] = [];
    listener.on('entry', (e) => entries.push(e));
    const commands: CommandEvent[] = [];
    const names: string[] = [];
    listener.on('command', (c) => {
      if (c.name !== 'PING') names.push(c.name); // the master's keep-alives come when they come
      if (c.name !== 'SET') return;
      commands.push(c);
      if (commands.length === 1) listener.pause();
    });
    const errors: Error[] = [];
    listener.on('error', (err) => errors.push(err));
    listener.start();
    await once(listener, 'lifecycle', { signal: AbortSignal.timeout(10_000) });
    while (listener.checkpoint === undefined) await sleep(20);
    await client.set('a', '1');
    await client.set('b', '2');
    await sleep(300);
    expect(listener.isPaused).toBe(true);
    expect(commands.map((c) => c.args[0]?.toString())).toEqual(['a']); // b waits
    expect(listener.stats.queuedEvents).toBe(1);
    listener.resume();
    expect(commands.map((c) => c.args[0]?.toString())).toEqual(['a', 'b']);
    expect(entries.map((e) => e.key.toString())).toEqual(['k']);
    expect(seen.event).toBe(seen.rdb + seen.command + seen.lifecycle);
    expect(seen.entry).toBe(1);
    expect(names).toEqual(['SELECT', 'SET', 'SET']);
    // A final error: `error`, then `close`.
    const closed = new Promise((resolve) => listener.once('close', () => resolve(undefined))); // once() would reject on `error`
    await master.kill();
    await closed;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'ERR_REPLICATION_CONNECTION_LOST' });
    expect(listener.status).toBe('closed');
  });
});

describe('closing', () => {
  /** A started listener, paused after its snapshot, with `n` SETs received and waiting in its queue. */
  async function withQueued(port: number, n: number, client: { set(k: string, v: string): Promise<unknown> }) {
    const listener = new ReplicaListener({ port });
    const names: string[] = [];
    listener.on('command', (c) => {
      if (c.name === 'SET') names.push(c.args[0]?.toString() ?? '');
    });
    listener.start();
    while (listener.checkpoint === undefined) await sleep(20);
    listener.pause();
    for (let i = 0; i < n; i++) await client.set(`q${i}`, 'v');
    while (listener.stats.queuedEvents < n) await sleep(20);
    return { listener, names };
  }

  it('close() lets the consumer take what was received, then resolves', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    const { listener, names } = await withQueued(master.port, 3, client);
    const closing = listener.close({ timeoutMs: 10_000 });
    await sleep(50);
    expect(listener.status).not.toBe('closed'); // waiting for the consumer
    listener.resume();
    await closing;
    expect(names).toEqual(['q0', 'q1', 'q2']);
    expect(listener.status).toBe('closed');
    // Nothing more is read after close(): a write now is not delivered.
    await client.set('late', 'v');
    await sleep(100);
    expect(names).not.toContain('late');
  });

  it('close() gives up at its bound what the consumer did not take, and says what and how many', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    const { listener, names } = await withQueued(master.port, 2, client);
    const checkpoint = listener.checkpoint;
    const queued = listener.stats.queuedEvents; // the SETs, and the SELECT before them
    const err = await listener.close({ timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
    expect(err).toMatchObject({ code: 'ERR_REPLICATION_ABANDONED', abandoned: { events: queued } });
    expect((err as Error).message).toMatch(new RegExp(`${queued} received events not delivered.*checkpoint`));
    expect(names).toEqual([]);
    expect(listener.checkpoint).toEqual(checkpoint); // where the abandoned events start
    expect(await listener.close().catch((e: unknown) => e)).toBe(err); // the same outcome again
  });

  it('close({ signal }) stops waiting when the signal fires', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    const { listener } = await withQueued(master.port, 1, client);
    const controller = new AbortController();
    const queued = listener.stats.queuedEvents;
    const closing = listener.close({ timeoutMs: 60_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(closing).rejects.toMatchObject({ code: 'ERR_REPLICATION_ABANDONED', abandoned: { events: queued } });
  });

  it('leaving a for-await loop closes without waiting and without an error', async () => {
    await using master = await spawnRedis();
    const listener = new ReplicaListener({ port: master.port });
    for await (const event of listener) if (event.kind === 'connected') break;
    expect(listener.status).toBe('closed');
    await listener.close(); // resolves: the consumer chose to stop
  });

  it('rejects close() options it does not take, and stays open', async () => {
    await using master = await spawnRedis();
    await using listener = new ReplicaListener({ port: master.port });
    await expect(listener.close({ timeout: 5 } as never)).rejects.toMatchObject({ code: 'ERR_REPLICATION_ARGUMENT' });
    await expect(listener.close({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_REPLICATION_ARGUMENT' });
    expect(listener.status).toBe('idle');
  });
});

describe('logger', () => {
  it('reports retried failures as warnings and connections as debug, with the master and the error', async () => {
    const lines: { level: string; context: Record<string, unknown>; message: string }[] = [];
    const logger = {
      debug: (context: object, message: string) => lines.push({ level: 'debug', context: context as never, message }),
      warn: (context: object, message: string) => lines.push({ level: 'warn', context: context as never, message }),
      error: (context: object, message: string) => lines.push({ level: 'error', context: context as never, message }),
    };
    await using master = await spawnRedis();
    await using proxy = await startProxy({ target: master });
    const listener = new ReplicaListener({ port: proxy.port, logger, reconnect: { initialDelay: 10, maxDelay: 20 } });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    proxy.cut();
    await recorder.until((e) => e.kind === 'continued');
    await listener.close();
    const warn = lines.find((l) => l.level === 'warn');
    expect(warn?.context).toMatchObject({
      package: '@redis-events/replication',
      master: `127.0.0.1:${proxy.port}`,
      code: 'ERR_REPLICATION_CONNECTION_LOST',
      err: expect.any(ReplicationError),
    });
    expect(warn?.message).toMatch(/reconnecting in \d+ ms/);
    expect(lines.filter((l) => l.level === 'debug').map((l) => l.message)).toEqual(
      expect.arrayContaining(['connected to the master', 'full sync started', 'partial sync (+CONTINUE)']),
    );
  });

  it('refuses a logger without the three methods, and options it does not know', () => {
    expect(() => new ReplicaListener({ logger: { warn() {} } as never })).toThrow(
      expect.objectContaining({ code: 'ERR_REPLICATION_ARGUMENT', message: expect.stringMatching(/logger/) }),
    );
    expect(() => new ReplicaListener({ readTimout: 5 } as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_REPLICATION_ARGUMENT',
        message: expect.stringMatching(/no option "readTimout".*readTimeout/),
      }),
    );
    expect(() => new ReplicaListener({ rdb: { batch: 5 } } as never)).toThrow(
      expect.objectContaining({
        code: 'ERR_REPLICATION_ARGUMENT',
        message: expect.stringMatching(/option rdb has no option "batch"/),
      }),
    );
  });
});

describe('flow control', () => {
  it('a slow consumer stops the socket: the queue stays bounded, the master holds the rest, nothing is lost', async () => {
    await using master = await spawnRedis({ config: { 'client-output-buffer-limit': 'replica 0 0 0' } });
    const client = master.createClient({ protocol: 2 });
    const writer = master.createClient({ protocol: 2 });
    const total = 20_000;
    const listener = new ReplicaListener({ port: master.port, maxQueuedEvents: 64, maxQueuedBytes: 256 * 1024 });
    const keys: string[] = [];
    let maxQueued = 0;
    let pausedSeen = false;
    let masterHeld = 0;
    const events: ReplicationEvent[] = [];
    for await (const event of listener) {
      events.push(event);
      maxQueued = Math.max(maxQueued, listener.stats.queuedEvents);
      if (event.kind === 'snapshot-done') {
        const pipeline = writer.pipeline();
        for (let i = 0; i < total; i++) pipeline.set(`key:${i}`, 'v'.repeat(100));
        await pipeline.exec();
        continue;
      }
      if (event.kind !== 'command' || event.name !== 'SET') continue;
      keys.push(event.args[0]?.toString() ?? '');
      if (keys.length === 1) {
        // Stall: the socket fills the queue, then is no longer read.
        await sleep(500);
        pausedSeen = listener.stats.readingPaused;
        const replicas = String(await client.call('CLIENT', 'LIST', 'TYPE', 'replica'));
        masterHeld = Number(/ omem=(\d+)/.exec(replicas)?.[1] ?? 0) + Number(/ tot-mem=(\d+)/.exec(replicas)?.[1] ?? 0);
      }
      if (keys.length === total) break;
    }
    expect(pausedSeen).toBe(true);
    expect(masterHeld).toBeGreaterThan(0);
    // The queue holds what was asked, plus what one socket chunk (64 KiB) can bring.
    expect(maxQueued).toBeLessThan(64 + 1000);
    expect(keys).toEqual(Array.from({ length: total }, (_, i) => `key:${i}`));
    expectContiguous(events);
  });

  it('REPLCONF ACK reports what was delivered: WAIT counts the listener once its consumer has the write', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    await using listener = new ReplicaListener({ port: master.port });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    listener.pause();
    await client.set('held', 'v');
    expect(await client.call('WAIT', 1, 1500)).toBe(0);
    listener.resume();
    await recorder.untilSet('held');
    expect(await client.call('WAIT', 1, 5000)).toBe(1);
    // GETACK was answered with the offset before it, like a Redis replica does.
    const getack = recorder.commands().find((c) => c.name === 'REPLCONF');
    expect(getack?.args.map(String)).toEqual(['GETACK', '*']);
  });

  it('reports the progress of a slow transfer', async () => {
    await using master = await spawnRedis({ config: { 'repl-diskless-sync': 'no', rdbcompression: 'no' } });
    const client = master.createClient({ protocol: 2 });
    await client.call('DEBUG', 'POPULATE', 2000, 'key', 1000);
    await using proxy = await startProxy({ target: master });
    proxy.setBandwidth(2 * 1024 * 1024);
    await using listener = new ReplicaListener({ port: proxy.port, progressInterval: 100 });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'sync-progress' && e.bytes > 0);
    const during = listener.progress;
    expect(during?.total).toBeGreaterThan(2_000_000);
    expect(during?.bytes).toBeLessThan(during?.total as number);
    await recorder.until((e) => e.kind === 'snapshot-done');
    const progress = recorder.events.filter((e) => e.kind === 'sync-progress');
    expect(progress.length).toBeGreaterThan(3);
    const bytes = progress.map((e) => e.bytes);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(progress.at(-1)).toEqual({ kind: 'sync-progress', bytes: during?.total, total: during?.total });
    expect(listener.progress).toBeUndefined();
    expect(listener.stats).toMatchObject({ connections: 1, fullSyncs: 1 });
    expect(listener.stats.bytesReceived).toBeGreaterThan(during?.total as number);
  });
});
