// Comparing two Redis (what redis-full-check does, both ways): every key of the source that the
// filter keeps is looked up on the target (type, TTL within a tolerance, and the value, in full
// or for a sample of keys), and every key of the target is looked up on the source, so keys
// missing on either side are found. Values are compared in bounded pieces (a large hash by
// HSCAN batches checked with HMGET, a list by LRANGE windows...), so memory does not grow with
// the size of a key. Keys that differ can be checked again after a delay, for targets still
// being synced: only what still differs in the last round is reported.

import { abortError, ReplicationError } from './errors.ts';
import { rejectUnknownOptions } from './options.ts';
import { commandBytes } from './sink/context.ts';
import { type RedisEndpoint, resolveEndpoint } from './sink/endpoint.ts';
import { compileFilter, type KeyFilter, type SyncFilter } from './sink/filter.ts';
import { slotOf } from './sink/slots.ts';
import { SyncTarget, type TargetArg, type TargetNode } from './sink/target.ts';

/** What differs about a key. */
export type DifferenceKind = 'missing' | 'extra' | 'type' | 'value' | 'ttl';

/**
 * One difference between the source and the target.
 *
 * @example
 * ```ts
 * function show(d: KeyDifference): string {
 *   return `${d.kind} db${d.db} ${d.key.toString()}: ${d.detail}`;
 * }
 * ```
 */
export interface KeyDifference {
  /**
   * `missing`: on the source, not on the target; `extra`: on the target only; `type`: of
   * another type; `value`: another value; `ttl`: expiries further apart than the tolerance.
   */
  readonly kind: DifferenceKind;
  /** The source database (for `extra`, the target database). */
  readonly db: number;
  readonly key: Buffer;
  /** What differs, for people. */
  readonly detail: string;
}

/**
 * Options of {@link compareRedis}.
 *
 * @example
 * ```ts
 * const options: CompareOptions = { source: 'redis://old:6379', target: 'redis://new:6379', sample: 0.1, ttlTolerance: 5000 };
 * ```
 */
export interface CompareOptions {
  readonly source: RedisEndpoint | string;
  readonly target: RedisEndpoint | string;
  /** Compare only what a sync with this filter copies. */
  readonly filter?: SyncFilter | undefined;
  /** The database mapping of the sync (source → target). */
  readonly dbMap?: Readonly<Record<number, number>> | ((db: number) => number) | undefined;
  /**
   * The share of keys whose values are compared, 0 to 1 (default 1: every key). Every key's
   * existence, type and TTL are compared whatever the sample.
   */
  readonly sample?: number | undefined;
  /** Largest accepted difference between two expiries, in ms. Default 2000. */
  readonly ttlTolerance?: number | undefined;
  /** Look for keys that exist only on the target too. Default true. */
  readonly extra?: boolean | undefined;
  /** Check the keys that differ again, up to this many times in all (for a target still being synced). Default 1. */
  readonly rounds?: number | undefined;
  /** Time between two rounds, in ms. Default 1000. */
  readonly roundDelay?: number | undefined;
  /** SCAN batch size. Default 500. */
  readonly batch?: number | undefined;
  /** Called for each difference of the last round, as it is found. */
  readonly onDifference?: ((difference: KeyDifference) => void) | undefined;
  /** Most differences kept in the report (all are counted). Default 1000. */
  readonly maxReported?: number | undefined;
  readonly connectTimeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** What {@link compareRedis} found. */
export interface CompareReport {
  /** Keys the filter keeps, per side (source: per source database; target: per target database). */
  readonly sourceKeys: number;
  readonly targetKeys: number;
  /** Keys whose values were compared. */
  readonly valuesCompared: number;
  /** Differences of the last round, per kind. */
  readonly counts: Readonly<Record<DifferenceKind, number>>;
  /** The differences (up to `maxReported`). */
  readonly differences: readonly KeyDifference[];
  /** Rounds run. */
  readonly rounds: number;
  /** True when any difference remained. */
  readonly differ: boolean;
}

const CHUNK = 500;
const SMALL = 512;

type Side = SyncTarget;

interface Check {
  readonly db: number;
  readonly targetDb: number;
  readonly key: Buffer;
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
}

function show(b: Buffer | undefined | null): string {
  if (b === undefined || b === null) return '(nil)';
  const head = b.subarray(0, 48).toString('latin1');
  const shown = /^[\x20-\x7e]*$/.test(head) ? JSON.stringify(head) : `0x${b.subarray(0, 24).toString('hex')}`;
  return b.length > 48 ? `${shown}... (${b.length} bytes)` : shown;
}

function pairsMap(flat: unknown): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const items = Array.isArray(flat) ? (flat as Buffer[]) : [];
  for (let i = 0; i + 1 < items.length; i += 2) out.set(text(items[i]), items[i + 1] as Buffer);
  return out;
}

/**
 * Compares a source and a target the way a sync copies one into the other: key counts, and for
 * every key the filter keeps, its type, TTL (within `ttlTolerance`) and value (all keys, or a
 * `sample`), in both directions. Works with standalone servers and Clusters on either side.
 *
 * @example
 * ```ts
 * import { compareRedis } from '@redis-events/replication';
 *
 * const report = await compareRedis({ source: 'redis://old:6379', target: 'redis://new:6379', rounds: 3 });
 * for (const d of report.differences) console.log(d.kind, d.db, d.key.toString(), d.detail);
 * process.exitCode = report.differ ? 1 : 0;
 * ```
 * @throws {ReplicationError} `ERR_SYNC_TARGET` (a side cannot be reached), `ERR_COMPARE_READ`, `ERR_REPLICATION_ABORTED` (named `AbortError`), `ERR_REPLICATION_ARGUMENT`.
 */
const COMPARE_KEYS: readonly string[] = [
  'source',
  'target',
  'filter',
  'dbMap',
  'sample',
  'ttlTolerance',
  'extra',
  'rounds',
  'roundDelay',
  'batch',
  'onDifference',
  'maxReported',
  'connectTimeout',
  'signal',
];

export async function compareRedis(options: CompareOptions): Promise<CompareReport> {
  rejectUnknownOptions(options, COMPARE_KEYS, 'compareRedis');
  if (options?.source === undefined || options.target === undefined)
    throw argument('compareRedis needs a source and a target');
  if (options.signal?.aborted) throw abortError(options.signal.reason, 'the compare');
  const sample = options.sample ?? 1;
  if (!(sample >= 0 && sample <= 1)) throw argument(`sample must be between 0 and 1, got ${String(options.sample)}`);
  const tolerance = options.ttlTolerance ?? 2000;
  if (!(tolerance >= 0)) throw argument(`ttlTolerance must be >= 0 ms, got ${String(options.ttlTolerance)}`);
  const rounds = options.rounds ?? 1;
  if (!Number.isSafeInteger(rounds) || rounds < 1)
    throw argument(`rounds must be a positive integer, got ${String(options.rounds)}`);
  const batch = options.batch ?? CHUNK;
  const filter = compileFilter(options.filter);
  const map = options.dbMap;
  const mapDb =
    map === undefined ? (db: number) => db : typeof map === 'function' ? map : (db: number) => map[db] ?? db;
  const connectTimeout = options.connectTimeout ?? 10_000;
  const signal = options.signal;
  const open = (endpoint: RedisEndpoint | string, what: string) =>
    SyncTarget.open(resolveEndpoint(endpoint, what), {
      connectTimeout,
      maxInflightCommands: 100_000,
      maxInflightBytes: 1 << 30,
      retryTimeout: 30_000,
      signal,
    });
  const source = await open(options.source, 'source');
  let target: Side;
  try {
    target = await open(options.target, 'target');
  } catch (err) {
    await source.close();
    throw err;
  }
  const maxReported = options.maxReported ?? 1000;
  const differences: KeyDifference[] = [];
  const counts: Record<DifferenceKind, number> = { missing: 0, extra: 0, type: 0, value: 0, ttl: 0 };
  let valuesCompared = 0;
  let sourceKeys = 0;
  let targetKeys = 0;
  let round = 0;
  try {
    const comparer = new Comparer(source, target, filter, tolerance, signal);
    // Round 1: every key of both sides. Later rounds: what differed, again.
    let pending: { checks: Check[]; extras: Check[] } = { checks: [], extras: [] };
    const found: KeyDifference[] = [];
    const note = (d: KeyDifference, check: Check, extra: boolean) => {
      found.push(d);
      (extra ? pending.extras : pending.checks).push(check);
    };
    round = 1;
    const sourceDbs = await databases(source);
    for (const node of source.nodes) {
      for (const db of sourceDbs) {
        if (!filter.db(db)) continue;
        await scan(source, node, db, filter, batch, signal, async (keys) => {
          sourceKeys += keys.length;
          const checks = keys.map((key) => ({ db, targetDb: mapDb(db), key }));
          valuesCompared += await comparer.keys(checks, sample, (d, c) => note(d, c, false));
        });
      }
    }
    if (options.extra ?? true) {
      const reverse = new Map<number, number[]>();
      for (const db of new Set([...sourceDbs, ...(await databases(target))])) {
        if (!filter.db(db)) continue;
        const t = mapDb(db);
        reverse.set(t, [...(reverse.get(t) ?? []), db]);
      }
      // Target databases no source database maps to are not this sync's business.
      for (const node of target.nodes) {
        for (const [targetDb, fromDbs] of reverse) {
          await scan(target, node, targetDb, filter, batch, signal, async (keys) => {
            targetKeys += keys.length;
            await comparer.extras(keys, targetDb, fromDbs, (d, c) => note(d, c, true));
          });
        }
      }
    }
    let last = found;
    while (round < rounds && last.length > 0) {
      await sleep(options.roundDelay ?? 1000, signal);
      round++;
      const again = pending;
      pending = { checks: [], extras: [] };
      const next: KeyDifference[] = [];
      const renote = (d: KeyDifference, check: Check, extra: boolean) => {
        next.push(d);
        (extra ? pending.extras : pending.checks).push(check);
      };
      for (let i = 0; i < again.checks.length; i += batch)
        await comparer.keys(again.checks.slice(i, i + batch), 1, (d, c) => renote(d, c, false));
      for (const c of again.extras) {
        const fromDbs = [...new Set([c.db])];
        await comparer.extras([c.key], c.targetDb, fromDbs, (d, cc) => renote(d, cc, true));
      }
      last = next;
    }
    for (const d of last) {
      counts[d.kind]++;
      if (differences.length < maxReported) differences.push(d);
      options.onDifference?.(d);
    }
  } catch (err) {
    if (signal?.aborted) throw abortError(signal.reason, 'the compare');
    if (err instanceof ReplicationError) throw err;
    throw new ReplicationError('ERR_COMPARE_READ', `the compare failed: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
    });
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
  const total = counts.missing + counts.extra + counts.type + counts.value + counts.ttl;
  return { sourceKeys, targetKeys, valuesCompared, counts, differences, rounds: round, differ: total > 0 };
}

function argument(message: string): ReplicationError {
  return new ReplicationError('ERR_REPLICATION_ARGUMENT', message);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A command through a side's pipeline (routed by the key's slot on a Cluster). */
function ask(side: Side, args: TargetArg[], db: number, key: Buffer | undefined, node?: TargetNode): Promise<unknown> {
  return new Promise((resolve, reject) => {
    side.write(
      args,
      db,
      key !== undefined && side.cluster ? slotOf(key) : -1,
      commandBytes(args),
      (err, reply) => (err ? reject(err) : resolve(reply)),
      node,
    );
  });
}

async function databases(side: Side): Promise<number[]> {
  const found = new Set<number>();
  for (const node of side.nodes) {
    const info = text(await node.send(['INFO', 'keyspace']));
    for (const m of info.matchAll(/^db(\d+):keys=(\d+)/gm)) if (Number(m[2]) > 0) found.add(Number(m[1]));
  }
  if (side.cluster) found.add(0);
  return [...found].sort((a, b) => a - b);
}

async function scan(
  side: Side,
  node: TargetNode,
  db: number,
  filter: KeyFilter,
  count: number,
  signal: AbortSignal | undefined,
  each: (keys: Buffer[]) => Promise<void>,
): Promise<void> {
  let cursor = '0';
  do {
    signal?.throwIfAborted();
    const args: TargetArg[] = ['SCAN', cursor, 'COUNT', count];
    if (filter.scanPattern !== undefined) args.push('MATCH', filter.scanPattern);
    const reply = (await ask(side, args, db, undefined, node)) as [Buffer, Buffer[]];
    cursor = text(reply[0]);
    const keys = reply[1].filter((k) => filter.key(k));
    if (keys.length > 0) await each(keys);
  } while (cursor !== '0');
}

/** Key-by-key comparisons between the two sides. */
class Comparer {
  readonly #source: Side;
  readonly #target: Side;
  readonly #filter: KeyFilter;
  readonly #tolerance: number;
  readonly #signal: AbortSignal | undefined;

  constructor(source: Side, target: Side, filter: KeyFilter, tolerance: number, signal: AbortSignal | undefined) {
    this.#source = source;
    this.#target = target;
    this.#filter = filter;
    this.#tolerance = tolerance;
    this.#signal = signal;
  }

  /** Type, TTL and (sampled) value of source keys on the target; returns how many values were compared. */
  async keys(
    checks: readonly Check[],
    sample: number,
    report: (d: KeyDifference, check: Check) => void,
  ): Promise<number> {
    this.#signal?.throwIfAborted();
    const s = this.#source;
    const t = this.#target;
    const meta = await Promise.all(
      checks.map((c) =>
        Promise.all([
          ask(s, ['TYPE', c.key], c.db, c.key),
          ask(s, ['PEXPIRETIME', c.key], c.db, c.key),
          ask(t, ['TYPE', c.key], c.targetDb, c.key),
          ask(t, ['PEXPIRETIME', c.key], c.targetDb, c.key),
        ]),
      ),
    );
    let compared = 0;
    const values: Promise<void>[] = [];
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i] as Check;
      const [st, sx, tt, tx] = meta[i] as [unknown, unknown, unknown, unknown];
      const sourceType = text(st);
      const targetType = text(tt);
      if (sourceType === 'none') continue; // gone from the source since the scan
      if (this.#filter.byType && !this.#filter.type(typeName(sourceType) as never)) continue;
      if (targetType === 'none') {
        report(
          { kind: 'missing', db: c.db, key: c.key, detail: `a ${sourceType} on the source, missing on the target` },
          c,
        );
        continue;
      }
      if (sourceType !== targetType) {
        report(
          {
            kind: 'type',
            db: c.db,
            key: c.key,
            detail: `a ${sourceType} on the source, a ${targetType} on the target`,
          },
          c,
        );
        continue;
      }
      const se = Number(sx);
      const te = Number(tx);
      if (se < 0 !== te < 0 || (se >= 0 && Math.abs(se - te) > this.#tolerance)) {
        report(
          {
            kind: 'ttl',
            db: c.db,
            key: c.key,
            detail: `expires ${expiry(se)} on the source, ${expiry(te)} on the target`,
          },
          c,
        );
        continue;
      }
      if (sample < 1 && Math.random() >= sample) continue;
      compared++;
      values.push(
        this.#value(sourceType, c).then((detail) => {
          if (detail !== undefined) report({ kind: 'value', db: c.db, key: c.key, detail }, c);
        }),
      );
    }
    await Promise.all(values);
    return compared;
  }

  /** Target keys that no kept source database has. */
  async extras(
    keys: readonly Buffer[],
    targetDb: number,
    fromDbs: readonly number[],
    report: (d: KeyDifference, c: Check) => void,
  ): Promise<void> {
    this.#signal?.throwIfAborted();
    const exists = await Promise.all(
      keys.map((key) => Promise.all(fromDbs.map((db) => ask(this.#source, ['EXISTS', key], db, key)))),
    );
    const typeOf = this.#filter.byType
      ? await Promise.all(keys.map((key) => ask(this.#target, ['TYPE', key], targetDb, key)))
      : undefined;
    for (let i = 0; i < keys.length; i++) {
      if ((exists[i] as unknown[]).some((n) => Number(n) > 0)) continue;
      if (typeOf) {
        const type = text(typeOf[i]);
        if (type === 'none' || !this.#filter.type(typeName(type) as never)) continue;
      }
      const key = keys[i] as Buffer;
      report(
        { kind: 'extra', db: targetDb, key, detail: 'on the target only' },
        { db: fromDbs[0] ?? targetDb, targetDb, key },
      );
    }
  }

  /** Undefined when equal, else what differs. */
  async #value(type: string, c: Check): Promise<string | undefined> {
    switch (type) {
      case 'string':
        return this.#string(c);
      case 'hash':
        return this.#hash(c);
      case 'set':
        return this.#set(c);
      case 'zset':
        return this.#zset(c);
      case 'list':
        return this.#list(c);
      case 'stream':
        return this.#stream(c);
      default:
        return this.#dump(c);
    }
  }

  #both(args: TargetArg[], c: Check): Promise<[unknown, unknown]> {
    return Promise.all([ask(this.#source, args, c.db, c.key), ask(this.#target, args, c.targetDb, c.key)]);
  }

  async #string(c: Check): Promise<string | undefined> {
    const [sl, tl] = await this.#both(['STRLEN', c.key], c);
    if (Number(sl) !== Number(tl)) return `${sl} bytes on the source, ${tl} on the target`;
    const len = Number(sl);
    const piece = 1024 * 1024;
    for (let at = 0; at < len; at += piece) {
      const [a, b] = (await this.#both(['GETRANGE', c.key, at, Math.min(len, at + piece) - 1], c)) as [Buffer, Buffer];
      if (!a.equals(b)) {
        let i = 0;
        while (i < a.length && a[i] === b[i]) i++;
        return `bytes differ from offset ${at + i}: ${show(a.subarray(i, i + 32))} vs ${show(b.subarray(i, i + 32))}`;
      }
    }
    return undefined;
  }

  async #hash(c: Check): Promise<string | undefined> {
    const [sl, tl] = await this.#both(['HLEN', c.key], c);
    if (Number(sl) !== Number(tl)) return `${sl} fields on the source, ${tl} on the target`;
    if (Number(sl) <= SMALL) {
      const [a, b] = await this.#both(['HGETALL', c.key], c);
      const am = pairsMap(a);
      const bm = pairsMap(b);
      for (const [f, v] of am) {
        const w = bm.get(f);
        if (w === undefined) return `field ${show(Buffer.from(f, 'latin1'))} missing on the target`;
        if (!v.equals(w)) return `field ${show(Buffer.from(f, 'latin1'))}: ${show(v)} vs ${show(w)}`;
      }
      return undefined;
    }
    // Large: the source's fields in batches, looked up on the target.
    let cursor = '0';
    do {
      const [next, flat] = (await ask(this.#source, ['HSCAN', c.key, cursor, 'COUNT', CHUNK], c.db, c.key)) as [
        Buffer,
        Buffer[],
      ];
      cursor = text(next);
      const fields: Buffer[] = [];
      const vals: Buffer[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        fields.push(flat[i] as Buffer);
        vals.push(flat[i + 1] as Buffer);
      }
      if (fields.length === 0) continue;
      const got = (await ask(this.#target, ['HMGET', c.key, ...fields], c.targetDb, c.key)) as (Buffer | null)[];
      for (let i = 0; i < fields.length; i++) {
        const w = got[i];
        if (w === null || w === undefined) return `field ${show(fields[i])} missing on the target`;
        if (!(vals[i] as Buffer).equals(w)) return `field ${show(fields[i])}: ${show(vals[i])} vs ${show(w)}`;
      }
    } while (cursor !== '0');
    return undefined;
  }

  async #set(c: Check): Promise<string | undefined> {
    const [sl, tl] = await this.#both(['SCARD', c.key], c);
    if (Number(sl) !== Number(tl)) return `${sl} members on the source, ${tl} on the target`;
    let cursor = '0';
    do {
      const [next, members] = (await ask(this.#source, ['SSCAN', c.key, cursor, 'COUNT', CHUNK], c.db, c.key)) as [
        Buffer,
        Buffer[],
      ];
      cursor = text(next);
      if (members.length === 0) continue;
      const got = (await ask(this.#target, ['SMISMEMBER', c.key, ...members], c.targetDb, c.key)) as number[];
      for (let i = 0; i < members.length; i++)
        if (Number(got[i]) !== 1) return `member ${show(members[i])} missing on the target`;
    } while (cursor !== '0');
    return undefined;
  }

  async #zset(c: Check): Promise<string | undefined> {
    const [sl, tl] = await this.#both(['ZCARD', c.key], c);
    if (Number(sl) !== Number(tl)) return `${sl} members on the source, ${tl} on the target`;
    let cursor = '0';
    do {
      const [next, flat] = (await ask(this.#source, ['ZSCAN', c.key, cursor, 'COUNT', CHUNK], c.db, c.key)) as [
        Buffer,
        Buffer[],
      ];
      cursor = text(next);
      const members: Buffer[] = [];
      const scores: string[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        members.push(flat[i] as Buffer);
        scores.push(text(flat[i + 1]));
      }
      if (members.length === 0) continue;
      const got = (await ask(this.#target, ['ZMSCORE', c.key, ...members], c.targetDb, c.key)) as unknown[];
      for (let i = 0; i < members.length; i++) {
        const w = got[i];
        if (w === null || w === undefined) return `member ${show(members[i])} missing on the target`;
        if (!Object.is(score(scores[i]), score(w)))
          return `member ${show(members[i])}: score ${scores[i]} vs ${text(w)}`;
      }
    } while (cursor !== '0');
    return undefined;
  }

  async #list(c: Check): Promise<string | undefined> {
    const [sl, tl] = await this.#both(['LLEN', c.key], c);
    if (Number(sl) !== Number(tl)) return `${sl} elements on the source, ${tl} on the target`;
    const len = Number(sl);
    for (let at = 0; at < len; at += CHUNK) {
      const [a, b] = (await this.#both(['LRANGE', c.key, at, at + CHUNK - 1], c)) as [Buffer[], Buffer[]];
      for (let i = 0; i < a.length; i++)
        if (!b[i] || !(a[i] as Buffer).equals(b[i] as Buffer))
          return `element ${at + i}: ${show(a[i])} vs ${show(b[i])}`;
    }
    return undefined;
  }

  async #stream(c: Check): Promise<string | undefined> {
    const [sl, tl] = await this.#both(['XLEN', c.key], c);
    if (Number(sl) !== Number(tl)) return `${sl} entries on the source, ${tl} on the target`;
    let from = '-';
    for (;;) {
      const [a, b] = (await this.#both(['XRANGE', c.key, from, '+', 'COUNT', CHUNK], c)) as [unknown[][], unknown[][]];
      if (a.length !== b.length) return 'entries differ';
      for (let i = 0; i < a.length; i++) {
        const ea = a[i] as [Buffer, Buffer[]];
        const eb = b[i] as [Buffer, Buffer[]];
        if (text(ea[0]) !== text(eb[0])) return `entry ${i}: ID ${text(ea[0])} vs ${text(eb[0])}`;
        const fa = ea[1].map(text).join('\u0000');
        const fb = eb[1].map(text).join('\u0000');
        if (fa !== fb) return `entry ${text(ea[0])}: fields differ`;
      }
      if (a.length < CHUNK) break;
      from = `(${text((a[a.length - 1] as [Buffer])[0])}`;
    }
    // Groups: name, last delivered ID, pending count, entries read; consumers and their pending counts.
    const [ga, gb] = (await this.#both(['XINFO', 'GROUPS', c.key], c)) as [unknown[][], unknown[][]];
    // entries-read is compared only when both sides know it: Redis 7.0 replicates XREADGROUP as
    // XCLAIM ... LASTID, which leaves it unknown on every replica, a Redis one included.
    const readCounts = new Map<string, [string, string]>();
    for (const [list, side] of [
      [ga, 0],
      [gb, 1],
    ] as const)
      for (const g of list) {
        const m = pairsMap(g);
        const name = text(m.get('name'));
        const pair = readCounts.get(name) ?? ['', ''];
        const read = m.get('entries-read');
        pair[side] = read === undefined || read === null ? '' : text(read);
        readCounts.set(name, pair);
      }
    const groups = (list: unknown[][]) =>
      list
        .map((g) => {
          const m = pairsMap(g);
          const name = text(m.get('name'));
          const [ra, rb] = readCounts.get(name) ?? ['', ''];
          const read = ra !== '' && rb !== '' ? ra : '';
          return `${name}|${text(m.get('last-delivered-id'))}|${text(m.get('pending'))}|${read}`;
        })
        .sort()
        .join('\n');
    const sa = groups(ga);
    const sb = groups(gb);
    if (sa !== sb) return `consumer groups differ: ${JSON.stringify(sa)} vs ${JSON.stringify(sb)}`;
    for (const g of ga) {
      const name = pairsMap(g).get('name') as Buffer;
      const [pa, pb] = (await this.#both(['XPENDING', c.key, name, '-', '+', 10_000], c)) as [unknown[][], unknown[][]];
      const pending = (list: unknown[][]) => list.map((p) => `${text(p[0])}|${text(p[1])}|${text(p[3])}`).join('\n');
      if (pending(pa) !== pending(pb)) return `pending entries of group ${show(name)} differ`;
    }
    return undefined;
  }

  async #dump(c: Check): Promise<string | undefined> {
    const [a, b] = (await this.#both(['DUMP', c.key], c)) as [Buffer | null, Buffer | null];
    if (a === null || b === null) return a === b ? undefined : 'gone on one side';
    // Footers (RDB version, checksum) differ between versions: compare the values.
    return a.subarray(0, a.length - 10).equals(b.subarray(0, b.length - 10)) ? undefined : 'serialized values differ';
  }
}

/** A score as a number, from RESP3 doubles or RESP2 text (`inf`, `-inf`). */
function score(value: unknown): number {
  if (typeof value === 'number') return value;
  const t = text(value).toLowerCase();
  if (t === 'inf' || t === '+inf') return Number.POSITIVE_INFINITY;
  if (t === '-inf') return Number.NEGATIVE_INFINITY;
  return Number(t);
}

function typeName(type: string): string {
  return type === 'ReJSON-RL' || !['string', 'list', 'set', 'zset', 'hash', 'stream'].includes(type) ? 'module' : type;
}

function expiry(at: number): string {
  return at < 0 ? 'never' : new Date(at).toISOString();
}
