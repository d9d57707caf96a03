// Helpers of the live listener tests: a recorder of a listener's events that can wait for a
// condition, the invariant every command stream must keep (offsets without gaps or overlaps),
// and a TCP proxy that tampers with what a real master sends, for the broken-master tests.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { expect } from 'vitest';
import type {
  CommandEvent,
  RdbEntryEvent,
  ReplicaListener,
  ReplicationCheckpoint,
  ReplicationEvent,
} from '../src/index.ts';
import { entries } from './event-helpers.ts';

/** Records every event of a started listener; `until` waits for one that matches. */
export class Recorder {
  readonly events: ReplicationEvent[] = [];
  /** `listener.checkpoint` right after each event was delivered. */
  readonly checkpoints: (ReplicationCheckpoint | undefined)[] = [];
  error: Error | undefined;
  closed = false;
  #wake: (() => void)[] = [];
  readonly listener: ReplicaListener;

  constructor(listener: ReplicaListener) {
    this.listener = listener;
    listener.on('event', (event) => {
      this.events.push(event);
      this.checkpoints.push(listener.checkpoint);
      this.#notify();
    });
    listener.on('error', (err) => {
      this.error = err;
      this.#notify();
    });
    listener.on('close', () => {
      this.closed = true;
      this.#notify();
    });
    listener.start();
  }

  #notify(): void {
    for (const wake of this.#wake.splice(0)) wake();
  }

  /** Resolves with the first event (from index `from`) that matches; fails on the listener's error or a timeout. */
  async until(
    match: (event: ReplicationEvent) => boolean,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<ReplicationEvent> {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    let at = options.from ?? 0;
    for (;;) {
      for (; at < this.events.length; at++)
        if (match(this.events[at] as ReplicationEvent)) return this.events[at] as ReplicationEvent;
      if (this.error) throw this.error;
      if (this.closed) throw new Error(`the listener closed; last events: ${this.describe(10)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; last events: ${this.describe(10)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.#wake.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for `SET <key> ...` in the command stream. */
  untilSet(key: string, options: { from?: number; timeoutMs?: number } = {}): Promise<ReplicationEvent> {
    return this.until((e) => e.kind === 'command' && e.name === 'SET' && e.args[0]?.toString() === key, options);
  }

  commands(): CommandEvent[] {
    return this.events.filter((e): e is CommandEvent => e.kind === 'command');
  }

  kinds(): string[] {
    return this.events.map((e) => e.kind);
  }

  describe(last: number): string {
    return this.events
      .slice(-last)
      .map((e) => (e.kind === 'command' ? `${e.name}@${e.offset}` : e.kind))
      .join(', ');
  }
}

/** Entries of the last complete snapshot among the events, as plain objects (see `entries`). */
export function snapshotEntries(events: readonly ReplicationEvent[]): Record<string, unknown>[] {
  const start = events.findLastIndex((e) => e.kind === 'full-sync-start');
  const end = events.findLastIndex((e) => e.kind === 'snapshot-done');
  expect(start, 'a full sync').toBeGreaterThanOrEqual(0);
  expect(end, 'a complete snapshot').toBeGreaterThan(start);
  const rdb = events.slice(start + 1, end).filter((e) => e.kind !== 'sync-progress');
  return entries(rdb as RdbEntryEvent[]);
}

/**
 * The stream invariant: within one offset space (between full syncs), each command starts where
 * the previous one ended (`offset - size`), across reconnects too: nothing lost, nothing twice.
 */
export function expectContiguous(events: readonly ReplicationEvent[]): void {
  let at: number | undefined;
  for (const event of events) {
    if (event.kind === 'full-sync-start') at = undefined;
    else if (event.kind === 'snapshot-done') at = event.offset;
    else if (event.kind === 'continued') {
      if (at !== undefined) expect(event.offset, 'a resume where the stream stopped').toBe(at);
      at = event.offset;
    } else if (event.kind === 'command') {
      if (at !== undefined) expect(event.offset - event.size, `${event.name} starts where the last ended`).toBe(at);
      at = event.offset;
    }
  }
}

/** What a {@link TamperProxy} does to the next connection's downstream bytes. */
export interface TamperRule {
  /** Start holding bytes back at the chunk where this text appears (for example `+FULLRESYNC`). */
  readonly from: string;
  /** Release them once this holds for the bytes held... */
  readonly until: (held: Buffer) => boolean;
  /** ...changed by this. */
  readonly edit: (held: Buffer) => Buffer;
}

/**
 * A TCP proxy in front of a real master that can change what the master sends: hold back a
 * part of the downstream bytes and edit it (a damaged snapshot, a wrong length, a wrong end
 * mark), or inject bytes into the stream.
 */
export class TamperProxy implements AsyncDisposable {
  readonly #server: Server;
  readonly #links = new Set<{ client: Socket; server: Socket }>();
  #rule: TamperRule | undefined;
  /** The first 64 KiB the master sent on the last connection, as they were. */
  downstream: Buffer = Buffer.alloc(0);

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    server.on('connection', (client) => {
      const upstream = createConnection(target);
      const link = { client, server: upstream };
      this.#links.add(link);
      const close = () => {
        this.#links.delete(link);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.on('data', (chunk: Buffer) => upstream.write(chunk));
      const rule = this.#rule;
      this.#rule = undefined;
      let held: Buffer | undefined;
      this.downstream = Buffer.alloc(0);
      upstream.on('data', (chunk: Buffer) => {
        if (this.downstream.length < 65536) this.downstream = Buffer.concat([this.downstream, chunk]);
        if (rule && held === undefined) {
          const at = chunk.indexOf(rule.from);
          if (at < 0) {
            client.write(chunk);
            return;
          }
          client.write(chunk.subarray(0, at));
          held = Buffer.alloc(0);
          chunk = chunk.subarray(at);
        }
        if (rule && held !== undefined && held !== DONE) {
          held = Buffer.concat([held, chunk]);
          if (!rule.until(held)) return;
          client.write(rule.edit(held));
          held = DONE;
          return;
        }
        client.write(chunk);
      });
    });
  }

  static async start(target: { host: string; port: number }): Promise<TamperProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    return new TamperProxy(server, target);
  }

  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  /** Applies `rule` to the next connection. */
  tamper(rule: TamperRule): void {
    this.#rule = rule;
  }

  /** Writes `bytes` to every open connection, as if the master had sent them. */
  inject(bytes: Buffer): void {
    for (const { client } of this.#links) client.write(bytes);
  }

  async close(): Promise<void> {
    for (const { client, server } of this.#links) {
      client.destroy();
      server.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

const DONE = Buffer.alloc(0);
