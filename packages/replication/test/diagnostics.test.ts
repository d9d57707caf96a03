// The listener's diagnostics channels, subscribed with plain node:diagnostics_channel against a
// real master: the handshake and the full sync as TracingChannels (start, then asyncEnd or error),
// the transfer's progress, each delivered command, and the lag, which rises while a slow consumer
// falls behind the master's writes and falls back to 0 once it caught up. Nobody subscribed: no
// second connection to the master.
import { randomBytes } from 'node:crypto';
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { spawnRedis, startProxy } from '@redis-events/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  REPLICATION_CHANNELS,
  ReplicaListener,
  type ReplicationCommandMessage,
  ReplicationError,
  type ReplicationHandshakeContext,
  type ReplicationLagMessage,
  type ReplicationSyncContext,
  type ReplicationSyncProgressMessage,
} from '../src/index.ts';
import { Recorder } from './live-helpers.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Records what a TracingChannel publishes, as [event, context] pairs. */
function traceOf<T extends object>(name: string) {
  const seen: [string, T][] = [];
  const handlers = {
    start: (ctx: unknown) => seen.push(['start', ctx as T]),
    end: (ctx: unknown) => seen.push(['end', ctx as T]),
    asyncStart: (ctx: unknown) => seen.push(['asyncStart', ctx as T]),
    asyncEnd: (ctx: unknown) => seen.push(['asyncEnd', ctx as T]),
    error: (ctx: unknown) => seen.push(['error', ctx as T]),
  };
  const channel = tracingChannel(name);
  channel.subscribe(handlers);
  cleanups.push(() => channel.unsubscribe(handlers));
  return seen;
}

/** Records what a plain channel publishes. */
function messagesOf<T>(name: string): T[] {
  const seen: T[] = [];
  const handler = (message: unknown) => seen.push(message as T);
  subscribe(name, handler);
  cleanups.push(() => unsubscribe(name, handler));
  return seen;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('diagnostics channels', () => {
  it('trace the handshake from the socket to the PSYNC answer, a full sync, then a resume', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    for (let i = 0; i < 50; i++) await client.set(`k${i}`, 'v');
    await using proxy = await startProxy({ target: master });
    const handshakes = traceOf<ReplicationHandshakeContext>(REPLICATION_CHANNELS.handshake);
    const syncs = traceOf<ReplicationSyncContext>(REPLICATION_CHANNELS.sync);
    const progress = messagesOf<ReplicationSyncProgressMessage>(REPLICATION_CHANNELS.syncProgress);
    await using listener = new ReplicaListener({ port: proxy.port, reconnect: { initialDelay: 10, maxDelay: 20 } });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    proxy.cut();
    await recorder.until((e) => e.kind === 'continued');

    const kinds = handshakes.map(([event]) => event);
    expect(kinds).toEqual(['start', 'end', 'asyncStart', 'asyncEnd', 'start', 'end', 'asyncStart', 'asyncEnd']);
    const [first, second] = [handshakes[0]?.[1], handshakes[4]?.[1]];
    expect(first).toMatchObject({
      serverAddress: '127.0.0.1',
      serverPort: proxy.port,
      attempt: 1,
      replId: '?',
      offset: -1,
      result: 'full',
    });
    expect(second).toMatchObject({ attempt: 1, result: 'continue', replId: listener.checkpoint?.replId });
    expect(second?.offset).toBe(listener.checkpoint?.replOffset);

    expect(syncs.map(([event]) => event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const sync = syncs[0]?.[1] as ReplicationSyncContext;
    expect(sync).toMatchObject({ serverPort: proxy.port, keys: 50, diskless: true, size: undefined });
    expect(sync.bytes).toBeGreaterThan(0);
    expect(sync.replId).toMatch(/^[0-9a-f]{40}$/);
    expect(progress.at(-1)).toMatchObject({ replId: sync.replId, bytes: sync.bytes, total: undefined });
  });

  it('report a failed attempt and a snapshot cut short on their error events', async () => {
    await using master = await spawnRedis({ config: { 'repl-diskless-sync': 'no' } });
    const client = master.createClient({ protocol: 2 });
    await client.set('big', randomBytes(3_000_000)); // incompressible: the transfer is 3 MB
    await using proxy = await startProxy({ target: master });
    const handshakes = traceOf<ReplicationHandshakeContext>(REPLICATION_CHANNELS.handshake);
    const syncs = traceOf<ReplicationSyncContext>(REPLICATION_CHANNELS.sync);
    proxy.cutAfter(1_000_000); // during the snapshot
    await using listener = new ReplicaListener({ port: proxy.port, reconnect: { initialDelay: 10, maxDelay: 20 } });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done', { timeoutMs: 20_000 });
    const failed = syncs.find(([event]) => event === 'error')?.[1];
    expect(failed?.error).toBeInstanceOf(ReplicationError);
    expect(failed?.error).toMatchObject({ code: 'ERR_REPLICATION_CONNECTION_LOST', phase: 'transfer' });
    expect(failed?.bytes).toBeGreaterThan(0);
    expect(syncs.filter(([event]) => event === 'asyncEnd').map(([, ctx]) => ctx.error?.code)).toEqual([
      'ERR_REPLICATION_CONNECTION_LOST',
      undefined,
    ]);

    // An attempt that fails: nothing listens on the port.
    const free = await spawnRedis();
    const port = free.port;
    await free.stop();
    const refused = new ReplicaListener({ port, connectTimeout: 300, reconnect: false });
    await expect(
      (async () => {
        for await (const _ of refused);
      })(),
    ).rejects.toMatchObject({ code: 'ERR_REPLICATION_CONNECT' });
    const error = handshakes.find(([event, ctx]) => event === 'error' && ctx.serverPort === port)?.[1];
    expect(error).toMatchObject({ attempt: 1, error: { code: 'ERR_REPLICATION_CONNECT' } });
  });

  it('publish each delivered command with its database and name, never its arguments', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    const commands = messagesOf<ReplicationCommandMessage>(REPLICATION_CHANNELS.command);
    await using listener = new ReplicaListener({ port: master.port });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    await client.select(3);
    await client.set('secret-key', 'secret-value');
    const set = await recorder.until((e) => e.kind === 'command' && e.name === 'SET');
    const message = commands.find((m) => m.command === 'SET');
    expect(message).toEqual({
      serverAddress: '127.0.0.1',
      serverPort: master.port,
      database: 3,
      command: 'SET',
      argsCount: 2,
      offset: set.kind === 'command' ? set.offset : -1,
      size: set.kind === 'command' ? set.size : -1,
      inTransaction: false,
    });
    expect(JSON.stringify(commands)).not.toContain('secret');
  });

  it('publish the lag: it rises while a slow consumer falls behind the master, and falls back to 0', async () => {
    await using master = await spawnRedis();
    const client = master.createClient({ protocol: 2 });
    const lags = messagesOf<ReplicationLagMessage>(REPLICATION_CHANNELS.lag);
    const listener = new ReplicaListener({ port: master.port, ackInterval: 100, maxQueuedEvents: 16 });
    let slow = false;
    const consumed = (async () => {
      for await (const event of listener) if (slow && event.kind === 'command') await sleep(20);
    })();
    while (listener.checkpoint === undefined) await sleep(20);
    slow = true;
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < 400; i++) writes.push(client.set(`k${i}`, 'v'.repeat(100)));
    await Promise.all(writes);
    // Behind: the master has written more than the consumer took, for a while.
    let behind: ReplicationLagMessage | undefined;
    while (!behind) {
      behind = lags.find((m) => m.phase === 'stream' && m.bytes > 10_000 && m.seconds > 0.2);
      await sleep(50);
    }
    expect(behind.masterOffset).toBeGreaterThanOrEqual(behind.receivedOffset);
    expect(behind.bytes).toBe((behind.masterOffset as number) - behind.deliveredOffset);
    slow = false;
    // Caught up: the next readings say 0.
    let caughtUp: ReplicationLagMessage | undefined;
    while (!caughtUp) {
      const last = lags.at(-1);
      if (last && last !== behind && last.bytes === 0) caughtUp = last;
      else await sleep(50);
    }
    expect(caughtUp).toMatchObject({ seconds: 0, phase: 'stream', queuedEvents: 0 });
    expect(caughtUp.masterOffset).toBe(caughtUp.deliveredOffset);
    await listener.close();
    await consumed;
  });

  it('publish the lag without the master offset when INFO is refused (an ACL user without +info)', async () => {
    await using master = await spawnRedis();
    await master.command('ACL', 'SETUSER', 'replicator', 'on', '>secret', '+psync', '+replconf', '+ping');
    const lags = messagesOf<ReplicationLagMessage>(REPLICATION_CHANNELS.lag);
    await using listener = new ReplicaListener({
      port: master.port,
      username: 'replicator',
      password: 'secret',
      ackInterval: 50,
    });
    const recorder = new Recorder(listener);
    await recorder.until((e) => e.kind === 'snapshot-done');
    while (lags.length < 5) await sleep(20);
    expect(lags.at(-1)).toMatchObject({ phase: 'stream', masterOffset: undefined, bytes: 0, seconds: 0 });
  });

  it('open no second connection to the master when nobody subscribes, and close theirs with the listener', async () => {
    await using master = await spawnRedis();
    const clients = async () => Number((await master.info('clients')).connected_clients);
    const before = await clients();
    {
      await using listener = new ReplicaListener({ port: master.port, ackInterval: 50 });
      const recorder = new Recorder(listener);
      await recorder.until((e) => e.kind === 'snapshot-done');
      await sleep(300);
      expect(await clients()).toBe(before); // the replica link is not a client; INFO's connection would be
      const lags = messagesOf<ReplicationLagMessage>(REPLICATION_CHANNELS.lag);
      while (lags.length < 3) await sleep(20);
      expect(await clients()).toBe(before + 1);
      expect(lags.at(-1)?.masterOffset).toBeTypeOf('number');
    }
    while ((await clients()) !== before) await sleep(20);
  });
});
