import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { describeError, EventStoreError } from './errors.ts';

/** ioredis 6's reply mappings (its `ReplyMappingMode`, which it does not export). */
type ReplyMapping = 'legacy' | 'resp3';

/**
 * An ioredis 6 client: a `Redis` (standalone, Sentinel) or a `Cluster`, RESP2 or RESP3, either
 * reply mapping.
 *
 * @example
 * ```ts
 * const client: RedisClient = new Cluster([{ host: '127.0.0.1', port: 7000 }]);
 * ```
 */
export type RedisClient = Redis<ReplyMapping> | Cluster<ReplyMapping>;

/** The part of an ioredis client the store uses. */
export interface CommandClient {
  call(command: string, ...args: (string | number | Buffer)[]): Promise<unknown>;
}

/** True for an ioredis `Cluster`. */
export function isCluster(client: unknown): boolean {
  return (client as { isCluster?: unknown }).isCluster === true;
}

/** True when `value` looks like an ioredis client. */
export function isClient(value: unknown): value is RedisClient {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { call?: unknown }).call === 'function' &&
    typeof (value as { duplicate?: unknown }).duplicate === 'function'
  );
}

/** A Lua script: its source and SHA1. Run it through a {@link ScriptRunner}. */
export class LuaScript {
  readonly source: string;
  readonly sha: string;

  constructor(source: string) {
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/**
 * Runs a layout's scripts on one client with EVALSHA, keeping the order of calls.
 *
 * A plain "EVALSHA, on NOSCRIPT retry with EVAL" would let later calls overtake the retried one
 * (for example a clear sent after an append whose script was not loaded yet), so the runner loads
 * every script (SCRIPT LOAD, on every master of a cluster) before its first call, and calls made
 * meanwhile wait and then go out in the order they were made. If the server loses its scripts
 * later (restart without persistence, failover, SCRIPT FLUSH), the call that meets NOSCRIPT is
 * retried with EVAL and the scripts are loaded again for the calls after it.
 */
export class ScriptRunner {
  readonly #client: RedisClient;
  readonly #scripts: readonly LuaScript[];
  #loaded = false;
  #loading: Promise<void> | undefined;

  private constructor(client: RedisClient, scripts: readonly LuaScript[]) {
    this.#client = client;
    this.#scripts = scripts;
  }

  static readonly #runners = new WeakMap<object, Map<readonly LuaScript[], ScriptRunner>>();

  /** The runner of these scripts on this client, shared by every store on the client. */
  static for(client: RedisClient, scripts: readonly LuaScript[]): ScriptRunner {
    let byScripts = ScriptRunner.#runners.get(client);
    if (!byScripts) {
      byScripts = new Map();
      ScriptRunner.#runners.set(client, byScripts);
    }
    let runner = byScripts.get(scripts);
    if (!runner) {
      runner = new ScriptRunner(client, scripts);
      byScripts.set(scripts, runner);
    }
    return runner;
  }

  async #load(): Promise<void> {
    const client = this.#client;
    try {
      let nodes: CommandClient[] = [client];
      if (isCluster(client)) {
        const cluster = client as Cluster;
        if (cluster.status !== 'ready') await cluster.call('PING');
        nodes = cluster.nodes('master');
      }
      await Promise.all(nodes.flatMap((node) => this.#scripts.map((s) => node.call('SCRIPT', 'LOAD', s.source))));
    } catch {
      // No SCRIPT permission, or the server is away: calls fall back to EVAL on NOSCRIPT.
    }
  }

  #ready(): Promise<void> {
    if (this.#loading === undefined) {
      const loading = this.#load();
      // The first reaction: calls waiting on the load resume before any later call sees `loaded`.
      void loading.then(() => {
        if (this.#loading === loading) this.#loaded = true;
      });
      this.#loading = loading;
    }
    return this.#loading;
  }

  /** Runs a script with one key: the hot path of every layout (one promise, no async frames). */
  run(script: LuaScript, key: string, args: readonly (string | number)[]): Promise<unknown> {
    if (!this.#loaded) return this.#ready().then(() => this.run(script, key, args));
    // Lower-case names: ioredis looks commands up by them (key positions, flags).
    return this.#client.call('evalsha', script.sha, '1', key, ...args).then(undefined, (err: unknown) => {
      if (!isNoScript(err)) throw err;
      this.#loaded = false;
      this.#loading = undefined;
      return this.#client.call('eval', script.source, '1', key, ...args);
    });
  }
}

const TRANSIENT =
  /Connection is closed|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|Command timed out|MaxRetriesPerRequest|max retries per request|Stream isn't writeable|^LOADING|^TRYAGAIN|^CLUSTERDOWN|^MASTERDOWN|^READONLY|Failed to refresh slots cache|None of startup nodes is available|Too many Cluster redirections/;

/** True for errors that go away on their own: connection loss, a loading or failing-over server. */
export function isTransient(err: unknown): boolean {
  const inner = err instanceof EventStoreError && err.code === 'ERR_EVENT_STORE_REDIS' ? err.cause : err;
  return inner instanceof Error && TRANSIENT.test(inner.message);
}

/** Wraps a failed Redis call in an `ERR_EVENT_STORE_REDIS` error that says what to do. */
export function redisError(err: unknown, what: string, key: string): EventStoreError {
  if (err instanceof EventStoreError) return err;
  const text = describeError(err);
  let hint: string;
  if (text.startsWith('WRONGTYPE')) {
    hint = `the key ${key} holds another type of value: another application, or the other layout of this store, uses the same prefix; choose another prefix`;
  } else if (text.startsWith('OOM')) {
    hint =
      'Redis is at maxmemory with a policy that refuses writes; raise maxmemory, lower eventTtl or maxEventsPerType, or allow eviction';
  } else if (/CROSSSLOT|non local key|no longer served|accessed a key from a different slot/i.test(text)) {
    hint = `the keys of one event name are not in one hash slot: on Redis Cluster use the stream layout or timelineKeys: 'tagged'`;
  } else if (isTransient(err)) {
    hint = 'Redis is unreachable or busy; ioredis reconnects on its own (retryStrategy), so retry the call';
  } else if (/NOPERM/.test(text)) {
    hint = `the Redis user lacks a permission: give it the commands +@scripting +@read +@write +time and the keys of the store's prefix (${key} is one)`;
  } else {
    hint = 'see the cause';
  }
  return new EventStoreError('ERR_EVENT_STORE_REDIS', `${what} failed (${key}): ${text}; ${hint}`, { cause: err });
}
