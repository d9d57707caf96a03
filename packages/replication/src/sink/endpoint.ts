// Where a sync, a compare or a source fetch connects: a URL or explicit options, resolved once
// into what RespConnection and ReplicaListener take, with a label for messages (never the
// password).

import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { parseRedisUrl, type RespConnectionOptions } from '@redis-events/resp';
import { ReplicationError } from '../errors.ts';
import type { ReplicaTlsOptions } from '../replica-listener.ts';

/**
 * A Redis to connect to: a URL (`redis://[[user]:password@]host[:port]`, `rediss://` for TLS,
 * `unix:///path`) or explicit options, which override what the URL says. For a Cluster, any
 * node: the others are discovered.
 *
 * @example
 * ```ts
 * const target: RedisEndpoint = { url: 'rediss://sync:secret@redis.internal:6380', tls: { ca: readFileSync('ca.crt') } };
 * ```
 */
export interface RedisEndpoint {
  readonly url?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  /** A unix socket path. */
  readonly path?: string | undefined;
  /** ACL user; `default` when only a password is given. */
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  /** `true` (the platform's CAs), or `tls.connect` options plus `insecure: true` to accept any certificate. */
  readonly tls?: boolean | ReplicaTlsOptions | undefined;
  /** Connection name (`CLIENT SETNAME`). */
  readonly name?: string | undefined;
}

/** An endpoint with everything resolved. */
export interface ResolvedEndpoint {
  readonly host: string;
  readonly port: number;
  readonly path: string | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly tls: TlsConnectionOptions | undefined;
  /** What the caller gave for TLS, to hand on to a ReplicaListener. */
  readonly tlsOption: boolean | ReplicaTlsOptions | undefined;
  readonly name: string | undefined;
  readonly db: number | undefined;
  /** `host:port` or the socket path, for messages. */
  readonly label: string;
}

const KEYS = new Set(['url', 'host', 'port', 'path', 'username', 'password', 'tls', 'name']);

/** Resolves an endpoint; `what` names it in errors (`source`, `target`). */
export function resolveEndpoint(endpoint: RedisEndpoint | string, what: string): ResolvedEndpoint {
  const e: RedisEndpoint = typeof endpoint === 'string' ? { url: endpoint } : endpoint;
  if (typeof e !== 'object' || e === null)
    throw new ReplicationError('ERR_REPLICATION_ARGUMENT', `${what} must be a URL or connection options`);
  for (const key of Object.keys(e))
    if (!KEYS.has(key))
      throw new ReplicationError(
        'ERR_REPLICATION_ARGUMENT',
        `${what} has an unknown option "${key}"; it takes ${[...KEYS].join(', ')}`,
      );
  let fromUrl: ReturnType<typeof parseRedisUrl> | undefined;
  if (e.url !== undefined) {
    try {
      fromUrl = parseRedisUrl(e.url);
    } catch (err) {
      throw new ReplicationError('ERR_REPLICATION_ARGUMENT', `${what}: ${(err as Error).message}`, { cause: err });
    }
  }
  const path = e.path ?? (e.host === undefined && e.port === undefined ? fromUrl?.path : undefined);
  const host = e.host ?? fromUrl?.host ?? '127.0.0.1';
  const port = e.port ?? fromUrl?.port ?? 6379;
  if (path === undefined && (!Number.isInteger(port) || port < 1 || port > 65535))
    throw new ReplicationError('ERR_REPLICATION_ARGUMENT', `${what} port must be 1 to 65535, got ${String(port)}`);
  const tlsOption = e.tls ?? (fromUrl?.tls ? true : undefined);
  return {
    host,
    port,
    path,
    username: e.username ?? fromUrl?.username,
    password: e.password ?? fromUrl?.password,
    tls: tlsConnectOptions(tlsOption),
    tlsOption,
    name: e.name ?? fromUrl?.name,
    db: fromUrl?.db,
    label: path ?? `${host.includes(':') ? `[${host}]` : host}:${port}`,
  };
}

function tlsConnectOptions(tls: boolean | ReplicaTlsOptions | undefined): TlsConnectionOptions | undefined {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return {};
  const { insecure, ...rest } = tls;
  return insecure ? { ...rest, rejectUnauthorized: false, checkServerIdentity: () => undefined } : rest;
}

/** RespConnection options for an endpoint (another host and port for a cluster node). */
export function connectionOptions(
  endpoint: ResolvedEndpoint,
  extra: Partial<Pick<RespConnectionOptions<unknown>, 'connectTimeout' | 'reconnect' | 'decoder' | 'name'>> & {
    readonly host?: string | undefined;
    readonly port?: number | undefined;
  } = {},
): RespConnectionOptions<unknown> {
  const { host, port, ...rest } = extra;
  const tls =
    endpoint.tls && host !== undefined && host !== endpoint.host && endpoint.tls.servername === undefined
      ? { ...endpoint.tls }
      : endpoint.tls;
  return {
    ...(host !== undefined || endpoint.path === undefined
      ? { host: host ?? endpoint.host, port: port ?? endpoint.port }
      : { path: endpoint.path }),
    ...(endpoint.username !== undefined ? { username: endpoint.username } : {}),
    ...(endpoint.password !== undefined ? { password: endpoint.password } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(endpoint.name !== undefined ? { name: endpoint.name } : {}),
    ...rest,
  };
}
