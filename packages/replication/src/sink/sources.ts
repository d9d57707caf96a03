// The sources a sync reads: a master (a ReplicaListener), every master of a Cluster (a
// ClusterReplicaListener), an RDB file, or AOF files. Each pushes its events, tagged with a
// shard, to the sync, and can be paused when the sync is behind. Live sources can also be
// asked for a key's current value together with the replication offset it stands for (MULTI:
// DUMP, PEXPIRETIME, ROLE, EXEC), which the sync uses to apply commands it cannot split.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { abortable, exponentialBackoff, type Logger, RespConnection } from '@redis-events/resp';
import { type AofEvent, describeAof, type ReadAofOptions, readAof } from '../aof/read-aof.ts';
import {
  type ClusterCheckpoint,
  ClusterReplicaListener,
  type ClusterShard,
  type ClusterTopologyEvent,
} from '../cluster-source.ts';
import { ReplicationError } from '../errors.ts';
import type { RdbEvent } from '../rdb-events.ts';
import { RdbParser, type RdbParserOptions } from '../rdb-parser.ts';
import { ReplicaListener, type ReplicaListenerOptions } from '../replica-listener.ts';
import type { ReplicationEvent } from '../replication-events.ts';
import { connectionOptions, type ResolvedEndpoint } from './endpoint.ts';
import type { SyncShardState } from './sync-state.ts';
import { serverInfoFrom, type TargetServerInfo } from './target.ts';

/** A shard of the source: the master, or one master of a Cluster, or the file. */
export type SourceShard = ClusterShard;

/** Everything a source delivers. */
export type SourceEvent = ReplicationEvent | AofEvent;

/** A key's value as the source has it now, and the replication offset that value stands for. */
export interface FetchedKey {
  /** The DUMP payload, or null when the key does not exist. */
  readonly payload: Buffer | null;
  /** Absolute expiry in Unix ms. */
  readonly expireAt: number | undefined;
  readonly offset: number;
}

export interface SourceHandlers {
  event(shard: SourceShard, event: SourceEvent): void;
  topology(event: ClusterTopologyEvent): void;
  /** The source is over: a file was read to its end (no error), or a live source failed. */
  end(error?: Error): void;
}

export interface SyncSource {
  readonly kind: 'master' | 'cluster' | 'rdb' | 'aof';
  readonly label: string;
  /** Whether {@link fetch} works. */
  readonly canFetch: boolean;
  start(handlers: SourceHandlers): Promise<void>;
  pause(): void;
  resume(): void;
  close(): Promise<void>;
  fetch(shard: SourceShard, db: number, key: Buffer): Promise<FetchedKey>;
  /** The master's replication offset now (live sources), for the lag. */
  masterOffset(shard: SourceShard): Promise<number | undefined>;
  /** The source server's keyspace (live sources): databases and key counts. */
  keyspace(): Promise<Map<number, number> | undefined>;
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
}

function fileShard(path: string): SourceShard {
  return { id: path, master: path, host: '', port: 0, ranges: [] };
}

/** A connection to a master for reads outside replication. */
function readConnection(
  endpoint: ResolvedEndpoint,
  connectTimeout: number,
  host?: string,
  port?: number,
): RespConnection<unknown> {
  return new RespConnection<unknown>(
    connectionOptions(endpoint, {
      host,
      port,
      connectTimeout,
      decoder: { strings: 'buffer', maps: 'array' },
      reconnect: exponentialBackoff({ initialDelay: 100, maxDelay: 2000 }),
      name: 'redis-events-sync-reader',
    }),
  );
}

async function fetchFrom(conn: RespConnection<unknown>, db: number, key: Buffer): Promise<FetchedKey> {
  // One transaction: the value, its expiry and the offset are of the same moment.
  const select = conn.send(['SELECT', db]);
  const multi = conn.send(['MULTI']);
  const queued = [conn.send(['DUMP', key]), conn.send(['PEXPIRETIME', key]), conn.send(['ROLE'])];
  // EXEC is awaited with the rest: a connection destroyed mid-fetch rejects them all, and none
  // may be left without a handler.
  const replies = await Promise.all([select, multi, ...queued, conn.send(['EXEC'])]);
  const reply = replies.at(-1) as unknown[];
  if (!Array.isArray(reply) || reply.length !== 3)
    throw new Error('the source answered the transaction with no results');
  const [payload, expire, role] = reply;
  if (payload instanceof Error) throw payload;
  if (expire instanceof Error) throw expire;
  const offset = Array.isArray(role) ? Number(role[1]) : Number.NaN;
  if (!Number.isSafeInteger(offset)) throw new Error('the source did not report its replication offset (ROLE)');
  const at = Number(expire);
  return { payload: payload === null ? null : (payload as Buffer), expireAt: at > 0 ? at : undefined, offset };
}

async function probe(
  conn: RespConnection<unknown>,
  label: string,
  signal: AbortSignal | undefined,
): Promise<TargetServerInfo> {
  try {
    await abortable(conn.connect(), signal);
    return serverInfoFrom(text(await conn.send(['INFO', 'server'])));
  } catch (err) {
    conn.destroy();
    if (signal?.aborted) throw err;
    throw new ReplicationError(
      'ERR_REPLICATION_CONNECT',
      `cannot reach the source ${label}: ${(err as Error)?.message ?? String(err)}`,
      {
        cause: err,
      },
    );
  }
}

async function keyspaceOf(conn: RespConnection<unknown>): Promise<Map<number, number>> {
  const info = text(await conn.send(['INFO', 'keyspace']));
  const out = new Map<number, number>();
  for (const m of info.matchAll(/^db(\d+):keys=(\d+)/gm)) out.set(Number(m[1]), Number(m[2]));
  return out;
}

/** Options the live sources pass on to their listeners. */
export type ListenerSettings = Omit<
  ReplicaListenerOptions,
  'url' | 'host' | 'port' | 'path' | 'username' | 'password' | 'tls' | 'replId' | 'replOffset' | 'db' | 'signal'
>;

/** A standalone master, through one ReplicaListener. */
export class MasterSource implements SyncSource {
  readonly kind = 'master' as const;
  readonly label: string;
  readonly canFetch = true;
  readonly #endpoint: ResolvedEndpoint;
  readonly #resume: SyncShardState | undefined;
  readonly #settings: ListenerSettings;
  readonly #connectTimeout: number;
  readonly #signal: AbortSignal | undefined;
  readonly #shard: SourceShard;
  #listener: ReplicaListener | undefined;
  #reader: RespConnection<unknown> | undefined;
  server: TargetServerInfo | undefined;

  constructor(
    endpoint: ResolvedEndpoint,
    resume: SyncShardState | undefined,
    settings: ListenerSettings,
    connectTimeout: number,
    signal: AbortSignal | undefined,
  ) {
    this.#endpoint = endpoint;
    this.label = endpoint.label;
    this.#resume = resume;
    this.#settings = settings;
    this.#connectTimeout = connectTimeout;
    this.#signal = signal;
    this.#shard = { id: endpoint.label, master: endpoint.label, host: endpoint.host, port: endpoint.port, ranges: [] };
  }

  get shard(): SourceShard {
    return this.#shard;
  }

  /** Connects a reader first: a source that is not there, or a wrong password, fails at once. */
  async open(): Promise<TargetServerInfo> {
    this.#reader = readConnection(this.#endpoint, this.#connectTimeout);
    this.server = await probe(this.#reader, this.label, this.#signal);
    return this.server;
  }

  async start(handlers: SourceHandlers): Promise<void> {
    const e = this.#endpoint;
    const resume = this.#resume;
    const listener = new ReplicaListener({
      ...this.#settings,
      ...(e.path !== undefined ? { path: e.path } : { host: e.host, port: e.port }),
      username: e.username,
      password: e.password,
      tls: e.tlsOption,
      name: this.#settings.name ?? 'redis-events-sync',
      connectTimeout: this.#connectTimeout,
      ...(resume ? { replId: resume.replId, replOffset: resume.replOffset, db: resume.db } : {}),
    });
    this.#listener = listener;
    const shard = this.#shard;
    listener.on('event', (event) => handlers.event(shard, event));
    listener.on('error', (err) => handlers.end(err));
    listener.on('close', () => handlers.end());
    listener.start();
  }

  pause(): void {
    this.#listener?.pause();
  }

  resume(): void {
    this.#listener?.resume();
  }

  async close(): Promise<void> {
    await this.#listener?.close();
    this.#reader?.destroy();
  }

  fetch(_shard: SourceShard, db: number, key: Buffer): Promise<FetchedKey> {
    if (!this.#reader) return Promise.reject(new Error('the source reader is not open'));
    return fetchFrom(this.#reader, db, key);
  }

  async masterOffset(): Promise<number | undefined> {
    if (this.#reader?.status !== 'ready') return undefined;
    const role = (await this.#reader.send(['ROLE'], { timeout: 2000 })) as unknown[];
    return Array.isArray(role) && text(role[0]) === 'master' ? Number(role[1]) : undefined;
  }

  keyspace(): Promise<Map<number, number> | undefined> {
    return this.#reader ? keyspaceOf(this.#reader) : Promise.resolve(undefined);
  }
}

/** Every master of a Cluster, through a ClusterReplicaListener. */
export class ClusterSource implements SyncSource {
  readonly kind = 'cluster' as const;
  readonly label: string;
  readonly canFetch = true;
  readonly #endpoint: ResolvedEndpoint;
  readonly #listener: ClusterReplicaListener;
  readonly #readers = new Map<string, RespConnection<unknown>>();
  readonly #connectTimeout: number;
  readonly #signal: AbortSignal | undefined;

  constructor(
    endpoint: ResolvedEndpoint,
    checkpoint: ClusterCheckpoint | undefined,
    settings: ListenerSettings,
    connectTimeout: number,
    signal: AbortSignal | undefined,
    logger: Logger | undefined,
  ) {
    this.#endpoint = endpoint;
    this.label = `cluster ${endpoint.label}`;
    this.#connectTimeout = connectTimeout;
    this.#signal = signal;
    this.#listener = new ClusterReplicaListener({
      ...settings,
      host: endpoint.host,
      port: endpoint.port,
      username: endpoint.username,
      password: endpoint.password,
      tls: endpoint.tlsOption,
      name: settings.name ?? 'redis-events-sync',
      connectTimeout,
      ...(checkpoint ? { checkpoint } : {}),
      ...(logger ? { logger } : {}),
    });
  }

  async start(handlers: SourceHandlers): Promise<void> {
    this.#listener.on('event', (shard, event) => handlers.event(shard, event));
    this.#listener.on('topology', (event) => handlers.topology(event));
    this.#listener.on('error', (err) => handlers.end(err));
    this.#listener.on('close', () => handlers.end());
    await abortable(this.#listener.start(), this.#signal);
  }

  pause(): void {
    this.#listener.pause();
  }

  resume(): void {
    this.#listener.resume();
  }

  async close(): Promise<void> {
    await this.#listener.close();
    for (const reader of this.#readers.values()) reader.destroy();
  }

  #reader(shard: SourceShard): RespConnection<unknown> {
    let reader = this.#readers.get(shard.master);
    if (!reader) {
      reader = readConnection(this.#endpoint, this.#connectTimeout, shard.host, shard.port);
      this.#readers.set(shard.master, reader);
    }
    return reader;
  }

  async fetch(shard: SourceShard, db: number, key: Buffer): Promise<FetchedKey> {
    const reader = this.#reader(shard);
    await reader.connect();
    return fetchFrom(reader, db, key);
  }

  async masterOffset(shard: SourceShard): Promise<number | undefined> {
    const reader = this.#reader(shard);
    if (reader.status === 'idle') await reader.connect();
    const role = (await reader.send(['ROLE'], { timeout: 2000 })) as unknown[];
    return Array.isArray(role) && text(role[0]) === 'master' ? Number(role[1]) : undefined;
  }

  async keyspace(): Promise<Map<number, number> | undefined> {
    return undefined;
  }
}

/** What file sources share: nothing to ask again, no master offset, no keyspace. */
abstract class FileSource {
  readonly canFetch = false;

  fetch(): Promise<FetchedKey> {
    return Promise.reject(new Error('a file cannot be asked for a key'));
  }

  async masterOffset(): Promise<number | undefined> {
    return undefined;
  }

  async keyspace(): Promise<Map<number, number> | undefined> {
    return undefined;
  }
}

/** An RDB file: a snapshot with no stream after it. */
export class RdbFileSource extends FileSource implements SyncSource {
  readonly kind = 'rdb' as const;
  readonly label: string;
  readonly #path: string;
  readonly #options: RdbParserOptions;
  #stream: ReturnType<typeof createReadStream> | undefined;
  size = 0;

  constructor(path: string, options: RdbParserOptions) {
    super();
    this.#path = path;
    this.label = path;
    this.#options = options;
  }

  async start(handlers: SourceHandlers): Promise<void> {
    try {
      const info = await stat(this.#path);
      if (!info.isFile()) throw new Error('not a regular file');
      this.size = info.size;
    } catch (err) {
      throw new ReplicationError('ERR_RDB_IO', `cannot read the RDB file ${this.#path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const shard = fileShard(this.#path);
    const parser = new RdbParser(this.#options);
    const stream = createReadStream(this.#path, { highWaterMark: 64 * 1024 });
    this.#stream = stream;
    let bytes = 0;
    let ended = false;
    const finish = (err?: Error) => {
      if (ended) return;
      ended = true;
      handlers.end(err);
    };
    handlers.event(shard, { kind: 'full-sync-start', replId: '?', offset: -1, size: this.size, diskless: false });
    stream.on('data', (chunk) => {
      try {
        const buf = chunk as Buffer;
        bytes += buf.length;
        for (const event of parser.write(buf)) handlers.event(shard, event as RdbEvent);
        handlers.event(shard, { kind: 'sync-progress', bytes, total: this.size });
      } catch (err) {
        stream.destroy();
        finish(err as Error);
      }
    });
    stream.on('error', (err) =>
      finish(
        new ReplicationError('ERR_RDB_IO', `cannot read the RDB file ${this.#path}: ${err.message}`, { cause: err }),
      ),
    );
    stream.on('end', () => {
      try {
        for (const event of parser.end()) handlers.event(shard, event as RdbEvent);
        handlers.event(shard, { kind: 'snapshot-done', replId: '?', offset: -1, db: 0 });
        finish();
      } catch (err) {
        finish(err as Error);
      }
    });
  }

  pause(): void {
    this.#stream?.pause();
  }

  resume(): void {
    this.#stream?.resume();
  }

  async close(): Promise<void> {
    this.#stream?.destroy();
  }
}

/** AOF files (a Redis 7 folder or manifest, or one legacy file). */
export class AofSource extends FileSource implements SyncSource {
  readonly kind = 'aof' as const;
  readonly label: string;
  readonly #path: string;
  readonly #options: ReadAofOptions;
  readonly #resumeAt: { readonly file: string; readonly offset: number } | undefined;
  #paused = false;
  #wake: (() => void) | undefined;
  #stop = new AbortController();

  constructor(path: string, options: ReadAofOptions, resumeAt: { file: string; offset: number } | undefined) {
    super();
    this.#path = path;
    this.label = path;
    this.#options = options;
    this.#resumeAt = resumeAt;
  }

  /** Set by start(): the saved file is no longer part of the AOF (a rewrite replaced it). */
  resumeLost = false;

  async start(handlers: SourceHandlers): Promise<void> {
    const shard = fileShard(this.#path);
    let resumeAt = this.#resumeAt;
    if (resumeAt) {
      const layout = await describeAof(this.#path);
      if (!layout.files.some((f) => f.name === resumeAt?.file)) {
        this.resumeLost = true;
        resumeAt = undefined;
      }
    }
    // Events before the resume point were applied by an earlier run: parse them (the database
    // of later commands depends on them) but do not deliver them.
    let skipping = resumeAt !== undefined;
    let inResumeFile = false;
    const events = readAof(this.#path, { ...this.#options, signal: this.#stop.signal });
    const pump = async () => {
      for await (const event of events) {
        if (skipping && event.kind !== 'aof-end') {
          if (event.kind === 'aof-file') {
            if (inResumeFile)
              skipping = false; // past the resume file: everything after is new
            else {
              inResumeFile = event.name === resumeAt?.file;
              if (inResumeFile) handlers.event(shard, event);
              continue;
            }
          } else {
            if (!inResumeFile || event.kind !== 'command' || event.offset <= (resumeAt?.offset ?? -1)) continue;
            skipping = false;
          }
        }
        handlers.event(shard, event);
        while (this.#paused) await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    };
    pump().then(
      () => handlers.end(),
      (err: unknown) => handlers.end(this.#stop.signal.aborted ? undefined : (err as Error)),
    );
  }

  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  async close(): Promise<void> {
    this.#stop.abort();
    this.resume();
  }
}
