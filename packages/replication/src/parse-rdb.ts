import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { abortable, throwIfAborted } from '@redis-events/resp';
import { abortError, ReplicationError } from './errors.ts';
import { PARSER_OPTIONS, parserOptionsOf, rejectUnknownOptions } from './options.ts';
import type { RdbEvent } from './rdb-events.ts';
import { RdbParser, type RdbParserOptions } from './rdb-parser.ts';

/** Anything {@link parseRdb} reads bytes from. */
export type RdbSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | ReadableStream<Uint8Array> | Uint8Array;

/**
 * Options of {@link parseRdb} and {@link parseRdbFile}.
 *
 * @example
 * ```ts
 * const events = parseRdbFile('dump.rdb', { batchSize: 100, signal: AbortSignal.timeout(60_000) });
 * ```
 */
export interface ParseRdbOptions extends RdbParserOptions {
  /**
   * Stops parsing (and closes a file) when aborted: the iterator then throws a `ReplicationError`
   * `ERR_REPLICATION_ABORTED` named `'AbortError'`, with the signal's reason as `cause` (an
   * unfinished parse never ends as if the RDB were complete).
   */
  readonly signal?: AbortSignal | undefined;
}

// Input is fed to the parser in slices of this size so that one huge chunk (a whole file given
// as a Buffer) cannot produce an unbounded array of events at once. Small slices also keep few
// events alive at a time, which keeps V8's young generation (and the process) small.
const SLICE = 16 * 1024;
// Files are read in larger pieces (fewer system calls), then sliced.
const READ_SIZE = 64 * 1024;

/**
 * Parses an RDB from any byte source (a Node stream, a web `ReadableStream`, an async iterable
 * of chunks, or one Buffer) into events, in file order. Memory stays bounded: the source is
 * read as the events are consumed, and a large key arrives in parts (`part`, `last`).
 *
 * @example
 * ```ts
 * import { parseRdb } from '@redis-events/replication';
 *
 * for await (const event of parseRdb(process.stdin)) {
 *   if (event.kind === 'entry' && event.last) console.log(event.db, event.key.toString(), event.type);
 * }
 * ```
 * @throws {RdbError} `ERR_RDB_TRUNCATED`, `ERR_RDB_CORRUPT`, `ERR_RDB_CHECKSUM`, `ERR_RDB_UNKNOWN_TYPE`... with the byte offset and key.
 */
export async function* parseRdb(
  source: RdbSource,
  options: ParseRdbOptions = {},
): AsyncGenerator<RdbEvent, void, undefined> {
  rejectUnknownOptions(options, [...PARSER_OPTIONS, 'signal'], 'parseRdb');
  const parser = new RdbParser(parserOptionsOf(options));
  const signal = options.signal;
  const aborted = (reason: unknown) => abortError(reason, 'parsing the RDB');
  throwIfAborted(signal, aborted);
  const chunks = chunksOf(source);
  try {
    for (;;) {
      // A source that stalls (a socket, a pipe) does not keep an aborted parse waiting.
      const next = await abortable(chunks.next(), signal, aborted);
      if (next.done) break;
      const chunk = next.value;
      if (parser.done) break;
      for (let at = 0; at < chunk.length; at += SLICE) {
        // The events a slice completed before a failure come first, then the failure.
        const events: RdbEvent[] = [];
        const failure = writeInto(parser, chunk.length <= SLICE ? chunk : chunk.subarray(at, at + SLICE), events);
        for (const event of events) {
          yield event;
          throwIfAborted(signal, aborted);
        }
        if (failure) throw failure.error;
      }
    }
  } finally {
    // Releases the source (a web stream's lock, a Node stream's iterator) however the loop ended.
    void chunks.return(undefined).catch(() => {});
  }
  for (const event of parser.end()) yield event;
}

/** Feeds one slice; the events it completed are in `into`, also when it failed (then returned). */
function writeInto(parser: RdbParser, slice: Uint8Array, into: RdbEvent[]): { error: unknown } | undefined {
  try {
    parser.write(slice, into);
    return undefined;
  } catch (error) {
    return { error };
  }
}

/**
 * Parses an RDB file (`dump.rdb`, an AOF base `*.base.rdb`) into events, reading it in 256 KiB
 * chunks. See {@link parseRdb}.
 *
 * @example
 * ```ts
 * import { parseRdbFile } from '@redis-events/replication';
 *
 * let keys = 0;
 * for await (const event of parseRdbFile('/var/lib/redis/dump.rdb')) {
 *   if (event.kind === 'aux' && event.name === 'redis-ver') console.log('saved by', event.value.toString());
 *   if (event.kind === 'entry' && event.last) keys++;
 * }
 * console.log(keys, 'keys');
 * ```
 * @throws {ReplicationError} `ERR_RDB_IO` when the file cannot be read, and the {@link parseRdb} errors.
 */
export async function* parseRdbFile(
  path: string,
  options: ParseRdbOptions = {},
): AsyncGenerator<RdbEvent, void, undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw new ReplicationError('ERR_RDB_IO', `cannot read the RDB file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const stream = createReadStream(path, { highWaterMark: READ_SIZE });
  try {
    yield* parseRdb(stream, options);
  } finally {
    stream.destroy();
  }
}

async function* chunksOf(source: RdbSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  const web = source as Partial<ReadableStream<Uint8Array>>;
  if (typeof web.getReader === 'function' && !(Symbol.asyncIterator in source)) {
    const reader = web.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } finally {
      reader.releaseLock();
    }
  }
  for await (const chunk of source as AsyncIterable<unknown>) {
    if (typeof chunk === 'string')
      throw new ReplicationError(
        'ERR_REPLICATION_ARGUMENT',
        'the RDB source yields strings; read it as bytes (no setEncoding, no text decoding)',
      );
    yield chunk as Uint8Array;
  }
}

/**
 * Collects the parts of each large key into one event per key: handy for tests and small
 * dumps, not for big ones (it holds each whole key in memory).
 *
 * @example
 * ```ts
 * for await (const event of wholeEntries(parseRdbFile('dump.rdb'))) {
 *   if (event.kind === 'entry' && event.type === 'hash') console.log(event.key.toString(), event.value.length);
 * }
 * ```
 */
export async function* wholeEntries(events: AsyncIterable<RdbEvent>): AsyncGenerator<RdbEvent, void, undefined> {
  let pending: RdbEvent[] = [];
  for await (const event of events) {
    if (event.kind !== 'entry') {
      yield event;
      continue;
    }
    if (event.part === 0 && event.last) {
      yield event;
      continue;
    }
    pending.push(event);
    if (event.last) {
      yield mergeParts(pending);
      pending = [];
    }
  }
}

/**
 * Merges the parts of one entry (in order) into a single event with `part: 0, last: true`.
 *
 * @example
 * ```ts
 * const parts: RdbEvent[] = [];
 * for await (const event of parseRdbFile('dump.rdb')) {
 *   if (event.kind !== 'entry' || event.key.toString() !== 'big') continue;
 *   parts.push(event);
 *   if (event.last) console.log(mergeParts(parts));
 * }
 * ```
 */
export function mergeParts(parts: readonly RdbEvent[]): RdbEvent {
  const first = parts[0];
  if (first?.kind !== 'entry')
    throw new ReplicationError('ERR_REPLICATION_ARGUMENT', 'mergeParts needs the entry parts of one key');
  let value: unknown;
  switch (first.type) {
    case 'string':
      value = Buffer.concat(parts.map((p) => (p as typeof first).value as Buffer));
      break;
    case 'stream': {
      const entries = parts.flatMap((p) => ((p as typeof first).value as { entries: unknown[] }).entries);
      const meta = ((parts[parts.length - 1] as typeof first).value as { meta?: unknown }).meta;
      value = meta === undefined ? { entries } : { entries, meta };
      break;
    }
    default:
      value = parts.flatMap((p) => (p as typeof first).value as unknown[]);
  }
  return { ...first, part: 0, last: true, value } as RdbEvent;
}

/**
 * A Node `Transform` from RDB bytes to {@link RdbEvent} objects: pipe a file, a socket or any
 * byte stream into it, and listen to `data` (an event emitter) or iterate it. Backpressure flows
 * both ways: a slow consumer pauses the byte source. Errors are {@link RdbError}s, emitted as
 * `error` and ending the stream.
 *
 * @example
 * ```ts
 * import { createReadStream } from 'node:fs';
 * import { createRdbStream } from '@redis-events/replication';
 *
 * createReadStream('dump.rdb')
 *   .pipe(createRdbStream())
 *   .on('data', (event) => { if (event.kind === 'entry') console.log(event.key.toString()); })
 *   .on('error', (err) => console.error(err.code, err.message));
 * ```
 */
export function createRdbStream(options: RdbParserOptions = {}): Transform {
  const parser = new RdbParser(options);
  const push = (event: RdbEvent) => {
    stream.push(event);
  };
  const stream = new Transform({
    readableObjectMode: true,
    readableHighWaterMark: 1024,
    transform(chunk: Buffer, _encoding, callback) {
      try {
        if (typeof chunk === 'string')
          throw new ReplicationError('ERR_REPLICATION_ARGUMENT', 'write RDB bytes, not strings');
        // Each event is pushed as soon as it is complete; those before a failure come before the error.
        parser.write(chunk, push);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      try {
        parser.end();
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
  return stream;
}
