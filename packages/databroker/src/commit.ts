// Committing puts. Concurrent puts of one backend are committed together (group commit): while a
// commit is in flight, new puts queue, and the next commit takes all of them (up to
// maxBatchRecords), each put keeping its own consecutive versions. A commit is one Lua script
// where the ACL allows scripting (no conflicts, no retries, capacity enforced atomically), else
// a WATCH/MULTI transaction followed by capacity enforcement.
//
// Both build the stored bytes on this side: the entries (with the versions and time the commit
// expects) and the Pub/Sub message. The script stores them as they are when the expectation holds
// (its fast path), and rebuilds only their headers when another writer committed in between.
import { randomBytes } from 'node:crypto';
import { type EntryBody, encodeEntry, fieldPrefix, tombstoneOf } from './entry.ts';
import { corruptError } from './errors.ts';
import type { KeySpace } from './keys.ts';
import { type ChangeNotifier, MAX_PUSH_BYTES, pushMessage } from './notifier.ts';
import { arrayReply, bytesArrayReply, bytesReply, integerReply, textReply, timeReply } from './replies.ts';
import { BACKFILL_SCRIPT, PUT_SCRIPT } from './script.ts';
import {
  abortError,
  type Command,
  ConflictError,
  type Read,
  type TransactionJob,
  type TransactionRunner,
  type WritePlan,
} from './transaction.ts';

/** What a commit did: the records got versions `base + 1 ..`, all at `now` under `serverVersion`. */
export interface Committed {
  readonly serverVersion: number;
  readonly base: number;
  readonly now: number;
}

/** A put waiting to be committed. */
export interface PendingPut {
  readonly bodies: readonly EntryBody[];
  readonly deletedAts: readonly (number | undefined)[];
  readonly resolve: (committed: Committed) => void;
  readonly reject: (err: unknown) => void;
  readonly signal: AbortSignal | undefined;
  /** Set once the put left the queue (its commit is being sent). */
  sent: boolean;
  /** Set once the caller was answered (committed, failed, or aborted). */
  settled: boolean;
  /** Removes the abort listener. */
  detach?: (() => void) | undefined;
}

/** How commits are made: by script, or by WATCH/MULTI. */
export type CommitMode = 'script' | 'watch';

/** What the committer needs from the backend. */
export interface CommitHost {
  readonly keys: KeySpace;
  readonly runner: TransactionRunner;
  readonly notifier: ChangeNotifier;
  readonly maxBatchRecords: number;
  /** The mode to commit in (resolves the scripting probe the first time). */
  mode(): Promise<CommitMode>;
  /**
   * Whether both ways are open and the committer picks: WATCH/MULTI while no other writer
   * interferes (the cheapest for the server), scripts once one does (no conflicts).
   */
  readonly adaptive: boolean;
  /**
   * A scripted commit failed with `err` before running (scripting refused): returns true when
   * the backend switched to WATCH/MULTI and the commit should be made that way.
   */
  scriptingRefused(err: unknown): boolean;
  /** The stored capacity of a type is damaged: it was ignored (the backend reports it). */
  capacityDamaged(type: string): void;
  /** A commit landed (for counters). */
  committed(): void;
}

const MAX_SERVER_VERSION = 2 ** 53 - 1;
/** How many recently written types a WATCH/MULTI put prepares the capacities of, for the next put. */
const HOT_TYPES = 32;
/** Adaptive: scripted commits after a conflict before trying WATCH/MULTI again (doubling while conflicts go on). */
const MIN_SCRIPT_RUN = 16;
const MAX_SCRIPT_RUN = 1024;
/** Fields filled into a recency index per step when a type gets a capacity. */
const BACKFILL_STEP = 1000;

/** 53 random bits, never 0: any value a JavaScript number holds exactly. */
export function randomServerVersion(): number {
  const bytes = randomBytes(8);
  const value = (bytes.readUInt32BE(0) & 0x1fffff) * 2 ** 32 + bytes.readUInt32BE(4);
  return value === 0 || value > MAX_SERVER_VERSION ? 1 : value;
}

/**
 * A stored capacity (`cap:<type>` in the meta hash): a number, `track` while its recency index is
 * being filled, undefined for none, null for damaged.
 */
export function capacityOf(raw: unknown): number | 'track' | undefined | null {
  if (raw === null || raw === undefined) return undefined;
  const text = Buffer.isBuffer(raw) ? raw.toString() : String(raw);
  if (text === 'track') return 'track';
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

/** The group-commit queue and the two ways to commit. */
export class Committer {
  readonly #host: CommitHost;
  #pending: PendingPut[] = [];
  /** The batch whose commit is in flight. */
  #inFlight: readonly PendingPut[] = [];
  #busy = false;
  #scheduled = false;
  /** Types written lately, most recent first (WATCH/MULTI prepares their capacities). */
  #hotTypes: string[] = [];
  /** How many types had a capacity at the last WATCH/MULTI read (undefined: not read yet). */
  #capped: number | undefined;
  readonly #tokenPrefix = `${randomBytes(6).toString('hex')}:`;
  #tokens = 0;
  #idleWaiters: (() => void)[] = [];
  /** What the next commit expects: the server version and last version after this backend's last commit. */
  #expected: { serverVersion: number; last: number } | undefined;
  /** The server's clock minus this host's, as of the last commit. */
  #clockOffset: number | undefined;
  /** Types known to be in the types set under `#typesServerVersion`. */
  #knownTypes = new Set<string>();
  #typesServerVersion: number | undefined;
  /** A server version to create the backend with, should it be missing (kept until used). */
  #candidate: number = randomServerVersion();
  /** Commits that took the script's fast path, for tests and figures. */
  fastCommits = 0;
  /** Commits made by script and by WATCH/MULTI. */
  scriptCommits = 0;
  watchCommits = 0;
  /** Adaptive: scripted commits to make before trying WATCH/MULTI again, and the next such run. */
  #scriptRun = 0;
  #scriptRunLength = MIN_SCRIPT_RUN;

  constructor(host: CommitHost) {
    this.#host = host;
  }

  /** Puts waiting for a commit (not yet sent). */
  get queued(): number {
    return this.#pending.length;
  }

  /** Whether a commit is in flight or puts wait. */
  get busy(): boolean {
    return this.#busy || this.#pending.length > 0;
  }

  /** Resolves when no commit is in flight and no put waits. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Queues a put; it is committed with the others of the same moment. */
  enqueue(put: PendingPut): void {
    this.#pending.push(put);
    if (put.signal) {
      const signal = put.signal;
      const onAbort = () => {
        if (put.settled) return;
        // Not sent yet: it leaves the queue and is never written. Sent: the caller stops
        // waiting; the commit may still land (the error says so).
        if (!put.sent) this.#pending = this.#pending.filter((p) => p !== put);
        put.settled = true;
        const what = `put of ${put.bodies.length} record${put.bodies.length === 1 ? '' : 's'}`;
        put.reject(abortError(put.sent ? `${what} (already sent: it may still be applied)` : what, signal));
        this.#maybeIdle();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      put.detach = () => signal.removeEventListener('abort', onAbort);
    }
    if (!this.#busy && !this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => this.#drain());
    }
  }

  /**
   * Fails every put not yet committed (the backend closes): those queued, and with `inFlight`
   * those whose commit was sent and not answered. Returns how many puts and records.
   */
  abandon(err: unknown, inFlight = false): { puts: number; records: number } {
    const pending = this.#pending;
    this.#pending = [];
    let puts = 0;
    let records = 0;
    for (const put of inFlight ? [...pending, ...this.#inFlight] : pending) {
      put.detach?.();
      if (put.settled) continue;
      puts++;
      records += put.bodies.length;
      put.settled = true;
      put.reject(err);
    }
    this.#maybeIdle();
    return { puts, records };
  }

  #maybeIdle(): void {
    if (this.busy) return;
    for (const wake of this.#idleWaiters.splice(0)) wake();
  }

  async #drain(): Promise<void> {
    this.#scheduled = false;
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#pending.length > 0) {
        const batch: PendingPut[] = [];
        let records = 0;
        while (this.#pending.length > 0) {
          const next = this.#pending[0] as PendingPut;
          if (batch.length > 0 && records + next.bodies.length > this.#host.maxBatchRecords) break;
          this.#pending.shift();
          if (next.settled) continue;
          next.sent = true;
          batch.push(next);
          records += next.bodies.length;
        }
        if (batch.length === 0) continue;
        this.#inFlight = batch;
        try {
          const committed = await this.#commit(batch);
          let at = committed.base;
          for (const put of batch) {
            this.#settle(put, undefined, { serverVersion: committed.serverVersion, base: at, now: committed.now });
            at += put.bodies.length;
          }
        } catch (err) {
          for (const put of batch) this.#settle(put, err);
        } finally {
          this.#inFlight = [];
        }
      }
    } finally {
      this.#busy = false;
      this.#maybeIdle();
    }
  }

  #settle(put: PendingPut, err: unknown, result?: Committed): void {
    put.detach?.();
    if (put.settled) return;
    put.settled = true;
    if (err !== undefined) put.reject(err);
    else put.resolve(result as Committed);
  }

  /** One commit for a batch. */
  async #commit(batch: readonly PendingPut[]): Promise<Committed> {
    let bodies: EntryBody[];
    let deletedAts: (number | undefined)[];
    if (batch.length === 1) {
      bodies = batch[0]?.bodies as EntryBody[];
      deletedAts = batch[0]?.deletedAts as (number | undefined)[];
    } else {
      bodies = [];
      deletedAts = [];
      for (const put of batch) {
        for (const body of put.bodies) bodies.push(body);
        for (const deletedAt of put.deletedAts) deletedAts.push(deletedAt);
      }
    }
    // Stop retrying only when every caller of the batch gave up.
    const signal = batch.length === 1 ? batch[0]?.signal : undefined;
    const label = `put of ${bodies.length} record${bodies.length === 1 ? '' : 's'}`;
    let committed: Committed | undefined;
    let scripted = (await this.#host.mode()) === 'script';
    if (scripted && this.#host.adaptive) {
      if (this.#scriptRun > 0) this.#scriptRun--;
      else {
        // No interference lately: WATCH/MULTI costs the server the least. At the first conflict,
        // this commit and the next few go by script, which never conflicts.
        try {
          committed = await this.#host.runner.exclusive((execute) =>
            this.#watched(label, bodies, deletedAts, signal, execute, 1),
          );
          this.#scriptRunLength = MIN_SCRIPT_RUN;
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
          this.#scriptRun = this.#scriptRunLength;
          this.#scriptRunLength = Math.min(MAX_SCRIPT_RUN, this.#scriptRunLength * 2);
        }
      }
    }
    if (!committed && scripted) {
      try {
        committed = await this.#scripted(label, bodies, deletedAts, signal);
      } catch (err) {
        if (!this.#host.scriptingRefused(err)) throw err;
        scripted = false;
      }
    }
    committed ??= await this.#host.runner.exclusive((execute) =>
      this.#watched(label, bodies, deletedAts, signal, execute),
    );
    this.#host.committed();
    return committed;
  }

  /** Types in order of first appearance. */
  #typesOf(bodies: readonly EntryBody[]): string[] {
    if (bodies.length === 1) return [(bodies[0] as EntryBody).type];
    const types: string[] = [];
    let lastType: string | undefined;
    for (const body of bodies) {
      if (body.type === lastType) continue;
      lastType = body.type;
      if (!types.includes(body.type)) types.push(body.type);
    }
    return types;
  }

  /** The positions (1-based) of records that a later record of the batch writes again. */
  #replaced(bodies: readonly EntryBody[]): number[] {
    const out: number[] = [];
    if (bodies.length === 1) return out;
    const later = new Map<string, string[]>(); // id -> the types it has later in the batch
    for (let i = bodies.length - 1; i >= 0; i--) {
      const body = bodies[i] as EntryBody;
      const types = later.get(body.id);
      if (!types) later.set(body.id, [body.type]);
      else if (types.includes(body.type)) out.push(i + 1);
      else types.push(body.type);
    }
    return out;
  }

  /** Whether every type is known to be in the types set (so the commit need not add them). */
  #typesKnown(types: readonly string[], serverVersion: number | undefined): boolean {
    if (serverVersion === undefined || serverVersion !== this.#typesServerVersion) return false;
    for (const type of types) if (!this.#knownTypes.has(type)) return false;
    return true;
  }

  #learnTypes(types: readonly string[], serverVersion: number): void {
    if (serverVersion !== this.#typesServerVersion) {
      this.#knownTypes = new Set();
      this.#typesServerVersion = serverVersion;
    }
    for (const type of types) this.#knownTypes.add(type);
    if (this.#knownTypes.size > 10_000) this.#knownTypes = new Set(types);
  }

  /** The server's clock now, as this host estimates it from the last commit. */
  #serverNow(): number | undefined {
    return this.#clockOffset === undefined ? undefined : Math.round(Date.now() + this.#clockOffset);
  }

  /** The scripted commit: one EVALSHA, atomic, never a conflict. */
  async #scripted(
    label: string,
    bodies: readonly EntryBody[],
    deletedAts: readonly (number | undefined)[],
    signal: AbortSignal | undefined,
  ): Promise<Committed> {
    const { keys, runner, notifier } = this.#host;
    const n = bodies.length;
    const types = this.#typesOf(bodies);
    const replaced = this.#replaced(bodies);
    const token = `${this.#tokenPrefix}${++this.#tokens}`;
    const expected = this.#expected;
    const base = expected?.last ?? 0;
    const now = this.#serverNow() ?? 0;
    const entries = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) entries[i] = encodeEntry(bodies[i] as EntryBody, base + 1 + i, now, deletedAts[i]);
    const sv = expected?.serverVersion;
    const args: (string | number | Buffer)[] = [
      this.#candidate,
      keys.channel,
      token,
      MAX_PUSH_BYTES,
      expected ? base : '',
      now,
      sv ?? '',
      this.#typesKnown(types, sv) ? '1' : '0',
      keys.recencyPrefix,
      n,
      types.length,
      replaced.length,
    ];
    for (const type of types) args.push(type);
    for (const position of replaced) args.push(position);
    for (let i = 0; i < n; i++) {
      const body = bodies[i] as EntryBody;
      args.push(fieldPrefix(body.type) + body.id, entries[i] as Buffer);
    }
    // The message subscribers get, should the expectation hold; else the script builds it.
    args.push(expected ? pushMessage(expected.serverVersion, entries, base + n) : '');
    const result = await runner.script({
      label,
      script: PUT_SCRIPT,
      keys: [keys.meta, keys.records, keys.index, keys.changes, keys.types, keys.commits],
      args,
      signal,
      done: (reply) => {
        const [server, replyBase, replyNow, evicted, fast, ...damaged] = arrayReply(reply, 'put script');
        for (const type of damaged) this.#host.capacityDamaged(String(type));
        return {
          serverVersion: integerReply(server, 'put script server version') as number,
          base: integerReply(replyBase, 'put script base version') ?? 0,
          now: integerReply(replyNow, 'put script time') ?? 0,
          evicted: integerReply(evicted, 'put script evictions') ?? 0,
          fast: fast === 1,
        };
      },
      applied: async (read: Read) => {
        const [commits, server, first] = await read([
          ['LRANGE', keys.commits, 0, -1],
          ['HGET', keys.meta, 'server'],
          ['ZRANGEBYSCORE', keys.changes, base + 1, base + 1],
        ]);
        const serverVersion = integerReply(server, 'the stored server version') as number;
        // The fast path stored these very bytes, at a version no other commit can take.
        if (expected && bytesArrayReply(first, 'ZRANGEBYSCORE changes').some((m) => m.equals(entries[0] as Buffer))) {
          return { serverVersion, base, now, evicted: -1, fast: true };
        }
        for (const item of bytesArrayReply(commits, 'LRANGE commits')) {
          const [mine, itemBase, itemNow] = item.toString().split(' ');
          if (mine !== token) continue;
          return { serverVersion, base: Number(itemBase), now: Number(itemNow), evicted: -1, fast: false };
        }
        return undefined;
      },
    });
    if (!Number.isSafeInteger(result.serverVersion) || result.serverVersion <= 0) {
      throw corruptError(`${label}: the put script answered server version ${String(result.serverVersion)}`);
    }
    if (result.serverVersion === this.#candidate) this.#candidate = randomServerVersion();
    if (result.fast) this.fastCommits++;
    this.scriptCommits++;
    const last = result.base + n + Math.max(0, result.evicted);
    this.#expected = result.evicted < 0 ? undefined : { serverVersion: result.serverVersion, last };
    this.#clockOffset = result.now - Date.now();
    this.#learnTypes(types, result.serverVersion);
    if (notifier.waiting) {
      // A local stream waits: hand it the changes at once (the published message comes later).
      let push: { serverVersion: number; entries: Buffer[] } | undefined;
      if (result.evicted === 0) {
        if (!result.fast) {
          for (let i = 0; i < n; i++) {
            entries[i] = encodeEntry(bodies[i] as EntryBody, result.base + 1 + i, result.now, deletedAts[i]);
          }
        }
        push = { serverVersion: result.serverVersion, entries };
      }
      notifier.notify(last, result.serverVersion, push);
    }
    return result;
  }

  /** The WATCH/MULTI commit, then capacity enforcement for the capped types written. */
  async #watched(
    label: string,
    bodies: readonly EntryBody[],
    deletedAts: readonly (number | undefined)[],
    signal: AbortSignal | undefined,
    execute: <R>(job: TransactionJob<R>) => Promise<R>,
    conflictLimit?: number,
  ): Promise<Committed> {
    const { keys, notifier } = this.#host;
    const types = this.#typesOf(bodies);
    let capped: string[] = [];
    const watch = [keys.meta];
    // The next put is likely to write the types written lately: read their capacities in advance
    // (only while some type has a capacity: then the meta hash counts them in `capped`).
    this.#hotTypes = [...new Set([...types, ...this.#hotTypes])].slice(0, HOT_TYPES);
    const hot = this.#hotTypes;
    const withCaps = this.#capped !== 0;
    const metaRead = (list: readonly string[]): Command =>
      withCaps
        ? ['HMGET', keys.meta, 'server', 'last', 'capped', ...list.map((t) => `cap:${t}`)]
        : ['HMGET', keys.meta, 'server', 'last', 'capped'];
    const committed = await execute({
      label,
      contended: true,
      signal,
      conflictLimit,
      watch,
      reads: [metaRead(types), ['TIME']],
      prepare: { key: `put\n${withCaps ? hot.join('\n') : ''}`, watch, reads: [metaRead(hot), ['TIME']] },
      fromPrepared: (prepared) => {
        if (!prepared.key.startsWith('put\n')) return undefined;
        const meta = arrayReply(prepared.replies[0], 'HMGET meta');
        if (meta.length === 3) return [meta, prepared.replies[1]];
        const known = prepared.key.slice(4).split('\n');
        const at = types.map((t) => known.indexOf(t));
        if (at.some((i) => i < 0)) return undefined;
        return [[meta[0], meta[1], meta[2], ...at.map((i) => meta[3 + i])], prepared.replies[1]];
      },
      plan: async (replies, read, ageMs): Promise<WritePlan<Committed & { entries: Buffer[] }>> => {
        let meta = arrayReply(replies[0], 'HMGET meta');
        const stored = integerReply(meta[0], 'the stored server version');
        const serverVersion = stored ?? this.#candidate;
        const last = integerReply(meta[1], 'the stored last version') ?? 0;
        // The server's clock when the replies were read, moved on by the time since.
        const now = timeReply(replies[1]) + Math.floor(ageMs);
        this.#capped = integerReply(meta[2], 'the stored count of capped types') ?? 0;
        capped = [];
        if (this.#capped > 0) {
          if (meta.length === 3) {
            // Capacities appeared since the last read: read those of these types (still watched).
            const [caps] = await read([['HMGET', keys.meta, ...types.map((t) => `cap:${t}`)]]);
            meta = [...meta, ...arrayReply(caps, 'HMGET meta')];
          }
          types.forEach((type, i) => {
            const capacity = capacityOf(meta[3 + i]);
            if (capacity === null) this.#host.capacityDamaged(type);
            else if (capacity !== undefined) capped.push(type);
          });
        }
        const entries = bodies.map((body, i) => encodeEntry(body, last + 1 + i, now, deletedAts[i]));
        const lastVersion = last + entries.length;
        const commands: Command[] = [];
        if (stored === undefined) commands.push(['HSET', keys.meta, 'server', serverVersion]);
        commands.push(...recordCommands(keys, bodies, deletedAts, entries, last, new Set(capped)));
        if (!this.#typesKnown(types, serverVersion)) commands.push(['SADD', keys.types, ...types]);
        commands.push(['HSET', keys.meta, 'last', lastVersion]);
        commands.push(['PUBLISH', keys.channel, pushMessage(serverVersion, entries, lastVersion)]);
        const first = entries[0] as Buffer;
        return {
          writes: commands,
          committed: () => ({ serverVersion, base: last, now, entries }),
          applied: async (read) => {
            const [found] = await read([['ZRANGEBYSCORE', keys.changes, last + 1, last + 1]]);
            return bytesArrayReply(found, 'ZRANGEBYSCORE changes').some((member) => member.equals(first));
          },
        };
      },
    });
    if (committed.serverVersion === this.#candidate) this.#candidate = randomServerVersion();
    this.watchCommits++;
    this.#learnTypes(types, committed.serverVersion);
    const lastVersion = committed.base + bodies.length;
    this.#expected = { serverVersion: committed.serverVersion, last: lastVersion };
    this.#clockOffset = committed.now - Date.now();
    notifier.notify(lastVersion, committed.serverVersion, {
      serverVersion: committed.serverVersion,
      entries: committed.entries,
    });
    if (capped.length > 0) await this.enforceCapacity(capped, execute, signal);
    return { serverVersion: committed.serverVersion, base: committed.base, now: committed.now };
  }

  /**
   * Deletes the least recently modified records of types over their capacity, as tombstones
   * that carry their data. By script when scripting is on, else by WATCH/MULTI.
   */
  async enforce(types: readonly string[], signal?: AbortSignal): Promise<void> {
    const { keys, runner } = this.#host;
    if ((await this.#host.mode()) === 'script') {
      const args: (string | number)[] = [this.#candidate, keys.channel, '', MAX_PUSH_BYTES, '', '', '', '1'];
      args.push(keys.recencyPrefix, 0, types.length, 0, ...types, '');
      try {
        const evicted = await runner.script({
          label: `capacity of ${types.join(', ')}`,
          script: PUT_SCRIPT,
          keys: [keys.meta, keys.records, keys.index, keys.changes, keys.types, keys.commits],
          args,
          signal,
          done: (reply) => {
            const [server, base, , count, , ...damaged] = arrayReply(reply, 'capacity script');
            for (const type of damaged) this.#host.capacityDamaged(String(type));
            return {
              serverVersion: integerReply(server, 'capacity script') as number,
              last: (integerReply(base, 'capacity script') ?? 0) + (integerReply(count, 'capacity script') ?? 0),
              count: integerReply(count, 'capacity script') ?? 0,
            };
          },
        });
        if (evicted.count > 0) {
          this.#expected = undefined;
          this.#host.notifier.notify(evicted.last, evicted.serverVersion);
        }
        return;
      } catch (err) {
        if (!this.#host.scriptingRefused(err)) throw err;
      }
    }
    await runner.exclusive((execute) => this.enforceCapacity(types, execute, signal));
  }

  /** Capacity enforcement as a WATCH/MULTI transaction. */
  async enforceCapacity(
    types: readonly string[],
    execute: <R>(job: TransactionJob<R>) => Promise<R>,
    signal?: AbortSignal,
  ): Promise<void> {
    const keys = this.#host.keys;
    const result = await execute({
      label: `capacity of ${types.join(', ')}`,
      contended: true,
      signal,
      watch: [keys.meta],
      reads: [
        ['HMGET', keys.meta, 'server', 'last', ...types.map((t) => `cap:${t}`)],
        ['TIME'],
        ...types.map((t): Command => ['ZCARD', keys.recentKey(t)]),
      ],
      plan: async (replies, read) => {
        const meta = arrayReply(replies[0], 'HMGET meta');
        const serverVersion = integerReply(meta[0], 'the stored server version');
        if (serverVersion === undefined) return { result: { last: 0, serverVersion: 0 } }; // flushed
        const last = integerReply(meta[1], 'the stored last version') ?? 0;
        const now = timeReply(replies[1]);
        const over: { type: string; excess: number }[] = [];
        types.forEach((type, i) => {
          const capacity = capacityOf(meta[2 + i]);
          if (capacity === null) this.#host.capacityDamaged(type);
          const count = integerReply(replies[2 + i], 'ZCARD') ?? 0;
          if (typeof capacity === 'number' && count > capacity) over.push({ type, excess: count - capacity });
        });
        if (over.length === 0) return { result: { last: 0, serverVersion } };
        const victims = await read(
          over.map(({ type, excess }): Command => ['ZRANGE', keys.recentKey(type), 0, excess - 1]),
        );
        const lists = over.map(({ type }, i) => ({
          type,
          fields: bytesArrayReply(victims[i], 'ZRANGE').map((b) => b.toString('utf8')),
        }));
        const fields = lists.flatMap(({ fields }) => fields);
        const [storedReply] = await read([['HMGET', keys.records, ...fields]]);
        const stored = arrayReply(storedReply, 'HMGET records');
        const commands: Command[] = [
          ['HDEL', keys.records, ...fields],
          ['ZREM', keys.index, ...fields],
        ];
        for (const { type, fields: list } of lists) commands.push(['ZREM', keys.recentKey(type), ...list]);
        const log: (string | number | Buffer)[] = [];
        const entries: Buffer[] = [];
        let version = last;
        for (const raw of stored) {
          // Indexed but not stored, or damaged: only the index entry goes.
          const bytes = bytesReply(raw, 'HMGET records');
          if (!bytes) continue;
          let tomb: Buffer;
          try {
            tomb = tombstoneOf(bytes, version + 1, now);
          } catch {
            continue;
          }
          version++;
          log.push(version, tomb);
          entries.push(tomb);
        }
        if (log.length > 0) {
          commands.push(['ZADD', keys.changes, ...log]);
          commands.push(['HSET', keys.meta, 'last', version]);
          commands.push(['PUBLISH', keys.channel, pushMessage(serverVersion, entries, version)]);
        }
        return { writes: commands, committed: () => ({ last: version > last ? version : 0, serverVersion }) };
      },
    });
    if (result.last > 0) {
      this.#expected = undefined;
      this.#host.notifier.notify(result.last, result.serverVersion);
    }
  }

  /**
   * Fills the recency index of a type that just got a capacity, from its live records, a slice at
   * a time; each slice is atomic with the records it reads.
   */
  async backfill(type: string, signal?: AbortSignal): Promise<void> {
    const { keys, runner } = this.#host;
    const prefix = fieldPrefix(type);
    const end = `(${prefix.slice(0, -1)};`; // just after every field of the type
    let min = `[${prefix}`;
    const scripted = (await this.#host.mode()) === 'script';
    for (;;) {
      let step: { count: number; last: string };
      if (scripted) {
        step = await runner.script({
          label: `capacity of ${type}`,
          script: BACKFILL_SCRIPT,
          keys: [keys.records, keys.index, keys.recentKey(type)],
          args: [min, end, BACKFILL_STEP],
          signal,
          done: (reply) => {
            const [count, last] = arrayReply(reply, 'backfill script');
            return {
              count: integerReply(count, 'backfill script') ?? 0,
              last: textReply(last, 'backfill script') ?? '',
            };
          },
        });
      } else {
        const from = min;
        step = await runner.run({
          label: `capacity of ${type}`,
          contended: true,
          signal,
          // A record written or deleted meanwhile makes this slice read again.
          watch: [keys.records, keys.index],
          reads: [['ZRANGEBYLEX', keys.index, from, end, 'LIMIT', 0, BACKFILL_STEP]],
          plan: async (replies, read) => {
            const fields = bytesArrayReply(replies[0], 'ZRANGEBYLEX index').map((b) => b.toString('utf8'));
            if (fields.length === 0) return { result: { count: 0, last: '' } };
            const [stored] = await read([['HMGET', keys.records, ...fields]]);
            const add: (string | number)[] = [];
            arrayReply(stored, 'HMGET records').forEach((raw, i) => {
              const bytes = bytesReply(raw, 'HMGET records');
              if (!bytes || bytes.length < 10 || bytes[0] !== 1) return;
              add.push(bytes.readUInt32BE(2) * 2 ** 32 + bytes.readUInt32BE(6), fields[i] as string);
            });
            const last = fields[fields.length - 1] as string;
            const result = { count: fields.length, last };
            if (add.length === 0) return { result };
            return { writes: [['ZADD', keys.recentKey(type), 'GT', ...add]], committed: () => result };
          },
        });
      }
      if (step.count < BACKFILL_STEP) return;
      min = `(${step.last}`;
    }
  }
}

/**
 * The commands that apply a batch to the records hash, the index, the recency indexes of capped
 * types and the change log. The final state of each record decides the hash and the indexes;
 * the log gets every change.
 */
function recordCommands(
  keys: KeySpace,
  bodies: readonly EntryBody[],
  deletedAts: readonly (number | undefined)[],
  entries: readonly Buffer[],
  base: number,
  capped: ReadonlySet<string>,
): Command[] {
  const final = new Map<string, number>();
  for (const [i, body] of bodies.entries()) final.set(fieldPrefix(body.type) + body.id, i);
  const live: (string | Buffer)[] = [];
  const gone: string[] = [];
  const index: (string | number)[] = [];
  const recent = new Map<string, { add: (string | number)[]; remove: string[] }>();
  for (const [field, i] of final) {
    const body = bodies[i] as EntryBody;
    let changes = recent.get(body.type);
    if (!changes && capped.has(body.type)) {
      changes = { add: [], remove: [] };
      recent.set(body.type, changes);
    }
    if (deletedAts[i] === undefined) {
      live.push(field, entries[i] as Buffer);
      index.push(0, field);
      changes?.add.push(base + 1 + i, field);
    } else {
      gone.push(field);
      changes?.remove.push(field);
    }
  }
  const commands: Command[] = [];
  if (live.length > 0) commands.push(['HSET', keys.records, ...live]);
  if (gone.length > 0) {
    commands.push(['HDEL', keys.records, ...gone]);
    commands.push(['ZREM', keys.index, ...gone]);
  }
  if (index.length > 0) commands.push(['ZADD', keys.index, ...index]);
  for (const [type, changes] of recent) {
    if (changes.add.length > 0) commands.push(['ZADD', keys.recentKey(type), ...changes.add]);
    if (changes.remove.length > 0) commands.push(['ZREM', keys.recentKey(type), ...changes.remove]);
  }
  const log: (string | number | Buffer)[] = [];
  for (const [i, entry] of entries.entries()) log.push(base + 1 + i, entry);
  commands.push(['ZADD', keys.changes, ...log]);
  return commands;
}
