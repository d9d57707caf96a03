import { RespError } from './errors.ts';

/** What a connection URL says. */
export interface ParsedRedisUrl {
  /** TCP host (IPv6 without brackets); absent for a unix socket. */
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  /** Unix socket path. */
  readonly path?: string | undefined;
  /** `rediss://`: TLS with the platform's CAs unless `tls` options say otherwise. */
  readonly tls: boolean;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly db?: number | undefined;
  readonly protocol?: 2 | 3 | undefined;
  readonly name?: string | undefined;
}

const PARAMS = ['db', 'username', 'password', 'protocol', 'name'] as const;

function bad(url: string, why: string): RespError {
  // The URL may hold a password: never repeat it.
  const shown = url.replace(/\/\/[^@/]*@/, '//***@').replace(/password=[^&]*/g, 'password=***');
  return new RespError(
    'ERR_RESP_ARGUMENT',
    `${why} in "${shown}"; write redis://[user:password@]host[:port][/db], rediss://... for TLS, or unix:///path/to.sock[?db=N&password=...]`,
  );
}

function database(url: string, text: string): number {
  if (!/^\d+$/.test(text)) throw bad(url, `database "${text}" is not a number`);
  return Number(text);
}

/**
 * Parses `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS) and
 * `unix:///path/to/redis.sock` URLs. Every form also takes the query parameters `db`,
 * `username`, `password`, `protocol` (2 or 3) and `name` (CLIENT SETNAME); user and password are
 * percent-decoded.
 *
 * @example
 * ```ts
 * parseRedisUrl('redis://app:s3cret@cache.internal:6380/2');
 * // { host: 'cache.internal', port: 6380, tls: false, username: 'app', password: 's3cret', db: 2 }
 * parseRedisUrl('unix:///run/redis.sock?db=1'); // { path: '/run/redis.sock', tls: false, db: 1 }
 * ```
 * @throws {RespError} `ERR_RESP_ARGUMENT` for anything else, without repeating a password.
 */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad(url, 'not a URL');
  }
  const out: {
    -readonly [K in keyof ParsedRedisUrl]: ParsedRedisUrl[K];
  } = { tls: parsed.protocol === 'rediss:' };
  const decode = (text: string, what: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      throw bad(url, `${what} is not valid percent-encoding`);
    }
  };
  if (parsed.username) out.username = decode(parsed.username, 'the user name');
  if (parsed.password) out.password = decode(parsed.password, 'the password');
  switch (parsed.protocol) {
    case 'redis:':
    case 'rediss:': {
      const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
      if (!host) throw bad(url, 'no host');
      out.host = host;
      out.port = parsed.port ? Number(parsed.port) : 6379;
      const path = parsed.pathname.replace(/^\//, '');
      if (path) out.db = database(url, path);
      break;
    }
    case 'unix:': {
      if (parsed.hostname && parsed.hostname !== 'localhost') throw bad(url, 'a unix URL has no host');
      if (!parsed.pathname || parsed.pathname === '/') throw bad(url, 'no socket path');
      out.path = decode(parsed.pathname, 'the socket path');
      break;
    }
    default:
      throw bad(url, `unknown scheme ${parsed.protocol}//`);
  }
  for (const [key, value] of parsed.searchParams) {
    switch (key as (typeof PARAMS)[number]) {
      case 'db':
        out.db = database(url, value);
        break;
      case 'username':
        out.username = value;
        break;
      case 'password':
        out.password = value;
        break;
      case 'name':
        out.name = value;
        break;
      case 'protocol':
        if (value !== '2' && value !== '3') throw bad(url, `protocol must be 2 or 3, not "${value}"`);
        out.protocol = value === '2' ? 2 : 3;
        break;
      default:
        throw bad(url, `unknown parameter "${key}" (known: ${PARAMS.join(', ')})`);
    }
  }
  return out;
}
