// The stream and file front ends of the parser: sources of every kind, abort, I/O errors,
// the Transform stream, and merging of parts.
import { createReadStream, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createRdbStream,
  parseRdb,
  parseRdbFile,
  type RdbEvent,
  ReplicationError,
  wholeEntries,
} from '../src/index.ts';
import { entries, parseBytes } from './event-helpers.ts';
import { RdbWriter } from './rdb-writer.ts';

const file = new RdbWriter(11)
  .aux('redis-ver', '7.2.6')
  .selectDb(0)
  .stringValue('a', 'x'.repeat(5000))
  .linkedList(
    'l',
    Array.from({ length: 3000 }, (_, i) => `e${i}`),
  )
  .end();
const expected = entries(parseBytes(file));

async function collect(events: AsyncIterable<RdbEvent>): Promise<RdbEvent[]> {
  const out: RdbEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

let dir: string;
let path: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parse-rdb-'));
  path = join(dir, 'dump.rdb');
  writeFileSync(path, file);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('parseRdb', () => {
  it('reads a Buffer, an array of chunks, a Node stream, an async iterable and a web stream alike', async () => {
    const pieces = [file.subarray(0, 10), file.subarray(10, 3000), file.subarray(3000)];
    async function* gen() {
      yield* pieces;
    }
    const sources = [
      file,
      pieces,
      Readable.from(pieces),
      gen(),
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const p of pieces) controller.enqueue(new Uint8Array(p));
          controller.close();
        },
      }),
      createReadStream(path, { highWaterMark: 1000 }),
    ];
    for (const source of sources) expect(entries(await collect(parseRdb(source)))).toEqual(expected);
  });

  it('delivers big keys in parts that wholeEntries merges back', async () => {
    const parts = await collect(parseRdb(file, { batchSize: 100 }));
    expect(parts.filter((e) => e.kind === 'entry' && e.key.toString() === 'l')).toHaveLength(30);
    const merged = await collect(wholeEntries(parseRdb(file, { batchSize: 100 })));
    expect(merged.filter((e) => e.kind === 'entry')).toHaveLength(2);
    expect(entries(merged)).toEqual(expected);
  });

  it('stops with a typed AbortError when aborted, carrying the reason', async () => {
    const controller = new AbortController();
    const events = parseRdb(Readable.from([file.subarray(0, 100), file.subarray(100)]), { signal: controller.signal });
    const first = await events.next();
    expect(first.value).toMatchObject({ kind: 'header' });
    const reason = new Error('stop now');
    controller.abort(reason);
    const err = await events.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ERR_REPLICATION_ABORTED', cause: reason });
    expect((err as Error).message).toContain('stop now');
    await expect(collect(parseRdb(file, { signal: AbortSignal.abort() }))).rejects.toMatchObject({
      name: 'AbortError',
      code: 'ERR_REPLICATION_ABORTED',
    });
  });

  it('stops at once on abort while the source is silent', async () => {
    const controller = new AbortController();
    async function* stalled() {
      yield file.subarray(0, 9); // the header only
      await new Promise(() => {}); // a socket that never sends again
    }
    const events = parseRdb(stalled(), { signal: controller.signal });
    expect((await events.next()).value).toMatchObject({ kind: 'header' });
    const waiting = events.next();
    setTimeout(() => controller.abort(), 20);
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError', code: 'ERR_REPLICATION_ABORTED' });
  });

  it('rejects an option it does not know, naming the ones it takes', async () => {
    const typo = { batchSize: 10, maxPartByte: 100 } as unknown as Parameters<typeof parseRdb>[1];
    await expect(collect(parseRdb(file, typo))).rejects.toMatchObject({
      code: 'ERR_REPLICATION_ARGUMENT',
      message: expect.stringMatching(/no option "maxPartByte".*maxPartBytes/),
    });
  });

  it('refuses a source of strings, and reports a truncated source', async () => {
    await expect(collect(parseRdb(Readable.from(['REDIS0011'])))).rejects.toMatchObject({
      code: 'ERR_REPLICATION_ARGUMENT',
    });
    await expect(collect(parseRdb([file.subarray(0, file.length - 3)]))).rejects.toMatchObject({
      code: 'ERR_RDB_TRUNCATED',
    });
  });
});

// 17 good keys, then a pre-GA module value (type 6), which cannot be read: a failure late in the input.
const seventeen = (() => {
  const w = new RdbWriter(11).aux('redis-ver', '7.2.6').selectDb(0);
  for (let i = 0; i < 17; i++) w.stringValue(`key:${i}`, `value ${i}`);
  return w.key(6, 'module-key').len(5).end();
})();

/** Events until the iteration fails, and the failure. */
async function untilFailure(events: AsyncIterable<RdbEvent>): Promise<{ keys: string[]; error: unknown }> {
  const keys: string[] = [];
  try {
    for await (const e of events) if (e.kind === 'entry') keys.push(e.key.toString());
  } catch (error) {
    return { keys, error };
  }
  return { keys, error: undefined };
}

describe('a failure after good entries', () => {
  const names = Array.from({ length: 17 }, (_, i) => `key:${i}`);
  const unsupported = expect.objectContaining({ code: 'ERR_RDB_UNSUPPORTED', key: Buffer.from('module-key') });

  it('parseRdb delivers the entries before the failure, then the error, whole or in chunks', async () => {
    for (const source of [seventeen, [seventeen.subarray(0, 40), seventeen.subarray(40)], Readable.from([seventeen])]) {
      const { keys, error } = await untilFailure(parseRdb(source));
      expect(keys).toEqual(names);
      expect(error).toEqual(unsupported);
    }
  });

  it('parseRdbFile delivers them too', async () => {
    const bad = join(dir, 'seventeen.rdb');
    writeFileSync(bad, seventeen);
    const { keys, error } = await untilFailure(parseRdbFile(bad));
    expect(keys).toEqual(names);
    expect(error).toEqual(unsupported);
  });

  it('createRdbStream pushes them before it emits the error', async () => {
    const keys: string[] = [];
    const stream = createRdbStream();
    stream.on('data', (e: RdbEvent) => {
      if (e.kind === 'entry') keys.push(e.key.toString());
    });
    await expect(pipeline(Readable.from([seventeen]), stream)).rejects.toEqual(unsupported);
    expect(keys).toEqual(names);
  });

  it('delivers a truncated file up to its last complete entry', async () => {
    const cut = seventeen.subarray(0, seventeen.indexOf('key:9') + 2);
    const { keys, error } = await untilFailure(parseRdb(cut));
    expect(keys).toEqual(names.slice(0, 9));
    expect(error).toMatchObject({ code: 'ERR_RDB_TRUNCATED' });
  });
});

describe('parseRdbFile', () => {
  it('reads a file', async () => {
    expect(entries(await collect(parseRdbFile(path)))).toEqual(expected);
  });

  it('reports a missing file or a directory with ERR_RDB_IO', async () => {
    const err = await collect(parseRdbFile(join(dir, 'missing.rdb'))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
    expect(err).toMatchObject({ code: 'ERR_RDB_IO', message: expect.stringContaining('missing.rdb') });
    await expect(collect(parseRdbFile(dir))).rejects.toMatchObject({ code: 'ERR_RDB_IO' });
  });
});

describe('createRdbStream', () => {
  it('turns piped bytes into events, as an event emitter', async () => {
    const events: RdbEvent[] = [];
    const stream = createRdbStream();
    stream.on('data', (e: RdbEvent) => events.push(e));
    await pipeline(createReadStream(path, { highWaterMark: 777 }), stream);
    expect(entries(events)).toEqual(expected);
  });

  it('emits a typed error for bad bytes', async () => {
    const stream = createRdbStream();
    stream.resume();
    await expect(
      pipeline(Readable.from([Buffer.from('REDIS0011'), Buffer.from([8, 1, 65])]), stream),
    ).rejects.toMatchObject({
      code: 'ERR_RDB_UNKNOWN_TYPE',
      offset: 9,
    });
  });
});
