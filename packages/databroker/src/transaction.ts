// Optimistic transactions without Lua: WATCH the keys, read, decide, then MULTI ... EXEC. A
// conflict (EXEC returns null) retries after a jittered exponential backoff; a dropped
// connection before EXEC retries; a dropped connection while EXEC is in flight asks the job
// whether its writes landed before trying again, so that nothing is applied twice.
import type { Redis } from 'ioredis';
import type { DedicatedConnection } from './connection.ts';
import { DataBrokerError } from './errors.ts';

/** A command: its name, then its arguments. */
export type Command = readonly [name: string, ...args: (string | Buffer | number)[]];

/** Limits of the retry loop. */
export interface RetryOptions {
  /** Attempts before `ERR_DATABROKER_RETRIES_EXHAUSTED`. Default 100. */
  readonly maxAttempts?: number;
  /** Upper bound of the first backoff, in ms. Default 1. */
  readonly initialDelayMs?: number;
  /** Largest backoff, in ms. Default 250. */
  readonly maxDelayMs?: number;
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
  readonly applied?: (read: (commands: readonly Command[]) => Promise<unknown[]>) => Promise<boolean>;
}

/** A transaction: keys to watch, reads, and a plan made from what was read. */
export interface TransactionJob<R> {
  /** What the job does, for error messages ("put of 3 records"). */
  readonly label: string;
  readonly watch: readonly string[];
  readonly reads: readonly Command[];
  /**
   * Decides from the replies of `reads`: writes to commit, or a result without writing. `read`
   * issues more reads on the same connection while the keys are still watched.
   */
  plan(
    replies: unknown[],
    read: (commands: readonly Command[]) => Promise<unknown[]>,
  ): Promise<WritePlan<R> | { readonly result: R }> | WritePlan<R> | { readonly result: R };
}

/** How a failed command should be handled. */
export type ErrorKind = 'retry' | 'moved' | 'fatal';

// ASK and TRYAGAIN: the slot is migrating; reading again once it is done gives one node's
// consistent view, where following ASK per key would mix the two nodes' halves.
const RETRY_REPLIES = /^(LOADING|TRYAGAIN|ASK|CLUSTERDOWN|MASTERDOWN|BUSY|NOREPLICAS)\b/;
const MOVED_REPLIES = /^(MOVED|READONLY)\b/;

/** Connection trouble retries; an error reply retries only when the server says to try again. */
export function classifyError(err: unknown): ErrorKind {
  if (!(err instanceof Error)) return 'fatal';
  if (err instanceof DataBrokerError) return err.code === 'ERR_DATABROKER_CONNECTION' ? 'retry' : 'fatal';
  if (err.name !== 'ReplyError') return 'retry'; // socket errors, "Connection is closed.", MaxRetriesPerRequestError
  if (MOVED_REPLIES.test(err.message)) return 'moved';
  return RETRY_REPLIES.test(err.message) ? 'retry' : 'fatal';
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

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
  readonly #initialDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #timeoutMs: number;
  #tail: Promise<unknown> = Promise.resolve();
  /** Conflicts seen (EXEC aborted by a watched key), for tests and metrics. */
  conflicts = 0;

  constructor(connection: DedicatedConnection, retry: RetryOptions, timeoutMs: number) {
    this.#connection = connection;
    this.#maxAttempts = retry.maxAttempts ?? 100;
    this.#initialDelayMs = retry.initialDelayMs ?? 1;
    this.#maxDelayMs = retry.maxDelayMs ?? 250;
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
        await sleep(this.#backoff(attempt));
      }
    }
  }

  #backoff(attempt: number): number {
    const cap = Math.min(this.#maxDelayMs, this.#initialDelayMs * 2 ** Math.min(attempt - 1, 30));
    return Math.random() * cap;
  }

  async #execute<R>(job: TransactionJob<R>): Promise<R> {
    let lastTrouble: unknown;
    let lastWasConflict = false;
    for (let attempt = 1; attempt <= this.#maxAttempts; attempt++) {
      if (attempt > 1) await sleep(this.#backoff(attempt - 1));
      const connection = await this.#connection.ready();
      const epoch = this.#connection.epoch;
      let plan: WritePlan<R> | { readonly result: R };
      try {
        const replies = await pipelineRead(connection, [['WATCH', ...job.watch], ...job.reads]);
        plan = await job.plan(replies.slice(1), (commands) => pipelineRead(connection, commands));
      } catch (err) {
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
      pipeline.callBuffer('EXEC');
      const replies = ((await pipeline.exec()) ?? []) as PipelineReplies;
      const [execError, execReply] = replies[replies.length - 1] ?? [new Error('no reply to EXEC'), undefined];
      if (execError) {
        // EXECABORT: a queued command was refused and nothing was applied; its error tells why.
        const refused = /^EXECABORT/.test(execError.message)
          ? (replies.slice(1, -1).find(([err]) => err)?.[0] ?? execError)
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
        continue; // a watched key changed: EXEC applied nothing
      }
      const failed = Array.isArray(execReply) ? execReply.find((r) => r instanceof Error) : undefined;
      if (failed) {
        throw redisError(`${job.label} (applied in part: Redis refused one of its writes)`, failed);
      }
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
