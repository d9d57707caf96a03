// The options `sync` and `compare` share: what to copy (filters, database mapping) and how to
// reach each side (URL, TLS files).
import { readFileSync } from 'node:fs';
import type { RedisEndpoint, SyncFilter, SyncKeyType } from '@redis-events/replication';
import type { OptionSpec } from '../command.ts';
import { usage } from '../errors.ts';

export const FILTER_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  prefix: { type: 'string', multiple: true, value: 'prefix', description: 'only keys starting with this (repeatable)' },
  filter: {
    type: 'string',
    multiple: true,
    value: 'glob',
    description: 'only keys matching this Redis glob (repeatable; with --prefix, a key matching either)',
  },
  exclude: {
    type: 'string',
    multiple: true,
    value: 'glob',
    description: 'leave out keys matching this glob (repeatable)',
  },
  db: { type: 'string', value: 'n,...', description: 'only these source databases' },
  type: { type: 'string', value: 'types', description: 'only these types: string,list,set,zset,hash,stream,module' },
  'map-db': {
    type: 'string',
    value: 'from:to,...',
    description: 'write source database "from" into target database "to"',
  },
};

export const TLS_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'tls-ca': { type: 'string', value: 'file', description: 'CA certificate for rediss:// URLs (PEM)' },
  'tls-cert': { type: 'string', value: 'file', description: 'client certificate for rediss:// URLs (PEM)' },
  'tls-key': { type: 'string', value: 'file', description: 'client key for rediss:// URLs (PEM)' },
  'tls-insecure': { type: 'boolean', description: 'accept any server certificate (self-signed test setups)' },
};

const TYPES: readonly SyncKeyType[] = ['string', 'list', 'set', 'zset', 'hash', 'stream', 'module'];

function list(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).map(String);
}

function numbers(text: string, name: string): number[] {
  return text.split(',').map((part) => {
    const n = Number(part.trim());
    if (!Number.isSafeInteger(n) || n < 0) throw usage(`--${name} takes database numbers (0, 1...), got "${part}"`);
    return n;
  });
}

/** The filter the options describe (undefined when none). */
export function filterFrom(options: Readonly<Record<string, unknown>>): SyncFilter | undefined {
  const prefixes = list(options.prefix);
  const patterns = list(options.filter);
  const exclude = list(options.exclude);
  const dbs = typeof options.db === 'string' ? numbers(options.db, 'db') : undefined;
  let types: SyncKeyType[] | undefined;
  if (typeof options.type === 'string') {
    types = options.type.split(',').map((t) => t.trim()) as SyncKeyType[];
    for (const t of types) if (!TYPES.includes(t)) throw usage(`--type: unknown type "${t}"; use ${TYPES.join(', ')}`);
  }
  if (prefixes.length + patterns.length + exclude.length === 0 && !dbs && !types) return undefined;
  return {
    ...(prefixes.length ? { prefixes } : {}),
    ...(patterns.length ? { patterns } : {}),
    ...(exclude.length ? { exclude: { patterns: exclude } } : {}),
    ...(dbs ? { dbs } : {}),
    ...(types ? { types } : {}),
  };
}

/** `--map-db 1:0,2:0` as a mapping. */
export function dbMapFrom(options: Readonly<Record<string, unknown>>): Record<number, number> | undefined {
  if (typeof options['map-db'] !== 'string') return undefined;
  const map: Record<number, number> = {};
  for (const pair of options['map-db'].split(',')) {
    const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(pair);
    if (!m) throw usage(`--map-db takes from:to pairs (1:0,2:0), got "${pair}"`);
    map[Number(m[1])] = Number(m[2]);
  }
  return map;
}

/** A Redis URL with the TLS files of the options. */
export function endpointFrom(url: string, options: Readonly<Record<string, unknown>>, what: string): RedisEndpoint {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`the ${what} "${url}" is not a URL; write it like redis://127.0.0.1:6379`);
  }
  if (!['redis:', 'rediss:', 'unix:'].includes(parsed.protocol))
    throw usage(`the ${what} URL must start with redis://, rediss:// or unix://, not ${parsed.protocol}//`);
  if (parsed.protocol !== 'rediss:') return { url };
  const read = (name: string) => {
    const file = options[name];
    if (typeof file !== 'string') return undefined;
    try {
      return readFileSync(file);
    } catch (err) {
      throw usage(`--${name} ${file}: ${(err as Error).message}`);
    }
  };
  const ca = read('tls-ca');
  const cert = read('tls-cert');
  const key = read('tls-key');
  return {
    url,
    tls: {
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(options['tls-insecure'] === true ? { insecure: true } : {}),
    },
  };
}

/** Whether an argument is a Redis URL (else a file or folder path). */
export function isUrl(text: string): boolean {
  return /^(redis|rediss|unix):\/\//.test(text);
}
