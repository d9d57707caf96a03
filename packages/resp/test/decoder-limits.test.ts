import { describe, expect, it } from 'vitest';
import { RespDecoder } from '../src/decoder.ts';
import { RespProtocolError } from '../src/errors.ts';
import { cutAt, recorder } from './helpers.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

function limitError(options: object, input: Buffer | Buffer[]): RespProtocolError {
  const { decoder } = recorder(options);
  try {
    for (const piece of Array.isArray(input) ? input : [input]) decoder.feed(piece);
  } catch (err) {
    expect(err).toBeInstanceOf(RespProtocolError);
    return err as RespProtocolError;
  }
  throw new Error('no error');
}

describe('limits', () => {
  it('caps nesting depth (default 1024) with an explicit stack, never the call stack', () => {
    const deep = b('*1\r\n'.repeat(5000));
    const err = limitError({}, deep);
    expect(err.code).toBe('ERR_RESP_LIMIT');
    expect(err.reason).toMatch(/maxDepth 1024/);
    expect(err.offset).toBe(1024 * 4);
    expect(limitError({ maxDepth: 3 }, b('*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n')).offset).toBe(12);
  });

  it('decodes 200 000 levels when allowed to', () => {
    const depth = 200_000;
    const { decoder, out } = recorder({ maxDepth: depth });
    decoder.feed(b(`${'*1\r\n'.repeat(depth)}:7\r\n`));
    let node = out[0]?.value;
    for (let i = 0; i < depth; i++) node = (node as unknown[])[0];
    expect(node).toBe(7);
  });

  it('rejects a bulk length beyond maxBulkLength before allocating anything', () => {
    const err = limitError({}, b('$536870913\r\n'));
    expect(err.code).toBe('ERR_RESP_LIMIT');
    expect(err.reason).toMatch(/536870913 bytes exceeds maxBulkLength 536870912/);
    expect(limitError({ maxBulkLength: 10 }, b('$11\r\nhello world\r\n')).offset).toBe(0);
    expect(limitError({ maxBulkLength: 10 }, b('!11\r\n')).reason).toMatch(/bulk error of 11 bytes/);
    const streamed = cutAt(b('$?\r\n;6\r\nabcdef\r\n;6\r\nghijkl\r\n;0\r\n'), 9);
    expect(limitError({ maxBulkLength: 10 }, streamed).reason).toMatch(/12 bytes exceeds maxBulkLength 10/);
  });

  it('rejects an aggregate longer than maxAggregateLength', () => {
    expect(limitError({}, b('*4294967296\r\n')).reason).toMatch(
      /array of 4294967296 elements exceeds maxAggregateLength/,
    );
    expect(limitError({ maxAggregateLength: 2 }, b('%3\r\n')).reason).toMatch(/map of 3 pairs/);
    expect(limitError({ maxAggregateLength: 2 }, b('~3\r\n')).code).toBe('ERR_RESP_LIMIT');
  });

  it('does not allocate for a huge declared aggregate before its elements arrive', () => {
    const { decoder } = recorder();
    const before = process.memoryUsage().heapUsed;
    decoder.feed(b('*4000000000\r\n:1\r\n:2\r\n'));
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(64 * 1024 * 1024);
    expect(decoder.atBoundary).toBe(false);
  });

  it('caps line length (simple strings, errors, big numbers), whole and in pieces', () => {
    const long = b(`+${'x'.repeat(2000)}\r\n`);
    expect(limitError({ maxLineLength: 1000 }, long).code).toBe('ERR_RESP_LIMIT');
    const pieces = [];
    for (let i = 0; i < long.length; i += 100) pieces.push(long.subarray(i, i + 100));
    const err = limitError({ maxLineLength: 1000 }, pieces);
    expect(err.code).toBe('ERR_RESP_LIMIT');
    expect(err.offset).toBe(0);
    expect(limitError({ maxLineLength: 10 }, b(`(${'1'.repeat(20)}\r\n`)).code).toBe('ERR_RESP_LIMIT');
    // A line without an end is refused once it is too long, not buffered without bound.
    expect(limitError({ maxLineLength: 1000 }, cutAt(b(`-${'e'.repeat(5000)}`), 500, 1500)).code).toBe(
      'ERR_RESP_LIMIT',
    );
  });

  it('refuses a number line that never ends', () => {
    const err = limitError({}, cutAt(b(`:${'1'.repeat(30)}`), 3, 10));
    expect(err.reason).toMatch(/64-bit range/);
    expect(limitError({}, cutAt(b(`$${'9'.repeat(30)}`), 2)).code).toBe('ERR_RESP_LIMIT');
  });

  it('decodes a 100 000-digit big number exactly', () => {
    const digits = `9${'0'.repeat(99_999)}`;
    const value = (() => {
      const { decoder, out } = recorder();
      decoder.feed(b(`(${digits}\r\n`));
      return out[0]?.value;
    })();
    expect(value).toBe(BigInt(digits));
  });
});

describe('RespDecoder construction', () => {
  it('accepts custom limits', () => {
    const decoder = new RespDecoder({ onReply: () => {}, maxDepth: 0 });
    expect(() => decoder.feed(b('*1\r\n'))).toThrow(/maxDepth 0/);
  });
});
