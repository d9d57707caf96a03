import { RedisEventsError, type RedisEventsErrorOptions } from '@redis-events/resp';

/** Exit codes of the `redis-events` command. */
export const ExitCode = {
  /** Done. */
  ok: 0,
  /** The work failed: Redis unreachable or refusing, a bad file, a protocol error. */
  failure: 1,
  /** Wrong usage: unknown command or option, a bad value. */
  usage: 2,
  /** Stopped by Ctrl-C (128 + SIGINT), after a clean shutdown. */
  interrupted: 130,
  /** Stopped by SIGTERM (128 + 15), after a clean shutdown. */
  terminated: 143,
} as const;

/**
 * The reason the binary gives its AbortSignal when a signal arrives: which signal, so that the
 * exit code is 128 + its number (130 for Ctrl-C, 143 for SIGTERM) and the summary can say it.
 *
 * @example
 * ```ts
 * controller.abort(new StopRequest('SIGTERM'));
 * ```
 */
export class StopRequest extends Error {
  override readonly name: string = 'StopRequest';
  readonly signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP';

  constructor(signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP') {
    super(`stopped by ${signal === 'SIGINT' ? 'Ctrl-C' : signal}`);
    this.signal = signal;
  }

  /** 128 + the signal's number. */
  get exitCode(): number {
    return this.signal === 'SIGTERM' ? ExitCode.terminated : this.signal === 'SIGHUP' ? 129 : ExitCode.interrupted;
  }
}

/** The exit code of a command stopped through its signal with this reason (130 unless told otherwise). */
export function stopExitCode(reason: unknown): number {
  return reason instanceof StopRequest ? reason.exitCode : ExitCode.interrupted;
}

/** How a stop reads in a summary: `Ctrl-C`, `SIGTERM`. */
export function stopName(reason: unknown): string {
  return reason instanceof StopRequest ? (reason.signal === 'SIGINT' ? 'Ctrl-C' : reason.signal) : 'Ctrl-C';
}

/** Stable codes carried by {@link CliError}. */
export type CliErrorCode = 'ERR_CLI_USAGE' | 'ERR_CLI_FAILURE';

/**
 * An error the command line reports as one line on stderr (no stack trace) with its exit code:
 * `ERR_CLI_USAGE` exits 2, `ERR_CLI_FAILURE` exits 1. A `RedisEventsError` of `@redis-events/resp`.
 *
 * @example
 * ```ts
 * throw new CliError('ERR_CLI_USAGE', '--limit must be a positive integer');
 * ```
 */
export class CliError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for('@redis-events/cli.error');
  static override readonly errorName: string = 'CliError';
  declare readonly code: CliErrorCode;

  constructor(code: CliErrorCode, message: string, options?: RedisEventsErrorOptions) {
    super('@redis-events/cli', code, message, options);
  }

  /** The process exit code for this error. */
  get exitCode(): number {
    return this.code === 'ERR_CLI_USAGE' ? ExitCode.usage : ExitCode.failure;
  }
}

/** Shorthand for a usage error. */
export function usage(message: string): CliError {
  return new CliError('ERR_CLI_USAGE', message);
}
