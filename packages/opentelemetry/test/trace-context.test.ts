import { createTraceState, type SpanContext, TraceFlags } from '@opentelemetry/api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extractTraceContext, injectTraceContext } from '../src/index.ts';

const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });

const spanContexts = fc
  .record({ traceId: hex(32), spanId: hex(16), sampled: fc.boolean() })
  .filter(({ traceId, spanId }) => /[^0]/.test(traceId) && /[^0]/.test(spanId));

describe('W3C trace context in a carrier', () => {
  it('writes traceparent (and tracestate) and reads them back, for any valid span context', () => {
    fc.assert(
      fc.property(spanContexts, fc.boolean(), ({ traceId, spanId, sampled }, withState) => {
        const spanContext: SpanContext = {
          traceId,
          spanId,
          traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
          ...(withState ? { traceState: createTraceState('vendor=value,other=1') } : {}),
        };
        const carrier: Record<string, string> = {};
        injectTraceContext(spanContext, carrier);
        expect(carrier.traceparent).toBe(`00-${traceId}-${spanId}-${sampled ? '01' : '00'}`);
        expect(carrier.tracestate).toBe(withState ? 'vendor=value,other=1' : undefined);
        const back = extractTraceContext(carrier);
        expect(back).toMatchObject({ traceId, spanId, traceFlags: spanContext.traceFlags, isRemote: true });
        expect(back?.traceState?.serialize()).toBe(withState ? 'vendor=value,other=1' : undefined);
      }),
    );
  });

  it('writes nothing for an invalid span context', () => {
    const carrier: Record<string, string> = {};
    injectTraceContext({ traceId: '0'.repeat(32), spanId: '1'.repeat(16), traceFlags: 1 }, carrier);
    expect(carrier).toEqual({});
  });

  it.each([
    ['no carrier', undefined],
    ['a string', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
    ['no traceparent', { tracestate: 'a=b' }],
    ['a number', { traceparent: 42 }],
    ['an all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-b7ad6b7169203331-01` }],
    ['an all-zero span id', { traceparent: `00-0af7651916cd43dd8448eb211c80319c-${'0'.repeat(16)}-01` }],
    ['version ff', { traceparent: 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }],
    ['version 00 with a fifth field', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-xx' }],
    ['upper-case hex', { traceparent: '00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01' }],
    ['a short trace id', { traceparent: '00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01' }],
    ['a huge value', { traceparent: `00-${'a'.repeat(100_000)}` }],
  ])('reads nothing from %s', (_name, carrier) => {
    expect(extractTraceContext(carrier)).toBeUndefined();
  });

  it('accepts a later version with more fields, and keeps only the sampled flag', () => {
    const context = extractTraceContext({
      traceparent: '01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff-extra',
    });
    expect(context).toMatchObject({ traceId: '0af7651916cd43dd8448eb211c80319c', traceFlags: TraceFlags.SAMPLED });
  });

  it('drops a tracestate longer than 512 characters but keeps the traceparent', () => {
    const context = extractTraceContext({
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: `a=${'b'.repeat(600)}`,
    });
    expect(context?.spanId).toBe('b7ad6b7169203331');
    expect(context?.traceState).toBeUndefined();
  });

  it('never throws, whatever the carrier holds', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('traceparent', 'tracestate', 'x'), fc.anything()), (carrier) => {
        const context = extractTraceContext(carrier);
        if (context !== undefined) expect(context.traceId).toMatch(/^[0-9a-f]{32}$/);
      }),
    );
  });
});
