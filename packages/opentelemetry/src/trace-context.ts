// W3C Trace Context in a message's carrier (`traceparent`, `tracestate`), written and read here
// rather than through the global propagator: the carrier's field names are fixed by the
// packages' convention, whatever propagator the application registered.
import { createTraceState, isSpanContextValid, type SpanContext, TraceFlags } from '@opentelemetry/api';

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
/** The W3C recommendation: vendors must keep at least 512 characters; longer ones are dropped. */
const MAX_TRACESTATE_LENGTH = 512;

/**
 * Writes `spanContext` into `carrier` as W3C `traceparent` (and `tracestate` when the span has
 * one). Does nothing for an invalid span context.
 */
export function injectTraceContext(spanContext: SpanContext, carrier: Record<string, string>): void {
  if (!isSpanContextValid(spanContext)) return;
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  carrier.traceparent = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  const state = spanContext.traceState?.serialize();
  if (state) carrier.tracestate = state;
}

/**
 * Reads a W3C `traceparent` (and `tracestate`) from a received message's carrier. Returns
 * undefined when there is none or it is malformed (a message from a producer that does not
 * trace, or a hostile one): a consumer span then simply has no link.
 */
export function extractTraceContext(carrier: unknown): SpanContext | undefined {
  if (typeof carrier !== 'object' || carrier === null) return undefined;
  const raw = (carrier as Record<string, unknown>).traceparent;
  if (typeof raw !== 'string' || raw.length > 512) return undefined;
  const match = TRACEPARENT.exec(raw.trim());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [
    string,
    string,
    string,
    string,
    string,
    string?,
  ];
  // Version ff is forbidden; version 00 has exactly four fields; later versions may add more.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const context: SpanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED,
    isRemote: true,
  };
  if (!isSpanContextValid(context)) return undefined;
  const state = (carrier as Record<string, unknown>).tracestate;
  if (typeof state === 'string' && state.length > 0 && state.length <= MAX_TRACESTATE_LENGTH) {
    context.traceState = createTraceState(state);
  }
  return context;
}
