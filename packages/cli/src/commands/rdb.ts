import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { RdbEntryEvent, RdbEvent } from '@redis-events/replication';
import { type Command, choiceOption, intOption } from '../command.ts';
import { CliError, stopName, usage } from '../errors.ts';
import { globMatcher } from '../glob.ts';
import { toJson } from '../json.ts';
import { formatBytes, plural, throttle } from '../terminal.ts';

const TYPES = ['string', 'list', 'set', 'zset', 'hash', 'stream', 'module'] as const;
type EntryType = (typeof TYPES)[number];

/** Bytes of data one part of an entry holds, as serialized (Redis' own overhead is not counted). */
export function dataBytes(entry: RdbEntryEvent): { bytes: number; elements: number } {
  const key = entry.part === 0 ? entry.key.length : 0;
  switch (entry.type) {
    case 'string':
      return { bytes: key + entry.value.length, elements: entry.part === 0 ? 1 : 0 };
    case 'list':
    case 'set':
      return { bytes: key + entry.value.reduce((n, b) => n + b.length, 0), elements: entry.value.length };
    case 'zset':
      return { bytes: key + entry.value.reduce((n, m) => n + m.member.length + 8, 0), elements: entry.value.length };
    case 'hash':
      return {
        bytes: key + entry.value.reduce((n, f) => n + f.field.length + f.value.length + (f.expireAt ? 8 : 0), 0),
        elements: entry.value.length,
      };
    case 'stream':
      return {
        bytes:
          key +
          entry.value.entries.reduce(
            (n, item) => n + 16 + item.fields.reduce((m, [f, v]) => m + f.length + v.length, 0),
            0,
          ),
        elements: entry.value.entries.length,
      };
    case 'module':
      return {
        bytes: key + entry.value.reduce((n, item) => n + (item.kind === 'string' ? item.value.length : 8), 0),
        elements: entry.value.length,
      };
  }
}

/** An entry as one JSON line: binary-safe (see the README's JSON mapping). */
export function entryJson(entry: RdbEntryEvent): Record<string, unknown> {
  const { kind: _kind, key, offset: _offset, rdbType: _t, rdbTypeName: _n, part, last, value, ...rest } = entry;
  const line: Record<string, unknown> = { db: entry.db, key: toJson(key), type: entry.type };
  for (const [name, v] of Object.entries(rest))
    if (name !== 'db' && name !== 'type' && v !== undefined) line[name] = toJson(v);
  if (entry.type === 'hash') {
    // Pairs, not an object: a field name may be any bytes (not a JSON key), or __proto__. A
    // field with its own expiry carries it third: [field, value, expireAtMs].
    line.value = entry.value.map((f) =>
      f.expireAt === undefined ? [toJson(f.field), toJson(f.value)] : [toJson(f.field), toJson(f.value), f.expireAt],
    );
  } else if (entry.type === 'stream') {
    // Pairs in order, as XADD got them: Redis keeps repeated field names.
    line.value = {
      entries: entry.value.entries.map((item) => ({
        id: item.id,
        fields: item.fields.map(([f, v]) => [toJson(f), toJson(v)]),
      })),
      ...(entry.value.meta ? { meta: toJson(entry.value.meta) } : {}),
    };
  } else {
    line.value = toJson(value);
  }
  if (!(part === 0 && last)) {
    line.part = part;
    line.last = last;
  }
  return line;
}

interface KeyTotal {
  db: number;
  key: string;
  type: EntryType;
  bytes: number;
  elements: number;
}

/** Keeps the `n` largest keys seen, cheaply (a sorted array; n is small). */
class Biggest {
  readonly #n: number;
  readonly items: KeyTotal[] = [];
  constructor(n: number) {
    this.#n = n;
  }
  offer(item: KeyTotal): void {
    if (this.items.length === this.#n && (this.items.at(-1)?.bytes ?? 0) >= item.bytes) return;
    const at = this.items.findIndex((x) => x.bytes < item.bytes);
    this.items.splice(at < 0 ? this.items.length : at, 0, item);
    if (this.items.length > this.#n) this.items.pop();
  }
}

export const rdbCommand: Command = {
  name: 'rdb',
  args: '<file>',
  summary: 'Read an RDB file (RDB 1-13, Valkey 9): every key as a JSON line, a memory report, or the biggest keys.',
  options: {
    memory: { type: 'boolean', description: 'a report per database and type: keys, elements, bytes of data' },
    biggest: { type: 'string', value: 'n', description: 'the n keys with the most bytes of data' },
    db: { type: 'string', value: 'n', description: 'only this database' },
    key: { type: 'string', value: 'glob', description: 'only keys matching this glob (* ? [abc])' },
    type: {
      type: 'string',
      value: 'types',
      description: 'only these types, comma-separated: string,list,set,zset,hash,stream,module',
    },
    meta: {
      type: 'boolean',
      description: 'also print the header, aux fields, functions and the checksum as JSON lines',
    },
    json: { type: 'boolean', description: 'with --memory or --biggest: print JSON instead of a table' },
    'no-checksum': { type: 'boolean', description: 'do not verify the CRC64 trailer' },
  },
  details: `
The file is streamed: memory stays flat whatever its size. A key too large for one piece
(over 1 MiB, or 1024 elements) comes as several JSON lines with "part" and "last".
A progress bar (bytes read of the file's size) shows on stderr when it is a terminal.

JSON lines: {"db":0,"key":"user:1","type":"hash","value":[["name","Ada"]],"expireAt":1767225600000}
Hash and stream fields are [name, value] pairs (a hash field's own expiry third), so that any
name survives. Bytes that are not UTF-8 print as {"base64":"..."}; scores inf, -inf and nan as
strings. Ctrl-C prints what was read so far (the report, marked partial) and exits 130.

Examples:
  redis-events rdb dump.rdb | jq -c 'select(.type == "hash")'
  redis-events rdb dump.rdb --memory
  redis-events rdb dump.rdb --biggest 20 --db 0`,
  async run({ positionals, options, terminal, signal }) {
    const [file, ...extra] = positionals;
    if (!file || extra.length > 0) throw usage('rdb takes exactly one file (see redis-events rdb --help)');
    const db = options.db === undefined ? undefined : intOption(options.db, 'db');
    const matchKey = typeof options.key === 'string' ? globMatcher(options.key) : undefined;
    const types =
      typeof options.type === 'string'
        ? new Set(options.type.split(',').map((t) => choiceOption(t.trim(), 'type', TYPES)))
        : undefined;
    const biggest =
      options.biggest === undefined ? undefined : new Biggest(intOption(options.biggest, 'biggest', { min: 1 }));
    const memory = options.memory === true;
    if (memory && biggest) throw usage('choose one of --memory and --biggest');

    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw new CliError(
        'ERR_CLI_FAILURE',
        `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    const { parseRdbFile, RdbError } = await import('@redis-events/replication');
    const progress = throttle(100, (offset: number) => terminal.progress(`reading ${basename(file)}`, offset, size));
    let offset = 0;
    const report = new Map<
      string,
      { db: number; type: EntryType; keys: number; expiring: number; elements: number; bytes: number }
    >();
    let current: KeyTotal | undefined;
    const finishKey = () => {
      if (current && biggest) biggest.offer(current);
      current = undefined;
    };
    let keys = 0;
    let end: Extract<RdbEvent, { kind: 'end' }> | undefined;

    try {
      for await (const event of parseRdbFile(file, { signal, verifyChecksum: options['no-checksum'] !== true })) {
        offset = event.offset;
        progress(event.offset);
        if (terminal.closed) break;
        if (event.kind !== 'entry') {
          if (event.kind === 'end') end = event;
          if (options.meta === true && !memory && !biggest)
            await terminal.line(
              JSON.stringify({
                kind: event.kind,
                ...(toJson({ ...event, kind: undefined, offset: undefined }) as object),
              }),
            );
          continue;
        }
        if (db !== undefined && event.db !== db) continue;
        if (types && !types.has(event.type)) continue;
        if (matchKey && !matchKey(event.key)) continue;
        if (event.part === 0) keys++;
        if (memory || biggest) {
          const { bytes, elements } = dataBytes(event);
          if (memory) {
            const id = `${event.db}\u0000${event.type}`;
            const row = report.get(id) ?? {
              db: event.db,
              type: event.type,
              keys: 0,
              expiring: 0,
              elements: 0,
              bytes: 0,
            };
            if (event.part === 0) {
              row.keys++;
              if (event.expireAt !== undefined) row.expiring++;
            }
            row.elements += elements;
            row.bytes += bytes;
            report.set(id, row);
          } else {
            if (event.part === 0)
              current = { db: event.db, key: String(toJson(event.key)), type: event.type, bytes: 0, elements: 0 };
            if (current) {
              current.bytes += bytes;
              current.elements += elements;
            }
            if (event.last) finishKey();
          }
        } else {
          await terminal.line(JSON.stringify(entryJson(event)));
        }
      }
    } catch (err) {
      terminal.endProgress();
      if (!signal.aborted) {
        if (err instanceof RdbError) throw new CliError('ERR_CLI_FAILURE', `${file}: ${err.message}`, { cause: err });
        throw err;
      }
    }
    progress.flush();
    terminal.endProgress();

    // Stopped in the middle, a report still shows what was read: it says it is partial.
    if (memory) await printMemory(terminal, [...report.values()], options.json === true);
    if (biggest) {
      finishKey();
      await printBiggest(terminal, biggest.items, options.json === true);
    }
    if (signal.aborted) {
      terminal.info(
        `rdb stopped by ${stopName(signal.reason)} after ${plural(keys, 'key')}, ${formatBytes(offset)} of ${formatBytes(size)} read (${size > 0 ? Math.floor((offset / size) * 100) : 100}%)${memory || biggest ? '; the report above covers only that part' : ''}`,
      );
      return undefined;
    }
    if (end) {
      terminal.info(
        `${file}: ${plural(keys, 'key')}, ${formatBytes(end.size)}, checksum ${end.checksumVerified ? 'verified' : end.checksum === 0n ? 'not stored' : 'not checked'}`,
      );
    }
    return undefined;
  },
};

async function printMemory(
  terminal: import('../terminal.ts').Terminal,
  rows: { db: number; type: EntryType; keys: number; expiring: number; elements: number; bytes: number }[],
  json: boolean,
): Promise<void> {
  rows.sort((a, b) => a.db - b.db || b.bytes - a.bytes);
  if (json) {
    await terminal.line(JSON.stringify(rows));
    return;
  }
  const header = ['db', 'type', 'keys', 'with expiry', 'elements', 'bytes of data'];
  const body = rows.map((r) => [
    String(r.db),
    r.type,
    String(r.keys),
    String(r.expiring),
    String(r.elements),
    formatBytes(r.bytes),
  ]);
  const total = rows.reduce(
    (t, r) => ({
      keys: t.keys + r.keys,
      expiring: t.expiring + r.expiring,
      elements: t.elements + r.elements,
      bytes: t.bytes + r.bytes,
    }),
    { keys: 0, expiring: 0, elements: 0, bytes: 0 },
  );
  body.push(['all', '', String(total.keys), String(total.expiring), String(total.elements), formatBytes(total.bytes)]);
  await printTable(terminal, header, body);
}

async function printBiggest(
  terminal: import('../terminal.ts').Terminal,
  items: KeyTotal[],
  json: boolean,
): Promise<void> {
  if (json) {
    await terminal.line(JSON.stringify(items));
    return;
  }
  await printTable(
    terminal,
    ['bytes of data', 'elements', 'type', 'db', 'key'],
    items.map((i) => [formatBytes(i.bytes), String(i.elements), i.type, String(i.db), i.key]),
  );
}

/** A plain text table: right-aligned numbers, left-aligned words, the last column unpadded. */
export async function printTable(
  terminal: import('../terminal.ts').Terminal,
  header: string[],
  rows: string[][],
): Promise<void> {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.every((r) => /^[\d.,]+( [KMG]?i?B)?$|^$/.test(r[i] ?? '')));
  const render = (cells: string[], bold = false) => {
    const text = cells
      .map((c, i) => (i === cells.length - 1 ? c : numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ');
    return bold ? terminal.style(1, text) : text;
  };
  await terminal.line(render(header, true));
  for (const row of rows) await terminal.line(render(row));
}
