import { RedisEventsError, type RedisEventsErrorOptions } from '@redis-events/resp';

/** Stable codes carried by {@link OpenTelemetryError}. */
export type OpenTelemetryErrorCode =
  /** A wrong option of `instrumentRedisEvents()` (an unknown field, a wrong type or value). */
  'ERR_OTEL_ARGUMENT';

/**
 * The error class of `@redis-events/opentelemetry`: a `RedisEventsError` with a stable `code`.
 * The instrumentation throws only for wrong options; a failure while it observes (a tracer that
 * throws, a consumer group that cannot be read) goes to the `logger`, never to your code.
 *
 * @example
 * ```ts
 * try {
 *   instrumentRedisEvents({ tracerprovider: provider } as never);
 * } catch (err) {
 *   if (err instanceof OpenTelemetryError) console.error(err.code, err.message); // ERR_OTEL_ARGUMENT
 * }
 * ```
 */
export class OpenTelemetryError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for('@redis-events/opentelemetry.error');
  static override readonly errorName: string = 'OpenTelemetryError';
  declare readonly code: OpenTelemetryErrorCode;

  constructor(code: OpenTelemetryErrorCode, message: string, options?: RedisEventsErrorOptions) {
    super('@redis-events/opentelemetry', code, message, options);
  }
}
