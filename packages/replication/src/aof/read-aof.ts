// Reading AOF files from disk: a Redis 7 multi-part set (a folder or its manifest: the base,
// RDB or AOF, then every increment file in order) or a single legacy `appendonly.aof` (which
// may start with an RDB preamble). Each file is streamed through an AofParser, so memory stays
// at one command (or one RDB part) whatever the size of the files.

import { createReadStream } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { abortError, ReplicationError } from '../errors.ts';
import { type AofManifest, parseAofManifest } from './aof-manifest.ts';
import { AofParser, type AofParserEvent, type AofParserOptions } from './aof-parser.ts';

/** Before each file of an AOF set: which file the events that follow come from. */
export interface AofFileEvent {
  readonly kind: 'aof-file';
  readonly path: string;
  readonly name: string;
  /** `base` and `incr` files of a manifest, or `single` for a lone (legacy) AOF file. */
  readonly type: 'base' | 'incr' | 'single';
  /** The manifest's sequence number. */
  readonly seq?: number | undefined;
  /** Bytes of the file when it was opened. */
  readonly size: number;
}

/** The last event of {@link readAof}: what was read, and what was dropped at the end. */
export interface AofEndEvent {
  readonly kind: 'aof-end';
  readonly files: number;
  readonly commands: number;
  /** Bytes of a partial command at the end of the last file, dropped (Redis' `aof-load-truncated`). */
  readonly truncatedBytes: number;
  /** Commands of a `MULTI` never closed by `EXEC` at the end, dropped as Redis drops them. */
  readonly discardedCommands: number;
  /** A `MULTI` larger than `maxTransactionBytes` was delivered and never closed. */
  readonly openTransaction: boolean;
  /** With `untilTimestamp`: the `#TS:` annotation reading stopped at. */
  readonly stoppedAt?: number | undefined;
}

/** Everything {@link readAof} yields. */
export type AofEvent = AofParserEvent | AofFileEvent | AofEndEvent;

/**
 * Options of {@link readAof}.
 *
 * @example
 * ```ts
 * const events = readAof('/var/lib/redis/appendonlydir', { untilTimestamp: Date.parse('2026-01-31T12:00Z') / 1000 });
 * ```
 */
export interface ReadAofOptions extends Omit<AofParserOptions, 'allowTruncated'> {
  /**
   * `allow-last` (default, as Redis' `aof-load-truncated yes`): a partial command at the end of
   * the last file is dropped and reported in the `aof-end` event; anywhere else it is an error.
   * `error`: always `ERR_AOF_TRUNCATED`.
   */
  readonly truncated?: 'allow-last' | 'error' | undefined;
  /**
   * Stop before the first `#TS:` annotation later than this (Unix seconds): the data as it was
   * at that time, for servers with `aof-timestamp-enabled yes`.
   */
  readonly untilTimestamp?: number | undefined;
  /** Stops reading (and closes the file) when aborted; the iterator throws `ERR_REPLICATION_ABORTED`, named `AbortError`. */
  readonly signal?: AbortSignal | undefined;
}

/** The files {@link readAof} reads, in order, as {@link describeAof} finds them. */
export interface AofLayout {
  /** The manifest, when the set has one. */
  readonly manifestPath?: string | undefined;
  readonly manifest?: AofManifest | undefined;
  readonly files: readonly {
    readonly path: string;
    readonly name: string;
    readonly type: 'base' | 'incr' | 'single';
    readonly seq?: number | undefined;
  }[];
}

const CHUNK = 64 * 1024;

function io(message: string, cause: unknown): ReplicationError {
  return new ReplicationError('ERR_AOF_IO', `${message}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
}

async function startsWith(path: string, text: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(text.length);
    const { bytesRead } = await handle.read(buf, 0, text.length, 0);
    return bytesRead === text.length && buf.toString('latin1') === text;
  } finally {
    await handle.close();
  }
}

/**
 * Finds the files of an AOF: a folder (Redis 7 `appendonlydir`, holding one manifest), a
 * manifest, or a single AOF file (Redis 6 and older, or any file of commands, with or without
 * an RDB preamble). Files a manifest names must exist.
 *
 * @example
 * ```ts
 * const layout = await describeAof('/var/lib/redis/appendonlydir');
 * for (const file of layout.files) console.log(file.type, file.name);
 * ```
 * @throws {ReplicationError} `ERR_AOF_IO` (unreadable path), `ERR_AOF_MANIFEST` (no or several manifests, a bad manifest, a missing file).
 */
export async function describeAof(path: string): Promise<AofLayout> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw io(`cannot read the AOF at ${path}`, err);
  }
  let manifestPath: string | undefined;
  if (info.isDirectory()) {
    let names: string[];
    try {
      names = await readdir(path);
    } catch (err) {
      throw io(`cannot list the AOF folder ${path}`, err);
    }
    const manifests = names.filter((n) => n.endsWith('.manifest') && !n.startsWith('temp-')).sort();
    if (manifests.length === 0)
      throw new ReplicationError(
        'ERR_AOF_MANIFEST',
        `the folder ${path} holds no AOF manifest (*.manifest): give the path of a single AOF file instead`,
      );
    if (manifests.length > 1)
      throw new ReplicationError(
        'ERR_AOF_MANIFEST',
        `the folder ${path} holds several manifests (${manifests.join(', ')}): give the path of the one to read`,
      );
    manifestPath = join(path, manifests[0] as string);
  } else if (!info.isFile()) {
    throw io(`cannot read the AOF at ${path}`, new Error('not a file or a folder'));
  } else if (path.endsWith('.manifest') || (await startsWith(path, 'file ').catch(() => false))) {
    manifestPath = path;
  }
  if (manifestPath === undefined) return { files: [{ path, name: basename(path), type: 'single' }] };
  let text: Buffer;
  try {
    text = await readFile(manifestPath);
  } catch (err) {
    throw io(`cannot read the AOF manifest ${manifestPath}`, err);
  }
  const manifest = parseAofManifest(text);
  const folder = dirname(manifestPath);
  const files = [...(manifest.base ? [manifest.base] : []), ...manifest.incr].map((f) => ({
    path: join(folder, f.name),
    name: f.name,
    type: f.type as 'base' | 'incr',
    seq: f.seq,
  }));
  for (const file of files) {
    try {
      const s = await stat(file.path);
      if (!s.isFile()) throw new Error('not a regular file');
    } catch (err) {
      throw new ReplicationError(
        'ERR_AOF_MANIFEST',
        `the manifest ${manifestPath} names ${file.name}, which cannot be read: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  return { manifestPath, manifest, files };
}

/**
 * Reads an AOF into events: for each file an `aof-file` event, then its RDB events (an RDB base
 * or preamble) and its commands (each a {@link CommandEvent} with its database and its byte
 * offset in that file), `annotation` events for `#TS:` lines, and an `aof-end` event with what
 * was dropped at the end. `path` is a Redis 7 AOF folder, its manifest, or a single AOF file.
 * Memory stays at one command whatever the size of the files.
 *
 * @example
 * ```ts
 * import { readAof } from '@redis-events/replication';
 *
 * for await (const event of readAof('/var/lib/redis/appendonlydir')) {
 *   if (event.kind === 'command') console.log(`db${event.db}`, event.name, ...event.args.map(String));
 *   else if (event.kind === 'entry' && event.last) console.log('base key', event.key.toString());
 * }
 * ```
 * @throws {ReplicationError} `ERR_AOF_IO`, `ERR_AOF_MANIFEST`, `ERR_AOF_CORRUPT`, `ERR_AOF_TRUNCATED`, `ERR_AOF_LIMIT`, and RDB errors of a base file.
 */
export async function* readAof(path: string, options: ReadAofOptions = {}): AsyncGenerator<AofEvent, void, undefined> {
  const { truncated = 'allow-last', untilTimestamp, signal, ...parserOptions } = options;
  if (truncated !== 'allow-last' && truncated !== 'error')
    throw new ReplicationError(
      'ERR_REPLICATION_ARGUMENT',
      `truncated must be 'allow-last' or 'error', got ${String(truncated)}`,
    );
  if (untilTimestamp !== undefined && !Number.isFinite(untilTimestamp))
    throw new ReplicationError(
      'ERR_REPLICATION_ARGUMENT',
      `untilTimestamp must be Unix seconds, got ${String(untilTimestamp)}`,
    );
  const aborted = () => abortError(signal?.reason, `reading the AOF at ${path}`);
  if (signal?.aborted) throw aborted();
  const layout = await describeAof(path);
  let commands = 0;
  let truncatedBytes = 0;
  let discardedCommands = 0;
  let openTransaction = false;
  let stoppedAt: number | undefined;
  let files = 0;
  for (let index = 0; index < layout.files.length && stoppedAt === undefined; index++) {
    const file = layout.files[index] as AofLayout['files'][number];
    const last = index === layout.files.length - 1;
    let size: number;
    try {
      size = (await stat(file.path)).size;
    } catch (err) {
      throw io(`cannot read ${file.path}`, err);
    }
    files++;
    yield file.seq === undefined
      ? { kind: 'aof-file', path: file.path, name: file.name, type: file.type, size }
      : { kind: 'aof-file', path: file.path, name: file.name, type: file.type, seq: file.seq, size };
    const parser = new AofParser({ ...parserOptions, allowTruncated: last && truncated === 'allow-last' });
    const stream = createReadStream(file.path, { highWaterMark: CHUNK });
    try {
      const deliver = function* (events: AofParserEvent[]): Generator<AofParserEvent, boolean> {
        for (const event of events) {
          if (
            untilTimestamp !== undefined &&
            event.kind === 'annotation' &&
            event.timestamp !== undefined &&
            event.timestamp > untilTimestamp
          ) {
            stoppedAt = event.timestamp;
            return false;
          }
          if (event.kind === 'command') commands++;
          yield event;
        }
        return true;
      };
      let going = true;
      try {
        for await (const chunk of stream) {
          if (signal?.aborted) throw aborted();
          going = yield* deliver(parser.write(chunk as Buffer));
          if (!going) break;
        }
      } catch (err) {
        if (err instanceof ReplicationError) throw err;
        if (signal?.aborted) throw aborted();
        throw io(`cannot read ${file.path}`, err);
      }
      if (going) {
        let tail: AofParserEvent[];
        try {
          tail = parser.end();
        } catch (err) {
          if (err instanceof ReplicationError && err.code === 'ERR_AOF_TRUNCATED' && !last)
            throw new ReplicationError(
              'ERR_AOF_TRUNCATED',
              `${file.name} ends inside a command but is not the last file of the set: the set is damaged (${err.message})`,
              { cause: err },
            );
          throw err;
        }
        yield* deliver(tail);
        truncatedBytes += parser.truncatedBytes;
        discardedCommands += parser.discardedCommands;
        openTransaction ||= parser.openTransaction;
      }
    } finally {
      stream.destroy();
    }
  }
  yield stoppedAt === undefined
    ? { kind: 'aof-end', files, commands, truncatedBytes, discardedCommands, openTransaction }
    : { kind: 'aof-end', files, commands, truncatedBytes, discardedCommands, openTransaction, stoppedAt };
}
