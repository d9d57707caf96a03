import { type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import type { RespError } from './errors.ts';

/**
 * The name of the TracingChannel on which every command of a `RespConnection` is traced, from
 * `send()` to its reply or error. Nothing is built or published while nobody subscribes.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * tracingChannel<unknown, CommandTraceContext>(RESP_COMMAND_CHANNEL).subscribe({
 *   start: (context) => console.log('sending', context.command, 'to', context.serverAddress),
 *   end: () => {},
 *   asyncStart: () => {},
 *   asyncEnd: (context) => console.log(context.command, context.error ? context.error.code : 'ok'),
 *   error: () => {},
 * });
 * ```
 */
export const RESP_COMMAND_CHANNEL = 'redis-events:resp:command';

/**
 * The context of one command on `redis-events:resp:command`: one object from `start` to
 * `asyncEnd`, so a subscriber may keep its own state (a span) on it. Argument values are never
 * put here, only their count.
 */
export interface CommandTraceContext {
  /** The command name, upper-case (`GET`, `XREADGROUP`). */
  readonly command: string;
  /** Arguments after the name. */
  readonly argsCount: number;
  /** Host name or IP, or the Unix socket path. */
  readonly serverAddress: string;
  /** TCP port; `undefined` on a Unix socket. */
  readonly serverPort: number | undefined;
  /** The database the connection selected when it connected (`db`). */
  readonly database: number;
  /** The reply, set before `asyncStart` when the command succeeded. */
  result?: unknown;
  /** Why the command failed (a {@link ReplyError} for an error reply), set before `error`. */
  error?: RespError | undefined;
}

/**
 * Resolved once at module load: `hasSubscribers` is then a property read, so a command costs
 * nothing more while nobody listens.
 */
export const commandChannel: TracingChannel<unknown, CommandTraceContext> = tracingChannel<
  unknown,
  CommandTraceContext
>(RESP_COMMAND_CHANNEL);
