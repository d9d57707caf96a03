import { mergeParts, type RdbEvent, RdbParser, type RdbParserOptions } from '../src/index.ts';

/** Buffers as latin1 text, bigints as `<n>n`, NaN/Infinity as text: comparable with toEqual. */
export function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

/** Parses bytes fed in the given pieces (all at once by default) and returns every event. */
export function parseBytes(data: Buffer, options: RdbParserOptions = {}, splits?: readonly number[]): RdbEvent[] {
  const parser = new RdbParser(options);
  const events: RdbEvent[] = [];
  let at = 0;
  for (const cut of [...(splits ?? []), data.length]) {
    if (cut <= at) continue;
    for (const e of parser.write(data.subarray(at, cut))) events.push(e);
    at = cut;
  }
  for (const e of parser.end()) events.push(e);
  return events;
}

/** Merges the parts of each entry, like `wholeEntries`, synchronously. */
export function whole(events: readonly RdbEvent[]): RdbEvent[] {
  const out: RdbEvent[] = [];
  let pending: RdbEvent[] = [];
  for (const e of events) {
    if (e.kind !== 'entry') {
      out.push(e);
      continue;
    }
    pending.push(e);
    if (e.last) {
      out.push(pending.length === 1 ? e : mergeParts(pending));
      pending = [];
    }
  }
  return out;
}

/** The entries of parsed bytes as plain `{ db, key, type, value, ...attributes }` objects. */
export function entries(events: readonly RdbEvent[]): Record<string, unknown>[] {
  return whole(events)
    .filter((e) => e.kind === 'entry')
    .map((e) => {
      const {
        kind: _k,
        part: _p,
        last: _l,
        offset: _o,
        rdbTypeName: _n,
        ...rest
      } = e as unknown as Record<string, unknown>;
      return plain(rest) as Record<string, unknown>;
    });
}

/** Error thrown by a function, for assertions on code and context. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, none was thrown');
}
