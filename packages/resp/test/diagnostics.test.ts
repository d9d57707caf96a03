import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RespConnection } from '../src/connection.ts';
import { type CommandTraceContext, RESP_COMMAND_CHANNEL } from '../src/diagnostics.ts';
import { ReplyError, RespError } from '../src/errors.ts';

type Event = 'start' | 'end' | 'asyncStart' | 'asyncEnd' | 'error';

/** Records every event of the command channel, with a copy of the context at that moment. */
function record() {
  const events: { event: Event; context: CommandTraceContext; snapshot: Record<string, unknown> }[] = [];
  const on = (event: Event) => (message: unknown) => {
    const context = message as CommandTraceContext;
    events.push({ event, context, snapshot: { ...context } });
  };
  const handlers = {
    start: on('start'),
    end: on('end'),
    asyncStart: on('asyncStart'),
    asyncEnd: on('asyncEnd'),
    error: on('error'),
  };
  const channel = tracingChannel<unknown, CommandTraceContext>(RESP_COMMAND_CHANNEL);
  channel.subscribe(handlers);
  return { events, stop: () => channel.unsubscribe(handlers) };
}

describe('the redis-events:resp:command TracingChannel', () => {
  let server: SpawnedRedis;
  const connections: RespConnection[] = [];
  let stopRecording: (() => void) | undefined;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterEach(async () => {
    stopRecording?.();
    stopRecording = undefined;
    for (const c of connections.splice(0)) await c.close().catch(() => {});
  });
  afterAll(() => server.stop());

  async function open(options: { db?: number } = {}) {
    const connection = new RespConnection({ url: server.url, db: options.db });
    connections.push(connection);
    await connection.connect();
    return connection;
  }

  it('traces a command from send() to its reply, naming the server and never the arguments', async () => {
    const connection = await open({ db: 3 });
    const recorder = record();
    stopRecording = recorder.stop;
    const key = `${server.keyPrefix()}traced`;
    expect(await connection.send(['SET', key, 'secret-value'])).toBe('OK');
    expect(recorder.events.map((e) => e.event)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
    const context = recorder.events[0]?.context;
    expect(recorder.events.every((e) => e.context === context)).toBe(true);
    expect(recorder.events[0]?.snapshot).toEqual({
      command: 'SET',
      argsCount: 2,
      serverAddress: server.host,
      serverPort: server.port,
      database: 3,
    });
    expect(context?.result).toBe('OK');
    expect(JSON.stringify(recorder.events[0]?.snapshot)).not.toContain('secret-value');
    expect(JSON.stringify(recorder.events[0]?.snapshot)).not.toContain(key);
  });

  it('publishes error with the ReplyError when the server answers with an error', async () => {
    const connection = await open();
    const recorder = record();
    stopRecording = recorder.stop;
    const key = `${server.keyPrefix()}list`;
    await connection.send(['RPUSH', key, 'a']);
    const failed = await connection.send(['incr', key]).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(ReplyError);
    const events = recorder.events.filter((e) => e.context.command === 'INCR');
    expect(events.map((e) => e.event)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    expect(events[0]?.context.error).toBe(failed);
    expect((failed as ReplyError).prefix).toBe('WRONGTYPE');
  });

  it('publishes error with the RespError of a refused call (closed connection, timeout)', async () => {
    const connection = await open();
    const recorder = record();
    stopRecording = recorder.stop;
    const timedOut = await connection
      .send(['BLPOP', `${server.keyPrefix()}empty`, 0], { timeout: 50 })
      .catch((err: unknown) => err);
    expect(timedOut).toBeInstanceOf(RespError);
    expect((timedOut as RespError).code).toBe('ERR_RESP_TIMEOUT');
    await connection.close({ timeoutMs: 1000 }).catch(() => {});
    const closed = await connection.send(['PING']).catch((err: unknown) => err);
    expect((closed as RespError).code).toBe('ERR_RESP_CLOSED');
    const errors = recorder.events.filter((e) => e.event === 'error');
    expect(errors.map((e) => [e.context.command, e.context.error?.code])).toEqual([
      ['BLPOP', 'ERR_RESP_TIMEOUT'],
      ['PING', 'ERR_RESP_CLOSED'],
    ]);
  });

  it('traces what onConnect sends, not the handshake', async () => {
    const recorder = record();
    stopRecording = recorder.stop;
    const connection = new RespConnection({
      url: server.url,
      onConnect: async (session) => {
        await session.send(['CLIENT', 'SETNAME', 'traced']);
      },
    });
    connections.push(connection);
    await connection.connect();
    const names = recorder.events.filter((e) => e.event === 'start').map((e) => e.context.command);
    expect(names).toEqual(['CLIENT']);
    expect(recorder.events.find((e) => e.event === 'start')?.context.argsCount).toBe(2);
  });

  it('names the Unix socket path and no port on a Unix socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'resp-trace-unix-'));
    const socketPath = join(dir, 'redis.sock');
    const unix = await spawnRedis({ config: { unixsocket: socketPath, unixsocketperm: 700 } });
    try {
      const connection = new RespConnection({ url: `unix://${socketPath}?db=2` });
      connections.push(connection);
      await connection.connect();
      // a plain subscriber of the start channel sees the same contexts as a TracingChannel one
      const seen: CommandTraceContext[] = [];
      const onStart = (message: unknown) => seen.push(message as CommandTraceContext);
      subscribe(`tracing:${RESP_COMMAND_CHANNEL}:start`, onStart);
      try {
        expect(await connection.send(['PING'])).toBe('PONG');
      } finally {
        unsubscribe(`tracing:${RESP_COMMAND_CHANNEL}:start`, onStart);
      }
      expect(seen).toEqual([
        {
          command: 'PING',
          argsCount: 0,
          serverAddress: socketPath,
          serverPort: undefined,
          database: 2,
          result: 'PONG',
        },
      ]);
      await connection.close();
    } finally {
      await unix.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('publishes nothing and builds no context once the subscriber is gone', async () => {
    const connection = await open();
    const recorder = record();
    recorder.stop();
    await connection.send(['PING']);
    expect(recorder.events).toEqual([]);
    expect(tracingChannel(RESP_COMMAND_CHANNEL).hasSubscribers).toBe(false);
  });
});
