// The replica handshake up to PSYNC, one command at a time (a master refuses a PSYNC that is
// pipelined behind unanswered commands): the connection with AUTH, PING, the REPLCONFs that
// announce this replica (port, address, capabilities, version, snapshot-only), then the raw
// socket is taken over. PSYNC itself is written on the raw socket by the link, because the
// master may send newline keep-alives before its reply, which no RESP decoder accepts.

import type { Socket } from 'node:net';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { ReplyError, RespConnection, RespError } from '@redis-events/resp';
import { type LinkPhase, ReplicationError, ReplicationLinkError } from './errors.ts';

/** Where the master is and how to log in. */
export interface MasterTarget {
  readonly host: string;
  readonly port: number;
  readonly path: string | undefined;
  readonly tls: TlsConnectionOptions | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  readonly name: string | undefined;
  /** `host:port` or the socket path, for messages. */
  readonly label: string;
}

/** What the handshake announces and how long it may take. */
export interface HandshakeSettings {
  readonly target: MasterTarget;
  readonly connectTimeout: number;
  readonly announcePort: number;
  readonly announceIp: string | undefined;
  readonly announceVersion: string | undefined;
  /** `REPLCONF rdb-only 1`: the snapshot only, no command stream kept for this replica. */
  readonly rdbOnly: boolean;
}

/** The socket after the handshake, paused, with the bytes read beyond the last reply. */
export interface HandshakeResult {
  readonly socket: Socket;
  readonly head: Buffer;
}

const UNAVAILABLE = /^(LOADING|NOMASTERLINK|MASTERDOWN|BUSY|TRYAGAIN)\b/;

/** Maps an error reply of the master to a typed error: retried, or final. */
export function replyFailure(text: string, step: string, master: string, phase: LinkPhase): ReplicationLinkError {
  const said = `the master answered ${step} with "${text.slice(0, 200)}"`;
  if (UNAVAILABLE.test(text))
    return new ReplicationLinkError(
      'ERR_REPLICATION_UNAVAILABLE',
      `${said}: it cannot serve a replica now; retrying`,
      master,
      phase,
    );
  if (/^NOAUTH\b/.test(text))
    return new ReplicationLinkError(
      'ERR_REPLICATION_AUTH',
      `${said}: the master requires a password (option password, or redis://user:password@host)`,
      master,
      phase,
    );
  if (/^WRONGPASS\b/.test(text))
    return new ReplicationLinkError('ERR_REPLICATION_AUTH', `${said}: wrong user name or password`, master, phase);
  if (/^NOPERM\b/.test(text))
    return new ReplicationLinkError(
      'ERR_REPLICATION_AUTH',
      `${said}: a replica's ACL user needs +psync and +replconf (and +ping)`,
      master,
      phase,
    );
  if (/unknown command|not allowed|disabled/i.test(text))
    return new ReplicationLinkError(
      'ERR_REPLICATION_REFUSED',
      `${said}: this server does not let replicas attach (managed services often disable PSYNC)`,
      master,
      phase,
    );
  return new ReplicationLinkError('ERR_REPLICATION_UNAVAILABLE', `${said}; retrying`, master, phase);
}

/** A failure of the connection or of a handshake command, as a typed link error. */
function linkFailure(err: unknown, step: string, master: string): ReplicationError {
  if (err instanceof ReplicationError) return err;
  if (err instanceof ReplyError) return replyFailure(err.message, step, master, 'handshake');
  if (err instanceof RespError) {
    const reply = err.cause instanceof ReplyError ? err.cause : undefined;
    if (reply && err.code === 'ERR_RESP_HANDSHAKE' && !UNAVAILABLE.test(reply.message))
      return new ReplicationLinkError(
        'ERR_REPLICATION_AUTH',
        `the master refused the login: ${err.message}`,
        master,
        'handshake',
        { cause: err },
      );
    if (reply) return replyFailure(reply.message, step, master, 'handshake');
    switch (err.code) {
      case 'ERR_RESP_CONNECT':
        return new ReplicationLinkError(
          'ERR_REPLICATION_CONNECT',
          `cannot connect: ${err.message}`,
          master,
          'connect',
          { cause: err },
        );
      case 'ERR_RESP_TIMEOUT':
        return new ReplicationLinkError(
          'ERR_REPLICATION_TIMEOUT',
          `${step} got no reply in time`,
          master,
          'handshake',
          { cause: err },
        );
      default:
        return new ReplicationLinkError(
          'ERR_REPLICATION_CONNECTION_LOST',
          `the connection failed during ${step}: ${err.message}`,
          master,
          'handshake',
          { cause: err },
        );
    }
  }
  return new ReplicationLinkError(
    'ERR_REPLICATION_CONNECT',
    `the handshake failed: ${(err as Error)?.message ?? String(err)}`,
    master,
    'handshake',
    { cause: err },
  );
}

/**
 * Connects, authenticates and announces a replica, then hands over the raw socket. `stop`
 * aborts it at any step.
 *
 * @throws {ReplicationLinkError} with a code that says whether a retry can help.
 */
export async function replicaHandshake(settings: HandshakeSettings, stop: AbortSignal): Promise<HandshakeResult> {
  const { target } = settings;
  const master = target.label;
  const connection = new RespConnection({
    ...(target.path !== undefined ? { path: target.path } : { host: target.host, port: target.port }),
    tls: target.tls ?? false,
    username: target.username,
    password: target.password,
    name: target.name,
    protocol: 2, // a replica link speaks RESP2
    reconnect: false,
    queueWhileDisconnected: false,
    connectTimeout: settings.connectTimeout,
    commandTimeout: settings.connectTimeout,
  });
  const onStop = () => connection.destroy(new Error('the listener was closed'));
  stop.addEventListener('abort', onStop, { once: true });
  let step = 'the connection';
  try {
    stop.throwIfAborted();
    await connection.connect();
    step = 'PING';
    await connection.send(['PING']).catch((err: unknown) => {
      // Like Redis replicas: an ACL user without +ping may still replicate.
      if (!(err instanceof ReplyError && err.prefix === 'NOPERM')) throw err;
    });
    const optional = async (command: string[]) => {
      step = command.slice(0, 2).join(' ');
      try {
        await connection.send(command);
      } catch (err) {
        // Like Redis replicas: a master that does not know an announcement still replicates
        // (Redis refuses `REPLCONF version`); authentication and permission errors are final.
        if (!(err instanceof ReplyError) || /^(NOAUTH|NOPERM|LOADING|BUSY)\b/.test(err.message)) throw err;
      }
    };
    await optional(['REPLCONF', 'listening-port', String(settings.announcePort)]);
    if (settings.announceIp !== undefined) await optional(['REPLCONF', 'ip-address', settings.announceIp]);
    await optional(['REPLCONF', 'capa', 'eof', 'capa', 'psync2']);
    if (settings.announceVersion !== undefined) await optional(['REPLCONF', 'version', settings.announceVersion]);
    if (settings.rdbOnly) await optional(['REPLCONF', 'rdb-only', '1']);
    step = 'the takeover';
    const { socket, head } = await connection.takeOver();
    if (stop.aborted) {
      socket.destroy();
      stop.throwIfAborted();
    }
    return { socket, head };
  } catch (err) {
    connection.destroy();
    if (stop.aborted) throw stop.reason;
    throw linkFailure(err, step, master);
  } finally {
    stop.removeEventListener('abort', onStop);
  }
}
