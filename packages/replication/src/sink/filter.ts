// The key filter of a sync or a compare: which databases, which keys (prefixes, Redis globs),
// which types go to the target. Compiled once: prefixes compare bytes, globs become one regular
// expression over the key's bytes read as latin1 (one character per byte, so binary keys work).

import { ReplicationError } from '../errors.ts';
import type { RdbEntryEvent } from '../rdb-events.ts';

/** The value types a filter can keep. */
export type SyncKeyType = RdbEntryEvent['type'];

const TYPES: readonly SyncKeyType[] = ['string', 'list', 'set', 'zset', 'hash', 'stream', 'module'];

/**
 * Which keys a sync copies (and a compare checks). A key goes to the target when its database
 * is kept, it matches one of `prefixes` or `patterns` (all keys when both are empty), it matches
 * none of the `exclude` rules, and its type is kept.
 *
 * @example
 * ```ts
 * const filter: SyncFilter = { dbs: [0], prefixes: ['user:', 'order:'], exclude: { patterns: ['*:tmp'] }, types: ['hash', 'string'] };
 * ```
 */
export interface SyncFilter {
  /** Source databases to copy (all when absent). */
  readonly dbs?: readonly number[] | undefined;
  /** Keys starting with one of these. */
  readonly prefixes?: readonly (string | Buffer)[] | undefined;
  /** Keys matching one of these Redis glob patterns (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes). */
  readonly patterns?: readonly string[] | undefined;
  /** Value types to copy (all when absent). */
  readonly types?: readonly SyncKeyType[] | undefined;
  /** Keys or databases to leave out even when the rules above keep them. */
  readonly exclude?:
    | {
        readonly dbs?: readonly number[] | undefined;
        readonly prefixes?: readonly (string | Buffer)[] | undefined;
        readonly patterns?: readonly string[] | undefined;
      }
    | undefined;
}

/** A compiled {@link SyncFilter}. */
export interface KeyFilter {
  /** True when no rule is set: every key of every database. */
  readonly all: boolean;
  /** True when keys are selected by name (prefixes, patterns or exclusions). */
  readonly byKey: boolean;
  /** True when types are restricted. */
  readonly byType: boolean;
  db(db: number): boolean;
  key(key: Buffer): boolean;
  type(type: SyncKeyType): boolean;
  /** A `SCAN ... MATCH` pattern that covers every kept key (a superset), when there is one. */
  readonly scanPattern: string | undefined;
  /** A stable description, to tell whether a saved state was made with the same filter. */
  readonly fingerprint: string;
}

const FILTER_KEYS = new Set(['dbs', 'prefixes', 'patterns', 'types', 'exclude']);
const EXCLUDE_KEYS = new Set(['dbs', 'prefixes', 'patterns']);

function argument(message: string): ReplicationError {
  return new ReplicationError('ERR_REPLICATION_ARGUMENT', message);
}

/**
 * Compiles a Redis glob pattern (as `KEYS` and `SCAN MATCH` read it) into a regular expression
 * over latin1 text.
 */
export function globRegExp(pattern: string): RegExp {
  const p = Buffer.from(pattern, 'utf8').toString('latin1');
  let out = '^';
  for (let i = 0; i < p.length; i++) {
    const c = p[i] as string;
    if (c === '*') {
      while (p[i + 1] === '*') i++;
      out += '[\\s\\S]*';
    } else if (c === '?') out += '[\\s\\S]';
    else if (c === '\\' && i + 1 < p.length) out += escapeChar(p[++i] as string);
    else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (p[j] === '^') {
        cls += '^';
        j++;
      }
      let first = true;
      while (j < p.length && (p[j] !== ']' || first)) {
        first = false;
        let lo = p[j] as string;
        if (lo === '\\' && j + 1 < p.length) lo = p[++j] as string;
        if (p[j + 1] === '-' && j + 2 < p.length && p[j + 2] !== ']') {
          let hi = p[j + 2] as string;
          let skip = 3;
          if (hi === '\\' && j + 3 < p.length) {
            hi = p[j + 3] as string;
            skip = 4;
          }
          const [a, b] = lo <= hi ? [lo, hi] : [hi, lo];
          cls += `${escapeClass(a)}-${escapeClass(b)}`;
          j += skip;
        } else {
          cls += escapeClass(lo);
          j++;
        }
      }
      // An unterminated class matches what it holds so far, as Redis does.
      out += cls === '' || cls === '^' ? (cls === '^' ? '[\\s\\S]' : '(?!)') : `[${cls}]`;
      i = j;
    } else out += escapeChar(c);
  }
  return new RegExp(`${out}$`);
}

function escapeChar(c: string): string {
  return /[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c === '\n' ? '\\n' : c === '\r' ? '\\r' : c;
}

function escapeClass(c: string): string {
  return /[\\\]^-]/.test(c) ? `\\${c}` : c === '\n' ? '\\n' : c === '\r' ? '\\r' : c;
}

function bytesOf(value: string | Buffer, what: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (typeof value !== 'string') throw argument(`${what} must be strings or Buffers`);
  return Buffer.from(value, 'utf8');
}

function dbList(value: unknown, what: string): Set<number> | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((d) => !Number.isSafeInteger(d) || d < 0))
    throw argument(`${what} must be an array of non-negative integers`);
  return new Set(value as number[]);
}

function globEscape(prefix: Buffer): string {
  return prefix.toString('latin1').replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/**
 * Compiles a {@link SyncFilter}; unknown fields and malformed rules are refused.
 *
 * @throws {ReplicationError} `ERR_REPLICATION_ARGUMENT` naming the bad field.
 */
export function compileFilter(filter: SyncFilter | undefined): KeyFilter {
  const f = filter ?? {};
  if (typeof f !== 'object' || f === null) throw argument('filter must be an object');
  for (const key of Object.keys(f))
    if (!FILTER_KEYS.has(key))
      throw argument(`filter has an unknown field "${key}"; it takes ${[...FILTER_KEYS].join(', ')}`);
  const exclude = f.exclude ?? {};
  for (const key of Object.keys(exclude))
    if (!EXCLUDE_KEYS.has(key))
      throw argument(`filter.exclude has an unknown field "${key}"; it takes ${[...EXCLUDE_KEYS].join(', ')}`);
  const dbs = dbList(f.dbs, 'filter.dbs');
  const excludedDbs = dbList(exclude.dbs, 'filter.exclude.dbs');
  const prefixes = (f.prefixes ?? []).map((p) => bytesOf(p, 'filter.prefixes'));
  const patterns = (f.patterns ?? []).map((p) => {
    if (typeof p !== 'string') throw argument('filter.patterns must be strings');
    return globRegExp(p);
  });
  const excludedPrefixes = (exclude.prefixes ?? []).map((p) => bytesOf(p, 'filter.exclude.prefixes'));
  const excludedPatterns = (exclude.patterns ?? []).map((p) => {
    if (typeof p !== 'string') throw argument('filter.exclude.patterns must be strings');
    return globRegExp(p);
  });
  let types: Set<SyncKeyType> | undefined;
  if (f.types !== undefined) {
    if (!Array.isArray(f.types)) throw argument('filter.types must be an array');
    for (const t of f.types)
      if (!TYPES.includes(t)) throw argument(`filter.types: unknown type "${String(t)}"; use ${TYPES.join(', ')}`);
    types = new Set(f.types);
  }
  const include = prefixes.length > 0 || patterns.length > 0;
  const excluding = excludedPrefixes.length > 0 || excludedPatterns.length > 0;
  const needText = patterns.length > 0 || excludedPatterns.length > 0;
  const key = (k: Buffer): boolean => {
    const text = needText ? k.toString('latin1') : '';
    if (include) {
      let hit = false;
      for (const p of prefixes)
        if (k.length >= p.length && k.compare(p, 0, p.length, 0, p.length) === 0) {
          hit = true;
          break;
        }
      if (!hit)
        for (const r of patterns)
          if (r.test(text)) {
            hit = true;
            break;
          }
      if (!hit) return false;
    }
    if (excluding) {
      for (const p of excludedPrefixes)
        if (k.length >= p.length && k.compare(p, 0, p.length, 0, p.length) === 0) return false;
      for (const r of excludedPatterns) if (r.test(text)) return false;
    }
    return true;
  };
  const scanPattern =
    prefixes.length === 1 && patterns.length === 0
      ? `${globEscape(prefixes[0] as Buffer)}*`
      : patterns.length === 1 && prefixes.length === 0
        ? (f.patterns?.[0] as string)
        : undefined;
  const fingerprint = JSON.stringify({
    dbs: dbs ? [...dbs].sort((a, b) => a - b) : null,
    prefixes: prefixes.map((p) => p.toString('hex')).sort(),
    patterns: [...(f.patterns ?? [])].sort(),
    types: types ? [...types].sort() : null,
    exclude: {
      dbs: excludedDbs ? [...excludedDbs].sort((a, b) => a - b) : null,
      prefixes: excludedPrefixes.map((p) => p.toString('hex')).sort(),
      patterns: [...(exclude.patterns ?? [])].sort(),
    },
  });
  return {
    all: !dbs && !excludedDbs && !include && !excluding && !types,
    byKey: include || excluding,
    byType: types !== undefined,
    db: (db) => (dbs === undefined || dbs.has(db)) && (excludedDbs === undefined || !excludedDbs.has(db)),
    key: include || excluding ? key : () => true,
    type: types ? (t) => types.has(t) : () => true,
    scanPattern,
    fingerprint,
  };
}
