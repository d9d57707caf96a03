// Commands on the backend's own connection: pipelined reads with retries, Lua scripts with their
// NOSCRIPT fall-back, and optimistic transactions without Lua (WATCH the keys, read, decide, then
// MULTI ... EXEC). A conflict (EXEC returns null) retries after a jittered exponential backoff; a
// dropped connection before EXEC retries; a dropped connection while EXEC or a script is in flight
// asks the job whether its writes landed before trying again, so that nothing is applied twice.
//
// Optimistic transactions can starve: with many writers on one counter, a writer may lose again
// and again. A writer that lost FAIR_AFTER times takes the turn (SET NX PX on a turn key that
// every contended transaction watches and reads); while the turn is someone else's, writers
// wait instead of competing, so the starved writer commits next and gives the turn back in its
// EXEC. The turn only orders writers: correctness still rests on WATCH.
import { randomBytes } from 'node:crypto';
import { delay, ReplyError, type RespConnection } from '@redis-events/resp';
import { abortError as abortErrorOf, DataBrokerError } from './errors.ts';
import { abortable, type Link, timedOut } from './link.ts';
import type { Script } from './script.ts';
import { CORRUPT_REPLY } from './script.ts';

/** A command: its name, then its arguments. */
export type Command = readonly [name: string, ...args: (string | Buffer | number)[]];

/**
 * Limits of the retry loop of the optimistic transactions (the mode without scripting).
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

/** Reads more while the keys are still watched. */
export type Read = (commands: readonly Command[]) => Promise<unknown[]>;

/** The writes of one attempt, and what they mean once committed. */
export interface WritePlan<R> {
  readonly writes: readonly Command[];
  /** The result once EXEC applied the writes. */
  readonly committed: () => R;
  /**
   * Called when the connection dropped while EXEC was in flight: reads (on a fresh connection)
   * whether the writes were applied. Without it, the job simply runs again.
   */
  readonly applied?: ((read: Read) => Promise<boolean>) | undefined;
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
    read: Read,
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
  /** Stops retrying when it fires. */
  readonly signal?: AbortSignal | undefined;
  /** Conflicts after which the job gives up with a {@link ConflictError} instead of retrying. */
  readonly conflictLimit?: number | undefined;
}

/** A job reached its `conflictLimit`: other writers changed its keys (nothing was applied). */
export class ConflictError extends Error {
  override readonly name: string = 'ConflictError';
}

/** A script call, with what to do when its connection dropped while it ran. */
export interface ScriptJob<R> {
  readonly label: string;
  readonly script: Script;
  readonly keys: readonly string[];
  readonly args: readonly (string | Buffer | number)[];
  /** The result from the script's reply. */
  readonly done: (reply: unknown) => R;
  /**
   * Called when the connection dropped while the script was in flight: the result when it ran
   * (read on a fresh connection), undefined when it did not. Without it, the script runs again.
   */
  readonly applied?: ((read: Read) => Promise<R | undefined>) | undefined;
  /** Stops retrying when it fires. */
  readonly signal?: AbortSignal | undefined;
}

/** Conflicts of one transaction before it takes the turn. */
const FAIR_AFTER = 5;
/** How long a turn lasts at most, should its holder vanish. */
const TURN_TTL_MS = 1000;

/** How a failed command should be handled. */
export type ErrorKind = 'retry' | 'moved' | 'fatal';

// ASK and TRYAGAIN: the slot is migrating; reading again once it is done gives one node's
// consistent view, where following ASK per key would mix the two nodes' halves.
const RETRY_PREFIXES = new Set(['LOADING', 'TRYAGAIN', 'ASK', 'CLUSTERDOWN', 'MASTERDOWN', 'BUSY', 'NOREPLICAS']);
const MOVED_PREFIXES = new Set(['MOVED', 'READONLY']);

/** Connection trouble retries; an error reply retries only when the server says to try again. */
export function classifyError(err: unknown): ErrorKind {
  if (err instanceof ReplyError) {
    const prefix = err.prefix ?? '';
    if (MOVED_PREFIXES.has(prefix)) return 'moved';
    return RETRY_PREFIXES.has(prefix) ? 'retry' : 'fatal';
  }
  // The backend's own errors are final: a connection error says the link already waited its bound.
  if (err instanceof DataBrokerError) return 'fatal';
  const code = (err as { code?: unknown })?.code;
  if (code === 'ERR_RESP_ARGUMENT') return 'fatal';
  return 'retry'; // connection lost, closed, refused, timed out
}

/** Whether a failed command was written and may have run (the connection dropped after it). */
function outcomeUnknown(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'ERR_RESP_CONNECTION_LOST';
}

/** Whether a command got no reply within the bound (the watchdog dropped its connection). */
function replyTimedOut(err: unknown): boolean {
  return (err as { code?: unknown })?.code === 'ERR_RESP_TIMEOUT' || timedOut(err);
}

/** The node a MOVED reply points at (`host:port`), if it is one. */
export function movedTo(err: unknown): string | undefined {
  return err instanceof ReplyError ? /^MOVED \d+ (\S+)/.exec(err.message)?.[1] : undefined;
}

/** Wraps an error reply with what was being done. */
export function redisError(what: string, err: unknown): DataBrokerError {
  if (err instanceof DataBrokerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (CORRUPT_REPLY.test(message)) {
    return new DataBrokerError('ERR_DATABROKER_CORRUPT', `${what}: ${message.replace(CORRUPT_REPLY, '')}`, {
      cause: err,
    });
  }
  const hint = /^NOPERM/.test(message)
    ? '; the ACL user lacks a command, key or channel the backend needs (see "Minimal ACL" in the README)'
    : /^WRONGTYPE/.test(message)
      ? "; another program wrote a key in the backend's key space"
      : '';
  return new DataBrokerError('ERR_DATABROKER_REDIS', `${what}: Redis answered ${message}${hint}`, { cause: err });
}

type Outcome = [Error | null, unknown];

function settled(promise: Promise<unknown>): Promise<Outcome> {
  return promise.then(
    (value): Outcome => [null, value],
    (err: unknown): Outcome => [err instanceof Error ? err : new Error(String(err)), undefined],
  );
}

/** Sends commands in one pipeline and returns their replies, throwing the first error. */
export function pipeline(connection: RespConnection<unknown>, commands: readonly Command[]): Promise<unknown[]> {
  if (commands.length === 1) return connection.send(commands[0] as Command).then((reply) => [reply]);
  return Promise.all(commands.map((command) => connection.send(command)));
}

/** The error of an aborted call: the package's own, named AbortError. */
export function abortError(what: string, signal: AbortSignal): DataBrokerError {
  return abortErrorOf(what, signal.reason);
}

/**
 * Runs commands on the backend's connection. Transactions go one at a time: WATCH belongs to the
 * connection, and two interleaved transactions would void each other's WATCH. Reads and scripts
 * may go at any time: a read never disturbs a WATCH, and a script that changes a watched key
 * only makes that EXEC retry.
 */
export class TransactionRunner {
  readonly #link: Link;
  readonly #maxAttempts: number;
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #timeoutMs: number;
  #tail: Promise<unknown> = Promise.resolve();
  #prepared: Prepared | undefined;
  /** Conflicts seen (EXEC aborted by a watched key), for tests and metrics. */
  conflicts = 0;
  /** Transactions that skipped their WATCH round trip thanks to a prepared snapshot. */
  preparedUses = 0;
  /** Key of the turn that starved writers take. */
  readonly #turnKey: string | undefined;
  readonly #token: string = randomBytes(8).toString('hex');
  /** Times a transaction waited for another writer's turn. */
  turnWaits = 0;

  constructor(link: Link, retry: RetryOptions, timeoutMs: number, turnKey?: string) {
    this.#link = link;
    this.#turnKey = turnKey;
    this.#maxAttempts = retry.maxAttempts ?? 100;
    this.#initialDelayMs = retry.initialDelayMs ?? 1;
    this.#maxDelayMs = retry.maxDelayMs ?? 50;
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

  /** Resolves once every queued job is done. */
  idle(): Promise<void> {
    return this.#tail.then(() => undefined);
  }

  /**
   * Reads, retrying connection trouble and migrations until the timeout. Error replies become
   * `ERR_DATABROKER_REDIS`, connection trouble `ERR_DATABROKER_CONNECTION`.
   */
  async read(what: string, commands: readonly Command[], signal?: AbortSignal): Promise<unknown[]> {
    const link = this.#link;
    // The common case first: a ready connection, no waiting for one.
    const ready = link.current;
    if (ready && !signal?.aborted) {
      try {
        const replies = link.track(pipeline(ready, commands));
        return await (signal ? abortable(replies, signal) : replies);
      } catch (err) {
        if (signal?.aborted) throw abortError(what, signal);
        const kind = classifyError(err);
        if (kind === 'fatal') throw redisError(what, err);
        if (kind === 'moved') link.invalidate(movedTo(err));
      }
    }
    const deadline = performance.now() + this.#timeoutMs;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(what, signal);
      try {
        const connection = await link.ready(deadline, signal);
        const replies = link.track(pipeline(connection, commands));
        return await (signal ? abortable(replies, signal) : replies);
      } catch (err) {
        if (signal?.aborted) throw abortError(what, signal);
        const kind = classifyError(err);
        if (kind === 'fatal') throw redisError(what, err);
        if (kind === 'moved') link.invalidate(movedTo(err));
        if (performance.now() >= deadline) throw this.#unavailable(what, err);
        await delay(this.#backoff(attempt), { signal });
      }
    }
  }

  #unavailable(what: string, err: unknown): DataBrokerError {
    if (err instanceof DataBrokerError) {
      return err.message.startsWith(what)
        ? err
        : new DataBrokerError(err.code, `${what}: ${err.message}`, { cause: err.cause });
    }
    const where = this.#link.address ? ` at ${this.#link.address}` : '';
    return new DataBrokerError(
      'ERR_DATABROKER_CONNECTION',
      `${what}: Redis${where} did not answer within ${this.#timeoutMs} ms (${(err as Error).message}); check that the server is up and reachable`,
      { cause: err },
    );
  }

  /**
   * Runs a script: EVALSHA, then EVAL when the server does not have it yet. Connection trouble
   * retries, after asking the job whether a script in flight ran.
   */
  async script<R>(job: ScriptJob<R>): Promise<R> {
    const deadline = performance.now() + this.#timeoutMs;
    const { script, keys, args, signal } = job;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw abortError(job.label, signal);
      let reply: unknown;
      try {
        const connection = this.#link.current ?? (await this.#link.ready(deadline, signal));
        const sent = this.#link.track(
          connection.send(['EVALSHA', script.sha, keys.length, ...keys, ...args]).catch((err: unknown) => {
            if (!(err instanceof ReplyError && err.prefix === 'NOSCRIPT')) throw err;
            return connection.send(['EVAL', script.body, keys.length, ...keys, ...args]);
          }),
        );
        reply = await (signal ? abortable(sent, signal) : sent);
      } catch (err) {
        if (signal?.aborted && !outcomeUnknown(err)) throw abortError(job.label, signal);
        const kind = classifyError(err);
        if (kind === 'fatal') throw redisError(job.label, err);
        if (kind === 'moved') this.#link.invalidate(movedTo(err));
        if (replyTimedOut(err)) {
          // The server may still run it (it was written): asking now would prove nothing.
          throw new DataBrokerError(
            'ERR_DATABROKER_COMMIT_UNKNOWN',
            `${job.label}: Redis did not answer within ${this.#timeoutMs} ms; the commit may still be applied by the server, so it was not retried; read the records to find out`,
            { cause: err },
          );
        }
        if (outcomeUnknown(err) && job.applied) {
          let result: R | undefined;
          try {
            result = await job.applied((commands) => this.read(`${job.label} (was it applied?)`, commands));
          } catch (cause) {
            throw new DataBrokerError(
              'ERR_DATABROKER_COMMIT_UNKNOWN',
              `${job.label}: the connection dropped while the script was running, and Redis could not be asked afterwards whether it ran; read the records to find out`,
              { cause },
            );
          }
          if (result !== undefined) return result;
        }
        if (signal?.aborted) throw abortError(job.label, signal);
        if (performance.now() >= deadline) throw this.#unavailable(job.label, err);
        await delay(this.#backoff(attempt), { signal });
        continue;
      }
      return job.done(reply);
    }
  }

  #backoff(attempt: number): number {
    const cap = Math.min(this.#maxDelayMs, this.#initialDelayMs * 2 ** Math.min(attempt - 1, 30));
    return Math.random() * cap;
  }

  async #execute<R>(job: TransactionJob<R>): Promise<R> {
    const { signal } = job;
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
    const deadline = () => performance.now() + this.#timeoutMs;
    let lastTrouble: unknown;
    let lastWasConflict = false;
    let conflicts = 0;
    let waitedSince: number | undefined;
    let prepared = this.#prepared;
    this.#prepared = undefined;
    let pause = 0; // before the next attempt, in ms
    let troubleSince: number | undefined;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (pause > 0) await delay(pause, { signal });
      if (signal?.aborted) throw abortError(job.label, signal);
      pause = attempt > 1 ? this.#backoff(attempt) : 0;
      let connection: RespConnection<unknown>;
      try {
        connection = await this.#link.ready(
          troubleSince === undefined ? deadline() : troubleSince + this.#timeoutMs,
          signal,
        );
      } catch (err) {
        if (signal?.aborted) throw abortError(job.label, signal);
        throw this.#unavailable(job.label, err);
      }
      const epoch = this.#link.epoch;
      const snapshot = prepared?.epoch === epoch ? prepared : undefined;
      prepared = undefined;
      const read: Read = (commands) => this.#link.track(pipeline(connection, commands));
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
          const fresh = (await read([['UNWATCH'], ['WATCH', ...watch], ...reads])).slice(2);
          replies = turnKey ? fresh.slice(0, -1) : fresh;
          turn = turnKey ? fresh[fresh.length - 1] : undefined;
        }
        if (turnKey && (turn === null || turn === undefined) && conflicts >= FAIR_AFTER) {
          // Starving and the turn is free: take it rather than compete again, then read anew.
          const [taken] = await read([['SET', turnKey, this.#token, 'NX', 'PX', TURN_TTL_MS]]);
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
            connection.send(['UNWATCH']).catch(() => {});
            pause = 2 + Math.random() * 2; // the holder commits within a round trip or two
            continue;
          }
        }
        plan = await job.plan(replies, read, ageMs);
        troubleSince = undefined;
      } catch (err) {
        if (err instanceof DataBrokerError && err.code !== 'ERR_DATABROKER_CONNECTION') throw err;
        const kind = classifyError(err);
        if (kind === 'fatal') {
          connection.send(['UNWATCH']).catch(() => {});
          throw redisError(job.label, err);
        }
        if (kind === 'moved') this.#link.invalidate(movedTo(err));
        lastTrouble = err;
        lastWasConflict = false;
        troubleSince ??= performance.now();
        if (performance.now() - troubleSince >= this.#timeoutMs) throw this.#unavailable(job.label, err);
        continue;
      }
      if ('result' in plan) {
        connection.send(['UNWATCH']).catch(() => {});
        return plan.result;
      }
      // The WATCH lives on this connection only: if it dropped since, writing would be blind.
      if (this.#link.epoch !== epoch || connection.status !== 'ready') continue;
      if (signal?.aborted) {
        connection.send(['UNWATCH']).catch(() => {});
        throw abortError(job.label, signal);
      }
      const sent: Promise<Outcome>[] = [settled(connection.send(['MULTI']))];
      for (const command of plan.writes) sent.push(settled(connection.send(command)));
      // The turn is watched and was read as ours: giving it back in the EXEC is safe.
      if (holdsTurn && turnKey) sent.push(settled(connection.send(['DEL', turnKey])));
      const execAt = sent.length;
      sent.push(settled(connection.send(['EXEC'])));
      if (prepare) {
        sent.push(settled(connection.send(['WATCH', ...prepare.watch])));
        for (const command of prepare.reads) sent.push(settled(connection.send(command)));
      }
      const replies = await this.#link.track(Promise.all(sent));
      const [execError, execReply] = replies[execAt] as Outcome;
      const next = prepare ? this.#snapshot(prepare, replies.slice(execAt + 1), epoch) : undefined;
      if (execError) {
        // EXECABORT: a queued command was refused and nothing was applied; its error tells why.
        const refused =
          execError instanceof ReplyError && execError.prefix === 'EXECABORT'
            ? (replies.slice(1, execAt).find(([err]) => err)?.[0] ?? execError)
            : execError;
        const kind = classifyError(refused);
        if (kind === 'fatal') throw redisError(job.label, refused);
        if (kind === 'moved') this.#link.invalidate(movedTo(refused));
        lastTrouble = refused;
        lastWasConflict = false;
        if (replyTimedOut(refused)) {
          // The server may still run this EXEC later, so asking it now could not prove the
          // writes will never land. Say so, do not retry.
          throw new DataBrokerError(
            'ERR_DATABROKER_COMMIT_UNKNOWN',
            `${job.label}: Redis did not answer the commit within ${this.#timeoutMs} ms; it may still be applied by the server, so it was not retried; read the records to find out`,
            { cause: refused },
          );
        }
        if (outcomeUnknown(refused) && plan.applied) {
          // The connection dropped with EXEC in flight: the writes may or may not have landed.
          if (await this.#wasApplied(job, plan)) return plan.committed();
        }
        troubleSince ??= performance.now();
        if (performance.now() - troubleSince >= this.#timeoutMs) throw this.#unavailable(job.label, refused);
        continue;
      }
      if (execReply === null || execReply === undefined) {
        this.conflicts++;
        lastWasConflict = true;
        if (job.conflictLimit !== undefined && conflicts + 1 >= job.conflictLimit) {
          this.#prepared = next;
          throw new ConflictError(`${job.label}: another writer committed first`);
        }
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
    if (!lastWasConflict && lastTrouble !== undefined) throw this.#unavailable(job.label, lastTrouble);
    throw new DataBrokerError(
      'ERR_DATABROKER_RETRIES_EXHAUSTED',
      `${job.label}: transaction reached maximum number of retries (${this.#maxAttempts}): other writers kept changing the same keys; raise retry.maxAttempts, write less concurrently, or allow scripting in the ACL`,
    );
  }

  /** The prepared snapshot from the replies after EXEC, when every one of them came back. */
  #snapshot(
    prepare: NonNullable<TransactionJob<unknown>['prepare']>,
    replies: Outcome[],
    epoch: number,
  ): Prepared | undefined {
    if (replies.length !== prepare.reads.length + 1) return undefined;
    if (replies.some(([err]) => err) || this.#link.epoch !== epoch) return undefined;
    return { key: prepare.key, epoch, replies: replies.slice(1).map(([, reply]) => reply), at: performance.now() };
  }

  async #wasApplied<R>(job: TransactionJob<R>, plan: WritePlan<R>): Promise<boolean> {
    try {
      return await (plan.applied as NonNullable<WritePlan<R>['applied']>)((commands) =>
        this.read(`${job.label} (was it applied?)`, commands),
      );
    } catch (err) {
      throw new DataBrokerError(
        'ERR_DATABROKER_COMMIT_UNKNOWN',
        `${job.label}: the connection dropped while the transaction was committing, and Redis could not be asked afterwards whether it was applied; read the records to find out`,
        { cause: err },
      );
    }
  }
}
