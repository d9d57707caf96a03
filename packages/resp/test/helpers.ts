// Shared helpers of the resp tests.
import { RespDecoder, type RespDecoderOptions } from '../src/decoder.ts';
import { ReplyError } from '../src/errors.ts';
import { Attributed, VerbatimString } from '../src/values.ts';

/** A JSON-comparable form of any decoded value (typed or plain): exact for errors, bigints, NaN, -0 and Buffers. */
export function normalize(value: unknown): unknown {
  if (value instanceof ReplyError) return { error: value.message, bulk: value.bulk };
  if (typeof value === 'bigint') return { bigint: value.toString() };
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NaN';
    if (Object.is(value, -0)) return '-0';
    return value;
  }
  if (Buffer.isBuffer(value)) return { buffer: value.toString('latin1') };
  if (value instanceof VerbatimString) return { verbatim: value.format, text: normalize(value.text) };
  if (value instanceof Attributed) return { value: normalize(value.value), attributes: normalize(value.attributes) };
  if (value instanceof Map) return { map: [...value].map(([k, v]) => [normalize(k), normalize(v)]) };
  if (value instanceof Set) return { set: [...value].map(normalize) };
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) out[key] = normalize((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

export interface Emitted {
  readonly push: boolean;
  readonly value: unknown;
}

/** A decoder that records what it emits. */
export function recorder<V = unknown>(options: Omit<RespDecoderOptions<V>, 'onReply' | 'onPush'> = {}) {
  const out: Emitted[] = [];
  const decoder = new RespDecoder<V>({
    ...options,
    onReply: (value) => out.push({ push: false, value }),
    onPush: (value) => out.push({ push: true, value }),
  });
  return { decoder, out };
}

/** Decodes `input` fed in the given pieces; returns the emitted values, normalized. */
export function decodeIn(
  pieces: readonly Buffer[],
  options: Omit<RespDecoderOptions, 'onReply' | 'onPush'> = {},
): unknown[] {
  const { decoder, out } = recorder(options);
  for (const piece of pieces) decoder.feed(piece);
  return out.map((e) => ({ push: e.push, value: normalize(e.value) }));
}

/** `bytes` cut at the given offsets. */
export function cutAt(bytes: Buffer, ...offsets: number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let from = 0;
  for (const at of offsets) {
    pieces.push(bytes.subarray(from, at));
    from = at;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}

/** One Buffer per byte (copies, so no piece shares memory with another). */
export function bytewise(bytes: Buffer): Buffer[] {
  return [...bytes].map((b) => Buffer.from([b]));
}
