// Writing a snapshot's keys to the target. Each key is one command when it fits in one part:
// SET for a plain string (SET NX under the skip and fail policies), RESTORE with a portable DUMP
// payload for collections (and for strings that carry LRU/LFU data), keeping the TTL (ABSTTL)
// and the access data (IDLETIME, FREQ). A large key arrives in parts: the first is written like
// a whole key without its TTL, the rest appended with idempotent commands where Redis has them
// (SETRANGE, SADD, HSET, ZADD; RPUSH for lists), then the TTL. Streams have no portable payload:
// XADD per entry, then XSETID, the groups, their consumers and pending entries.

import { ReplicationError } from '../errors.ts';
import type { HashField, ModuleItem, RdbEntryEvent, StreamGroup, StreamMeta } from '../rdb-events.ts';
import { type ExistingKeyPolicy, scoreText, type WriteContext } from './context.ts';
import { encodeDumpPayload, encodeStoredPayload } from './dump-encoder.ts';
import type { TargetArg } from './target.ts';

/** A key being written in parts. */
interface Current {
  readonly sourceDb: number;
  readonly db: number;
  readonly key: Buffer;
  readonly type: RdbEntryEvent['type'];
  skip: boolean;
  /** Bytes of a string written so far (the next SETRANGE offset). */
  written: number;
  /** XADDs sent for a stream (an empty stream needs a placeholder). */
  entries: number;
  /** Module items gathered across parts (a module value is restored whole). */
  moduleItems: ModuleItem[] | undefined;
}

/** Counters of the snapshot phase. */
export interface SnapshotCounters {
  keys: number;
  parts: number;
  filtered: number;
  skipped: number;
  expired: number;
}

function isBusyKey(err: Error | undefined): boolean {
  return err !== undefined && /^BUSYKEY\b/.test(err.message);
}

/** Writes snapshot entries (of any source: a live full sync, an RDB file, an AOF base). */
export class SnapshotWriter {
  readonly #ctx: WriteContext;
  /** The policy for keys already on the target (`replace` after the first full sync of a state). */
  policy: ExistingKeyPolicy;
  readonly counters: SnapshotCounters = { keys: 0, parts: 0, filtered: 0, skipped: 0, expired: 0 };
  /** The key being written, per source (the shards of a Cluster send their snapshots interleaved). */
  readonly #current = new Map<string, Current>();
  #now = Date.now();

  constructor(ctx: WriteContext, policy: ExistingKeyPolicy) {
    this.#ctx = ctx;
    this.policy = policy;
  }

  /** A new snapshot of `source` starts: its key interrupted mid-way is abandoned. */
  reset(source = ''): void {
    this.#current.delete(source);
    this.#now = Date.now();
  }

  /**
   * Writes one entry part. Returns a promise when the next part must wait for a reply (the
   * first part of a large key, or a stream, under the `skip` and `fail` policies). With
   * `targetDb`, the filter was already applied and the key goes to that database. `source` names
   * the snapshot the part belongs to (a shard), so that interleaved snapshots keep their keys apart.
   */
  entry(e: RdbEntryEvent, targetDb?: number, source = ''): Promise<void> | undefined {
    const ctx = this.#ctx;
    if (e.part === 0) {
      if ((this.counters.keys & 1023) === 0) this.#now = Date.now();
      const keep = targetDb !== undefined || (ctx.filter.db(e.db) && ctx.filter.key(e.key) && ctx.filter.type(e.type));
      const current: Current = {
        sourceDb: e.db,
        db: targetDb ?? (keep ? ctx.mapDb(e.db) : 0),
        key: e.key,
        type: e.type,
        skip: !keep,
        written: 0,
        entries: 0,
        moduleItems: undefined,
      };
      if (e.last) this.#current.delete(source);
      else this.#current.set(source, current);
      if (!keep) {
        this.counters.filtered++;
        return undefined;
      }
      this.counters.keys++;
      this.counters.parts++;
      if (e.expireAt !== undefined && e.expireAt <= this.#now) {
        // Logically gone on the source: the target must not keep an older copy.
        this.counters.expired++;
        current.skip = true;
        if (this.policy === 'replace') ctx.send(['DEL', e.key], current.db, e.key);
        return undefined;
      }
      return this.#first(e, current);
    }
    const current = this.#current.get(source);
    if (current === undefined || !current.key.equals(e.key)) {
      throw new ReplicationError(
        'ERR_SYNC_UNSUPPORTED',
        `part ${e.part} of key ${e.key.toString('latin1').slice(0, 64)} came without its first part`,
      );
    }
    if (e.last) this.#current.delete(source);
    if (current.skip) return undefined;
    this.counters.parts++;
    this.#more(e, current);
    if (e.last) this.#finish(e, current);
    return undefined;
  }

  /** The first (or only) part of a kept key. */
  #first(e: RdbEntryEvent, current: Current): Promise<void> | undefined {
    const ctx = this.#ctx;
    const { db, key } = current;
    const replace = this.policy === 'replace';
    if (e.type === 'stream') {
      if (replace) {
        ctx.send(['DEL', key], db, key);
        this.#more(e, current);
        if (e.last) this.#finish(e, current);
        return undefined;
      }
      return this.#decide(
        ['EXISTS', key],
        db,
        key,
        (reply) => reply === 1,
        current,
        () => {
          this.#more(e, current);
          if (e.last) this.#finish(e, current);
        },
      );
    }
    if (e.type === 'module' && !e.last) {
      current.moduleItems = [...e.value];
      return undefined;
    }
    const ttl = e.last && e.expireAt !== undefined ? e.expireAt : undefined;
    let args: TargetArg[];
    if (e.encoded !== undefined) {
      // A compact encoding the target reads: passed through as stored.
      args = this.#restore(key, encodeStoredPayload(e.rdbType, e.encoded), ttl, e, replace);
    } else if (e.type === 'string' && e.idle === undefined && e.freq === undefined) {
      args = ['SET', key, e.value];
      if (ttl !== undefined) args.push('PXAT', ttl);
      if (!replace) args.push('NX');
      current.written = e.value.length;
    } else {
      args = this.#restore(key, encodeDumpPayload(e), ttl, e, replace);
      if (e.type === 'string') current.written = e.value.length;
    }
    const isConflict = (reply: unknown, err: Error | undefined) =>
      e.type === 'string' && args[0] === 'SET' ? err === undefined && reply === null : isBusyKey(err);
    if (e.last) {
      if (replace) {
        ctx.send(args, db, key);
        if (e.type === 'hash') this.#fieldTtls(e.value, current);
      } else
        ctx.send(args, db, key, (err, reply) => {
          if (isConflict(reply, err)) this.#conflict(key);
          else if (err)
            throw err; // the sync reports it as a failed write
          else if (e.type === 'hash') this.#fieldTtls(e.value, current);
        });
      return undefined;
    }
    if (replace) {
      ctx.send(args, db, key);
      if (e.type === 'hash') this.#fieldTtls(e.value, current);
      return undefined;
    }
    return new Promise<void>((resolve, reject) => {
      ctx.send(args, db, key, (err, reply) => {
        if (isConflict(reply, err)) {
          current.skip = true;
          try {
            this.#conflict(key);
            resolve();
          } catch (conflict) {
            reject(conflict);
          }
          return;
        }
        if (err) {
          reject(err);
          return;
        }
        if (e.type === 'hash') this.#fieldTtls(e.value, current);
        resolve();
      });
    });
  }

  /** Sends `probe`; when it says the key exists, the key is skipped (or the sync fails). */
  #decide(
    probe: TargetArg[],
    db: number,
    key: Buffer,
    exists: (reply: unknown) => boolean,
    current: Current,
    then: () => void,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#ctx.send(probe, db, key, (err, reply) => {
        if (err) {
          reject(err);
          return;
        }
        try {
          if (exists(reply)) {
            current.skip = true;
            this.#conflict(key);
          } else then();
          resolve();
        } catch (failure) {
          reject(failure);
        }
      });
    });
  }

  #conflict(key: Buffer): void {
    if (this.policy === 'fail')
      throw new ReplicationError(
        'ERR_SYNC_CONFLICT',
        `key ${printable(key)} already exists on the target and the policy for existing keys is "fail" (use "replace" to overwrite, "skip" to keep the target's)`,
      );
    this.counters.skipped++;
  }

  #restore(key: Buffer, payload: Buffer, ttl: number | undefined, e: RdbEntryEvent, replace: boolean): TargetArg[] {
    const args: TargetArg[] = ['RESTORE', key, ttl ?? 0, payload];
    if (replace) args.push('REPLACE');
    if (ttl !== undefined) args.push('ABSTTL');
    if (e.idle !== undefined) args.push('IDLETIME', e.idle);
    else if (e.freq !== undefined) args.push('FREQ', e.freq);
    return args;
  }

  /** A later part (or, for streams, any part) of a kept key. */
  #more(e: RdbEntryEvent, current: Current): void {
    const ctx = this.#ctx;
    const { db, key } = current;
    switch (e.type) {
      case 'string':
        ctx.send(['SETRANGE', key, current.written, e.value], db, key);
        current.written += e.value.length;
        break;
      case 'list':
        if (e.value.length > 0) ctx.send(['RPUSH', key, ...e.value], db, key);
        break;
      case 'set':
        if (e.value.length > 0) ctx.send(['SADD', key, ...e.value], db, key);
        break;
      case 'zset':
        if (e.value.length > 0) {
          const args: TargetArg[] = ['ZADD', key];
          for (const m of e.value) args.push(scoreText(m.score), m.member);
          ctx.send(args, db, key);
        }
        break;
      case 'hash':
        if (e.value.length > 0) {
          const args: TargetArg[] = ['HSET', key];
          for (const f of e.value) args.push(f.field, f.value);
          ctx.send(args, db, key);
          this.#fieldTtls(e.value, current);
        }
        break;
      case 'stream':
        for (const item of e.value.entries) {
          const args: TargetArg[] = ['XADD', key, item.id];
          for (const [f, v] of item.fields) args.push(f, v);
          // Sent again after a lost connection, an XADD of an ID already there is refused:
          // that means it is in.
          ctx.send(args, db, key, (err) => {
            if (err && !/equal or smaller/.test(err.message)) throw err;
          });
          current.entries++;
        }
        break;
      case 'module':
        current.moduleItems ??= [];
        current.moduleItems.push(...e.value);
        break;
    }
  }

  /** After the last part of a multi-part key (or a stream): the rest of its state and its TTL. */
  #finish(e: RdbEntryEvent, current: Current): void {
    const ctx = this.#ctx;
    const { db, key } = current;
    if (e.type === 'module' && current.moduleItems) {
      const whole = { ...e, part: 0, last: true, value: current.moduleItems } as RdbEntryEvent;
      const ttl = e.expireAt;
      ctx.send(this.#restore(key, encodeDumpPayload(whole), ttl, e, this.policy === 'replace'), db, key, (err) => {
        if (isBusyKey(err)) this.#conflict(key);
        else if (err) throw err;
      });
      return;
    }
    if (e.type === 'stream' && e.value.meta) this.#streamMeta(e.value.meta, current);
    if (e.expireAt !== undefined && (e.part > 0 || e.type === 'stream'))
      ctx.send(['PEXPIREAT', key, e.expireAt], db, key);
  }

  #streamMeta(meta: StreamMeta, current: Current): void {
    const ctx = this.#ctx;
    const { db, key } = current;
    if (current.entries === 0) {
      // An empty stream exists in Redis (all entries deleted, or made by XGROUP CREATE MKSTREAM):
      // create it with a placeholder entry trimmed away at once.
      const id = meta.lastId === '0-0' ? '0-1' : meta.lastId;
      ctx.send(['XADD', key, 'MAXLEN', '0', id, '_', '_'], db, key, (err) => {
        if (err && !/equal or smaller/.test(err.message)) throw err;
      });
    }
    const setId: TargetArg[] = ['XSETID', key, meta.lastId];
    if (ctx.targetAtLeast(7, 0) && meta.entriesAdded !== undefined) {
      setId.push('ENTRIESADDED', meta.entriesAdded);
      if (meta.maxDeletedId !== undefined) setId.push('MAXDELETEDID', meta.maxDeletedId);
    }
    ctx.send(setId, db, key);
    for (const group of meta.groups) this.#group(group, current);
  }

  #group(group: StreamGroup, current: Current): void {
    const ctx = this.#ctx;
    const { db, key } = current;
    const create: TargetArg[] = ['XGROUP', 'CREATE', key, group.name, group.lastDeliveredId];
    if (ctx.targetAtLeast(7, 0) && group.entriesRead !== undefined && group.entriesRead >= 0)
      create.push('ENTRIESREAD', group.entriesRead);
    ctx.send(create, db, key, (err) => {
      // Sent again after a lost connection, the group is already there.
      if (err && !/^BUSYGROUP/.test(err.message)) throw err;
    });
    for (const consumer of group.consumers) {
      if (ctx.targetAtLeast(6, 2)) ctx.send(['XGROUP', 'CREATECONSUMER', key, group.name, consumer.name], db, key);
    }
    const owners = new Map<string, Buffer>();
    for (const consumer of group.consumers) for (const id of consumer.pending) owners.set(id, consumer.name);
    for (const pending of group.pending) {
      const owner = pending.consumer ?? owners.get(pending.id);
      if (owner === undefined) continue;
      ctx.send(
        [
          'XCLAIM',
          key,
          group.name,
          owner,
          '0',
          pending.id,
          'TIME',
          pending.deliveryTime,
          'RETRYCOUNT',
          pending.deliveryCount,
          'FORCE',
          'JUSTID',
        ],
        db,
        key,
      );
    }
  }

  /** Field expiries of a hash (Redis 7.4+, Valkey 9), grouped by expiry time. */
  #fieldTtls(fields: readonly HashField[], current: Current): void {
    let byTime: Map<number, Buffer[]> | undefined;
    for (const f of fields) {
      if (f.expireAt === undefined) continue;
      byTime ??= new Map();
      let list = byTime.get(f.expireAt);
      if (!list) {
        list = [];
        byTime.set(f.expireAt, list);
      }
      list.push(f.field);
    }
    if (!byTime) return;
    const ctx = this.#ctx;
    for (const [at, names] of byTime) {
      ctx.send(['HPEXPIREAT', current.key, at, 'FIELDS', names.length, ...names], current.db, current.key, (err) => {
        if (err)
          ctx.warn(
            'hash-field-ttl',
            `the target refused hash field expiries for ${printable(current.key)}: ${err.message}`,
          );
      });
    }
  }
}

/** A key for messages: text when printable, else hex, shortened. */
export function printable(key: Buffer): string {
  const head = key.subarray(0, 64).toString('latin1');
  const shown = /^[\x20-\x7e]*$/.test(head) ? JSON.stringify(head) : `0x${key.subarray(0, 64).toString('hex')}`;
  return key.length > 64 ? `${shown}...` : shown;
}
