import type { RespConnection } from '@redis-events/resp';
import type { Redis, RedisOptions } from 'ioredis';
import { intOption, type OptionSpec } from './command.ts';
import { CliError, usage } from './errors.ts';

/** The `--url` option shared by commands that talk to Redis. */
export const URL_OPTION: Readonly<Record<string, OptionSpec>> = {
  url: {
    type: 'string',
    short: 'u',
    value: 'url',
    description: 'the Redis to use: redis://, rediss:// or unix:// (default REDIS_URL, else redis://127.0.0.1:6379)',
  },
  'connect-timeout': {
    type: 'string',
    value: 'seconds',
    default: '5',
    description: 'give up when the server has not answered by then (a frozen server, a dropped network)',
  },
};

/** `--connect-timeout` in milliseconds. */
export function connectTimeoutMs(options: Readonly<Record<string, unknown>>): number {
  return intOption(options['connect-timeout'], 'connect-timeout', { min: 1, fallback: 5 }) * 1000;
}

/** The cause of a failed connection, in a few words a person can act on. */
export function connectionCause(err: unknown, timeoutMs: number): string {
  const messages: string[] = [];
  const codes: string[] = [];
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    messages.push(e.message);
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string') codes.push(code);
  }
  const all = messages.join(' ');
  if (codes.includes('ECONNREFUSED') || /ECONNREFUSED/.test(all)) return 'connection refused (nothing listens there)';
  if (codes.includes('ENOTFOUND') || codes.includes('EAI_AGAIN') || /ENOTFOUND|EAI_AGAIN/.test(all))
    return 'the host name does not resolve (DNS)';
  if (codes.includes('ENOENT') || /ENOENT/.test(all)) return 'no such socket file';
  if (codes.includes('EACCES') || /EACCES/.test(all)) return 'permission denied on the socket';
  if (codes.includes('ECONNRESET') || /ECONNRESET/.test(all)) return 'the connection was reset';
  if (/WRONGPASS|invalid password|invalid username-password/i.test(all))
    return 'wrong user name or password (WRONGPASS)';
  if (/NOAUTH/i.test(all)) return 'the server needs a password (NOAUTH): put it in the URL, redis://:password@host';
  // The outermost message that quotes the refusal: ours say what the user needs on top of it.
  if (/NOPERM/i.test(all)) return `the user lacks a permission: ${messages.find((m) => /NOPERM/i.test(m)) ?? 'NOPERM'}`;
  if (/took longer than connectTimeout|timed? ?out|ETIMEDOUT/i.test(all))
    return `no answer within ${timeoutMs / 1000} s (a frozen server, or a network that drops packets)`;
  if (/certificate|SSL|TLS|EPROTO/i.test(all)) return `TLS failed: ${messages.at(-1) ?? all}`;
  return messages[0] ?? String(err);
}

/**
 * Checks that the server answers, within `timeoutMs` for TCP, TLS and the handshake (HELLO or
 * AUTH, SELECT) together, so that every command fails the same bounded way, with one line that
 * names the address and the cause: refused, DNS, TLS, wrong password, no answer.
 */
export async function probeRedis(
  url: string,
  { timeoutMs, signal, keys = false }: { timeoutMs: number; signal: AbortSignal; keys?: boolean | undefined },
): Promise<{ keys: number | undefined }> {
  signal.throwIfAborted();
  // Loaded when needed: `redis-events --help` and `rdb` start without it.
  const { RespConnection, RespError } = await import('@redis-events/resp');
  let connection: RespConnection;
  try {
    connection = new RespConnection({ url, connectTimeout: timeoutMs, reconnect: false, name: 'redis-events-cli' });
  } catch (err) {
    throw usage(err instanceof RespError ? err.message : String(err));
  }
  const onAbort = () => connection.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    await connection.connect();
  } catch (err) {
    signal.throwIfAborted();
    throw new CliError('ERR_CLI_FAILURE', `cannot connect to ${redact(url)}: ${connectionCause(err, timeoutMs)}`, {
      cause: err,
    });
  }
  try {
    if (!keys) return { keys: undefined };
    // The number of keys, for a progress bar over a snapshot whose size the master does not say.
    const info = await connection.send(['INFO', 'keyspace'], { timeout: timeoutMs }).catch(() => undefined);
    const text = info === undefined ? '' : Buffer.isBuffer(info) ? info.toString() : String(info);
    let total = 0;
    for (const match of text.matchAll(/^db\d+:keys=(\d+)/gm)) total += Number(match[1]);
    return { keys: info === undefined ? undefined : total };
  } finally {
    signal.removeEventListener('abort', onAbort);
    connection.destroy();
  }
}

/** The Redis URL of a command: `--url`, else `REDIS_URL`, else the local default. */
export function redisUrl(options: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv): string {
  const url = typeof options.url === 'string' ? options.url : env.REDIS_URL || 'redis://127.0.0.1:6379';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw usage(`"${url}" is not a URL; write it like redis://127.0.0.1:6379`);
  }
  if (!['redis:', 'rediss:', 'unix:'].includes(parsed.protocol)) {
    throw usage(`the URL must start with redis://, rediss:// or unix://, not ${parsed.protocol}//`);
  }
  return url;
}

/**
 * An ioredis client for a command. It connects before returning, within `timeoutMs`, so an
 * unreachable server is a clear error at once that names the cause. One-shot commands give up
 * after a few attempts; `follow` clients keep reconnecting (with a note on stderr) so that a
 * long-running command survives a server restart.
 */
export async function connectClient(
  url: string,
  options: {
    follow?: boolean | undefined;
    onReconnect?: ((attempt: number, error: string) => void) | undefined;
    timeoutMs: number;
    signal: AbortSignal;
  },
): Promise<Redis> {
  const { timeoutMs } = options;
  await probeRedis(url, { timeoutMs, signal: options.signal });
  let lastError: Error | undefined;
  const { Redis } = await import('ioredis');
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: options.follow ? undefined : timeoutMs * 2,
    maxRetriesPerRequest: options.follow ? null : 2,
    retryStrategy: (times) => {
      if (!options.follow && times > 3) return null;
      options.onReconnect?.(times, lastError ? connectionCause(lastError, timeoutMs) : 'closed');
      return Math.min(100 * 2 ** times, 3_000);
    },
  } as RedisOptions as never); // ioredis types reject exact optional properties; the options are right
  client.on('error', (err: Error) => {
    lastError = err;
  });
  // ioredis rejects a failed first connection with "Connection is closed": the real cause is the
  // last error it emitted (ECONNREFUSED, WRONGPASS...), so that is what the message names.
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`took longer than connectTimeout ${timeoutMs} ms`)),
          timeoutMs + 1_000,
        );
      }),
    ]);
  } catch (err) {
    client.disconnect();
    const cause = lastError ?? (err as Error);
    throw new CliError('ERR_CLI_FAILURE', `cannot connect to ${redact(url)}: ${connectionCause(cause, timeoutMs)}`, {
      cause,
    });
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
