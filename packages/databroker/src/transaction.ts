// Optimistic transactions without Lua: WATCH the keys, read, decide, then MULTI ... EXEC. A
// conflict (EXEC returns null) retries after a jittered exponential backoff; a dropped
// connection before EXEC retries; a dropped connection while EXEC is in flight asks the job
// whether its writes landed before trying again, so that nothing is applied twice.
//
// Optimistic transactions can starve: with many writers on one counter, a writer may lose again
// and again. A writer that lost FAIR_AFTER times takes the turn (SET NX PX on a turn key that
// every contended transaction watches and reads); while the turn is someone else's, writers
// wait instead of competing, so the starved writer commits next and gives the turn back in its
// EXEC. The turn only orders writers: correctness still rests on WATCH.
import { randomBytes } from 'node:crypto';
import { delay, exponentialBackoff, type ReconnectStrategy } from '@redis-events/resp';
import { isTransientError, type LuaScript, runScript } from '@redis-events/resp/ioredis';
import type { Redis } from 'ioredis';
import type { DedicatedConnection } from './connection.ts';
import { DataBrokerError } from './errors.ts';

/** A command: its name, then its arguments. */
export type Command = readonly [name: string, ...args: (string | Buffer | number)[]];

/**
 * Limits of the retry loop of the optimistic transactions.
 *
 * @example
 * ```ts
 * const broker = new DataBroker(redis, { retry: { maxAttempts: 500, maxDelayMs: 20 } });
 * ```
 */
export interface RetryOptions {
  /** Attempts before `ERR_DATABROKER_RETRIES_EXHAUSTED`. Default 100. */
  readonly maxAttempts?: number | undefined;
  /** Upper bound of the first backoff, in ms. Default 1. */
  readonly initialDelayMs?: number | undefined;
  /** Largest backoff, in ms. Default 50. */
  readonly maxDelayMs?: number | undefined;
}

/** The writes of one attempt, and what they mean once committed. */
export interface WritePlan<R> {
  readonly writes: readonly Command[];
  /** The result once EXEC applied the writes. */
  readonly committed: () => R;
  /**
   * Called when the connection dropped while EXEC was in flight: reads (on a fresh connection)
   * whether the writes were applied. Without it, the job simply runs again.
   */
  readonly applied?: ((read: (commands: readonly Command[]) => Promise<unknown[]>) => Promise<boolean>) | undefined;
}

/**
 * A WATCH and reads sent right after a commit, in the same round trip, for the next transaction:
 * if nobody writes in between, that one skips its own WATCH round trip. The WATCH makes it safe:
 * a change after these reads aborts the next EXEC like any other conflict.
 */
export interface Prepared {
  /** What was read, so that a job can tell whether the reads cover its own. */
  readonly key: string;
  readonly epoch: number;
  /** Replies of the reads (the WATCH reply left out). */
  readonly replies: unknown[];
  /** `performance.now()` when they arrived. */
  readonly at: number;
}

/** A transaction: keys to watch, reads, and a plan made from what was read. */
export interface TransactionJob<R> {
  /** What the job does, for error messages ("put of 3 records"). */
  readonly label: string;
  readonly watch: readonly string[];
  readonly reads: readonly Command[];
  /**
   * Decides from the replies of `reads`: writes to commit, or a result without writing. `read`
   * issues more reads on the same connection while the keys are still watched; `ageMs` is how
   * long ago the replies were read (they may come from a prepared snapshot).
   */
  plan(
    replies: unknown[],
    read: (commands: readonly Command[]) => Promise<unknown[]>,
    ageMs: number,
  ): Promise<WritePlan<R> | { readonly result: R }> | WritePlan<R> | { readonly result: R };
  /** The replies of `reads` taken from a prepared snapshot, when it covers them. */
  readonly fromPrepared?: ((prepared: Prepared) => unknown[] | undefined) | undefined;
  /** What to WATCH and read with this job's EXEC, for the next job. */
  readonly prepare?:
    | { readonly key: string; readonly watch: readonly string[]; readonly reads: readonly Command[] }
    | undefined;
  /** Whether the job competes with other writers on a hot key, and so takes part in turns. */
  readonly contended?: boolean | undefined;
}

/** Conflicts of one transaction before it takes the turn. */
const FAIR_AFTER = 5;
/** How long a turn lasts at most, should its holder vanish. */
const TURN_TTL_MS = 1000;

/** A Lua script run on the transaction connection: atomic, so it never conflicts. */
export interface ScriptJob<R> {
  readonly label: string;
  readonly script: LuaScript;
  readonly keys: readonly string[];
  readonly args: readonly (string | Buffer | number)[];
  /** The result from the script's reply. */
  readonly done: (reply: unknown) => R;
  /**
   * Called when the connection dropped while the script was in flight: the result when it ran
   * (read on a fresh connection), undefined when it did not.
   */
  readonly applied: (read: (commands: readonly Command[]) => Promise<unknown[]>) => Promise<R | undefined>;
}

/** How a failed command should be handled. */
export type ErrorKind = 'retry' | 'moved' | 'fatal';

const MOVED_REPLIES = /^(MOVED|READONLY)\b/;

/**
 * Connection trouble retries; an error reply retries only when the server says to try again
 * (resp's transient replies: LOADING, TRYAGAIN, ASK... for ASK and TRYAGAIN the slot is migrating,
 * and reading again once it is done gives one node's consistent view, where following ASK per key
 * would mix the two nodes' halves).
 */
export function classifyError(err: unknown): ErrorKind {
  if (!(err instanceof Error)) return 'fatal';
  if (err instanceof DataBrokerError) return err.code === 'ERR_DATABROKER_CONNECTION' ? 'retry' : 'fatal';
  if (err.name !== 'ReplyError') return 'retry'; // socket errors, "Connection is closed.", MaxRetriesPerRequestError
  if (MOVED_REPLIES.test(err.message)) return 'moved';
  return isTransientError(err) ? 'retry' : 'fatal';
}

/** The node a MOVED reply points at (`host:port`), if it is one. */
export function movedTo(err: unknown): string | undefined {
  return err instanceof Error ? /^MOVED \d+ (\S+)/.exec(err.message)?.[1] : undefined;
}

/** Wraps an error reply with what was being done. */
export function redisError(what: string, err: unknown): DataBrokerError {
  if (err instanceof DataBrokerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const hint = /^NOPERM/.test(message)
    ? '; the ACL user lacks a command, key or channel the backend needs (see "Minimal ACL" in the README)'
    : /^WRONGTYPE/.test(message)
      ? "; another program wrote a key in the backend's key space"
      : '';
  return new DataBrokerError('ERR_DATABROKER_REDIS', `${what}: Redis answered ${message}${hint}`, { cause: err });
}

const RETRYING = new Error('retrying');

type PipelineReplies = [Error | null, unknown][];

/** Sends commands in one pipeline and returns their replies, throwing the first error. */
async function pipelineRead(connection: Redis, commands: readonly Command[]): Promise<unknown[]> {
  const pipeline = connection.pipeline();
  for (const [name, ...args] of commands) pipeline.callBuffer(name, ...args);
  const replies = ((await pipeline.exec()) ?? []) as PipelineReplies;
  return replies.map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}

/**
 * Runs transaction jobs one at a time on a dedicated connection. One at a time because WATCH
 * belongs to the connection: two interleaved transactions would void each other's WATCH.
 */
export class TransactionRunner {
  readonly #connection: DedicatedConnection;
  readonly #maxAttempts: number;
  /** Full-jitter exponential backoff: attempt n waits up to min(maxDelayMs, initialDelayMs * 2^(n-1)). */
  readonly #delays: ReconnectStrategy;
  readonly #timeoutMs: number;
  #tail: Promise<unknown> = Promise.resolve();
  #prepared: Prepared | undefined;
  /** Conflicts seen (EXEC aborted by a watched key), for tests and metrics. */
  conflicts = 0;
  /** Transactions that skipped their WATCH round trip thanks to a prepared snapshot. */
  preparedUses = 0;

  /** Key of the turn that starved writers take; none for a runner that only reads. */
  readonly #turnKey: string | undefined;
  readonly #token: string = randomBytes(8).toString('hex');
  /** Times a transaction waited for another writer's turn. */
  turnWaits = 0;

  constructor(connection: DedicatedConnection, retry: RetryOptions, timeoutMs: number, turnKey?: string) {
    this.#connection = connection;
    this.#turnKey = turnKey;
    this.#maxAttempts = retry.maxAttempts ?? 100;
    const maxDelay = retry.maxDelayMs ?? 50;
    this.#delays = exponentialBackoff({
      initialDelay: Math.min(retry.initialDelayMs ?? 1, maxDelay),
      maxDelay,
      jitter: 1,
    });
    this.#timeoutMs = timeoutMs;
  }

  /** Queues a job behind the running ones. */
  run<R>(job: TransactionJob<R>): Promise<R> {
    return this.exclusive((execute) => execute(job));
  }

  /**
   * Queues work that runs transactions of its own, one after another, with nothing in between:
   * `execute` runs a job at once (calling `run` from inside would wait for itself).
   */
  exclusive<R>(work: (execute: <J>(job: TransactionJob<J>) => Promise<J>) => Promise<R>): Promise<R> {
    const result = this.#tail.then(() => work((job) => this.#execute(job)));
    this.#tail = result.catch(() => {});
    return result;
  }

  /**
   * Runs a script now (call it from inside `exclusive` to keep the order of jobs): EVALSHA, then
   * EVAL when the server does not have it yet. Connection trouble retries, after asking the job
   * whether a script in flight ran.
   */
  async script<R>(job: ScriptJob<R>): Promise<R> {
    let lastTrouble: unknown;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) await delay(this.#backoff(attempt - 1));
      const connection = await this.#connection.ready();
      let reply: unknown;
      try {
        reply = await runScript(connection, job.script, job.keys, job.args, { buffers: true });
      } catch (err) {
        const kind = classifyError(err);
        if (kind === 'fatal') throw redisError(job.label, err);
        if (kind === 'moved') this.#connection.invalidate(movedTo(err));
        lastTrouble = err;
        if ((err as Error).name !== 'ReplyError') {
          let result: R | undefined;
          try {
            result = await job.applied((commands) => this.read(commands));
          } catch (cause) {
            throw new DataBrokerError(
              'ERR_DATABROKER_COMMIT_UNKNOWN',
              `${job.label}: the connection dropped while the script was running, and Redis could not be asked afterwards whether it ran; read the records to find out`,
              { cause },
            );
          }
          if (result !== undefined) return result;
        }
        continue;
      }
      return job.done(reply);
    }
    throw new DataBrokerError(
      'ERR_DATABROKER_CONNECTION',
      `${job.label}: Redis kept failing for ${this.#maxAttempts} attempts (${lastTrouble instanceof Error ? lastTrouble.message : String(lastTrouble)})`,
      { cause: lastTrouble },
    );
  }

  /** Runs reads on the transaction connection (no WATCH), retrying connection trouble. */
  async read(commands: readonly Command[]): Promise<unknown[]> {
    const deadline = Date.now() + this.#timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await pipelineRead(await this.#connection.ready(), commands);
      } catch (err) {
        const kind = classifyError(err);
        if (kind === 'fatal' || Date.now() > deadline) throw err;
        if (kind === 'moved') this.#connection.invalidate(movedTo(err));
        await delay(this.#backoff(attempt));
      }
    }
  }

  #backoff(attempt: number): number {
    return this.#delays(attempt, RETRYING) || 0;
  }

  async #execute<R>(job: TransactionJob<R>): Promise<R> {
    const turnKey = job.contended ? this.#turnKey : undefined;
    // A contended job also watches and reads the turn, after its own reads.
    const watch = turnKey ? [...job.watch, turnKey] : job.watch;
    const reads: readonly Command[] = turnKey ? [...job.reads, ['GET', turnKey]] : job.reads;
    const prepare =
      job.prepare && turnKey
        ? {
            ...job.prepare,
            watch: [...job.prepare.watch, turnKey],
            reads: [...job.prepare.reads, ['GET', turnKey] as Command],
          }
        : job.prepare;
    let lastTrouble: unknown;
    let lastWasConflict = false;
    let conflicts = 0;
    let waitedSince: number | undefined;
    let prepared = this.#prepared;
    this.#prepared = undefined;
    let pause = 0; // before the next attempt, in ms
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (pause > 0) await delay(pause);
      pause = attempt > 1 ? this.#backoff(attempt) : 0;
      const connection = await this.#connection.ready();
      const epoch = this.#connection.epoch;
      const snapshot = prepared?.epoch === epoch ? prepared : undefined;
      prepared = undefined;
      let plan: WritePlan<R> | { readonly result: R };
      let holdsTurn = false;
      try {
        let replies: unknown[] | undefined;
        let turn: unknown;
        let ageMs = 0;
        if (snapshot) {
          const own = turnKey ? { ...snapshot, replies: snapshot.replies.slice(0, -1) } : snapshot;
          replies = job.fromPrepared?.(own);
          turn = turnKey ? snapshot.replies[snapshot.replies.length - 1] : undefined;
        }
        if (replies && snapshot) {
          ageMs = performance.now() - snapshot.at;
          this.preparedUses++;
        } else {
          // UNWATCH first: a snapshot this job cannot use may have left a WATCH on other keys.
          const fresh = (await pipelineRead(connection, [['UNWATCH'], ['WATCH', ...watch], ...reads])).slice(2);
          replies = turnKey ? fresh.slice(0, -1) : fresh;
          turn = turnKey ? fresh[fresh.length - 1] : undefined;
        }
        if (turnKey && (turn === null || turn === undefined) && conflicts >= FAIR_AFTER) {
          // Starving and the turn is free: take it rather than compete again, then read anew.
          const [taken] = await pipelineRead(connection, [['SET', turnKey, this.#token, 'NX', 'PX', TURN_TTL_MS]]);
          attempt--;
          pause = taken === null || taken === undefined ? 2 + Math.random() * 2 : 0;
          continue;
        }
        if (turn !== null && turn !== undefined) {
          const holder = Buffer.isBuffer(turn) ? turn.toString() : String(turn);
          holdsTurn = holder === this.#token;
          if (!holdsTurn) {
            // Another writer starved and holds the turn: let it commit first.
            waitedSince ??= Date.now();
            if (Date.now() - waitedSince > this.#timeoutMs) {
              throw new DataBrokerError(
                'ERR_DATABROKER_RETRIES_EXHAUSTED',
                `${job.label}: transaction reached maximum number of retries: other writers held the turn for ${this.#timeoutMs} ms`,
              );
            }
            this.turnWaits++;
            attempt--; // waiting is not losing
            connection.call('UNWATCH').catch(() => {});
            pause = 2 + Math.random() * 2; // the holder commits within a round trip or two
            continue;
          }
        }
        plan = await job.plan(replies, (commands) => pipelineRead(connection, commands), ageMs);
      } catch (err) {
        if (err instanceof DataBrokerError && err.code === 'ERR_DATABROKER_RETRIES_EXHAUSTED') throw err;
        const kind = classifyError(err);
        if (kind === 'fatal') {
          connection.call('UNWATCH').catch(() => {});
          throw redisError(job.label, err);
        }
        if (kind === 'moved') this.#connection.invalidate(movedTo(err));
        lastTrouble = err;
        lastWasConflict = false;
        continue;
      }
      if ('result' in plan) {
        connection.call('UNWATCH').catch(() => {});
        return plan.result;
      }
      // The WATCH lives on this connection only: if it dropped since, writing would be blind.
      if (this.#connection.epoch !== epoch || connection.status !== 'ready') continue;
      const pipeline = connection.pipeline();
      pipeline.callBuffer('MULTI');
      for (const [name, ...args] of plan.writes) pipeline.callBuffer(name, ...args);
      // The turn is watched and was read as ours: giving it back in the EXEC is safe.
      if (holdsTurn && turnKey) pipeline.callBuffer('DEL', turnKey);
      pipeline.callBuffer('EXEC');
      const execAt = plan.writes.length + (holdsTurn && turnKey ? 2 : 1);
      if (prepare) {
        pipeline.callBuffer('WATCH', ...prepare.watch);
        for (const [name, ...args] of prepare.reads) pipeline.callBuffer(name, ...args);
      }
      const replies = ((await pipeline.exec()) ?? []) as PipelineReplies;
      const [execError, execReply] = replies[execAt] ?? [new Error('no reply to EXEC'), undefined];
      const next = prepare ? this.#snapshot(prepare, replies.slice(execAt + 1), epoch) : undefined;
      if (execError) {
        // EXECABORT: a queued command was refused and nothing was applied; its error tells why.
        const refused = /^EXECABORT/.test(execError.message)
          ? (replies.slice(1, execAt).find(([err]) => err)?.[0] ?? execError)
          : execError;
        const kind = classifyError(refused);
        if (kind === 'fatal') throw redisError(job.label, refused);
        if (kind === 'moved') this.#connection.invalidate(movedTo(refused));
        lastTrouble = refused;
        lastWasConflict = false;
        if (refused.name !== 'ReplyError') {
          if (/timed out/i.test(refused.message)) {
            // The client's commandTimeout: the server may still run this EXEC later, so asking
            // it now could not prove the writes will never land. Say so, do not retry.
            this.#connection.invalidate();
            throw new DataBrokerError(
              'ERR_DATABROKER_COMMIT_UNKNOWN',
              `${job.label}: the commit timed out (the client's commandTimeout); it may still be applied by the server, so it was not retried; read the records to find out`,
              { cause: refused },
            );
          }
          // The connection dropped with EXEC in flight: the writes may or may not have landed.
          if (!plan.applied) continue;
          if (await this.#wasApplied(job, plan)) return plan.committed();
        }
        continue;
      }
      if (execReply === null || execReply === undefined) {
        this.conflicts++;
        lastWasConflict = true;
        prepared = next; // read after the conflicting write: the next attempt starts from it
        if (turnKey && ++conflicts >= FAIR_AFTER && !holdsTurn) prepared = undefined; // take the turn next
        continue; // a watched key changed: EXEC applied nothing
      }
      const failed = Array.isArray(execReply) ? execReply.find((r) => r instanceof Error) : undefined;
      if (failed) {
        throw redisError(`${job.label} (applied in part: Redis refused one of its writes)`, failed);
      }
      this.#prepared = next;
      return plan.committed();
    }
    if (!lastWasConflict && lastTrouble !== undefined) {
      throw new DataBrokerError(
        'ERR_DATABROKER_CONNECTION',
        `${job.label}: Redis kept failing for ${this.#maxAttempts} attempts (${lastTrouble instanceof Error ? lastTrouble.message : String(lastTrouble)})`,
        { cause: lastTrouble },
      );
    }
    throw new DataBrokerError(
      'ERR_DATABROKER_RETRIES_EXHAUSTED',
      `${job.label}: transaction reached maximum number of retries (${this.#maxAttempts}): other writers kept changing the same keys; raise retry.maxAttempts or write less concurrently`,
    );
  }

  /** The prepared snapshot from the replies after EXEC, when every one of them came back. */
  #snapshot(
    prepare: NonNullable<TransactionJob<unknown>['prepare']>,
    replies: PipelineReplies,
    epoch: number,
  ): Prepared | undefined {
    if (replies.length !== prepare.reads.length + 1) return undefined;
    if (replies.some(([err]) => err) || this.#connection.epoch !== epoch) return undefined;
    return { key: prepare.key, epoch, replies: replies.slice(1).map(([, reply]) => reply), at: performance.now() };
  }

  async #wasApplied<R>(job: TransactionJob<R>, plan: WritePlan<R>): Promise<boolean> {
    try {
      return await (plan.applied as NonNullable<WritePlan<R>['applied']>)((commands) => this.read(commands));
    } catch (err) {
      throw new DataBrokerError(
        'ERR_DATABROKER_COMMIT_UNKNOWN',
        `${job.label}: the connection dropped while the transaction was committing, and Redis could not be asked afterwards whether it was applied; read the records to find out`,
        { cause: err },
      );
    }
  }
}
