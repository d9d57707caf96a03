import { Redis, type RedisOptions } from 'ioredis';
import type { OptionSpec } from './command.ts';
import { CliError, usage } from './errors.ts';

/** The `--url` option shared by commands that talk to Redis. */
export const URL_OPTION: Readonly<Record<string, OptionSpec>> = {
  url: {
    type: 'string',
    short: 'u',
    value: 'url',
    description: 'the Redis to use: redis://, rediss:// or unix:// (default REDIS_URL, else redis://127.0.0.1:6379)',
  },
};

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
 * An ioredis client for a command. It connects before returning, so an unreachable server is a
 * clear error at once. One-shot commands give up after a few attempts; `follow` clients keep
 * reconnecting (with a note on stderr) so that a tail survives a server restart.
 */
export async function connectClient(
  url: string,
  options: { follow?: boolean | undefined; onReconnect?: ((attempt: number, error: string) => void) | undefined } = {},
): Promise<Redis> {
  let lastError = '';
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 5_000,
    maxRetriesPerRequest: options.follow ? null : 2,
    retryStrategy: (times) => {
      if (!options.follow && times > 3) return null;
      options.onReconnect?.(times, lastError);
      return Math.min(100 * 2 ** times, 3_000);
    },
  } as RedisOptions as never); // ioredis types reject exact optional properties; the options are right
  client.on('error', (err: Error) => {
    lastError = err.message;
  });
  try {
    await client.connect();
  } catch (err) {
    client.disconnect();
    throw new CliError('ERR_CLI_FAILURE', `cannot connect to ${redact(url)}: ${(err as Error).message || lastError}`, {
      cause: err,
    });
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
