export { ATTR_STREAM_DELIVERY_ATTEMPT } from './channels/messages.ts';
export { ATTR_PUBSUB_GAP_REASON, ATTR_PUBSUB_OVERFLOW_POLICY, ATTR_PUBSUB_RECEIVERS } from './channels/pubsub.ts';
export { OpenTelemetryError, type OpenTelemetryErrorCode } from './errors.ts';
export {
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  type InstrumentedPackage,
  instrumentRedisEvents,
  type RedisEventsInstrumentation,
  type RedisEventsInstrumentationOptions,
} from './instrument.ts';
export { METRICS } from './metrics.ts';
export { extractTraceContext, injectTraceContext } from './trace-context.ts';
