// A hostile (or broken) server: what it declares must not decide what the decoder allocates or
// how long it works. Memory follows the bytes received; time follows them linearly.
import { describe, expect, it } from 'vitest';
import { RespProtocolError } from '../src/errors.ts';
import { cutAt, recorder } from './helpers.ts';

const b = (s: string) => Buffer.from(s, 'latin1');
const MiB = 1024 * 1024;

/** Heap and ArrayBuffer bytes the decoder holds after being fed `pieces` (it stays reachable while measured). */
function heldAfter(pieces: readonly Buffer[], options: object = {}): number {
  const { decoder } = recorder(options);
  const before = process.memoryUsage();
  for (const piece of pieces) decoder.feed(piece);
  const after = process.memoryUsage();
  expect(decoder.failed).toBe(false);
  expect(decoder.atBoundary).toBe(false); // still waiting: whatever it allocated is still held
  return after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers);
}

function inPieces(bytes: Buffer, size: number): Buffer[] {
  const pieces: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) pieces.push(bytes.subarray(i, i + size));
  return pieces;
}

describe('memory follows the bytes received, not the lengths declared', () => {
  it.each([
    ['1 024 nested *65536 headers', '*65536\r\n'],
    ['1 024 nested %32768 headers', '%32768\r\n'],
    ['1 024 nested ~65536 headers', '~65536\r\n'],
    ['1 024 nested |32768 attribute headers', '|32768\r\n'],
  ])('%s (8 KiB on the wire) cost at most a few MiB, whole and in pieces', (_name, header) => {
    const wire = b(header.repeat(1023));
    expect(wire.length).toBeLessThanOrEqual(9 * 1024);
    expect(heldAfter([wire])).toBeLessThan(8 * MiB);
    expect(heldAfter(inPieces(wire, 7))).toBeLessThan(8 * MiB);
    expect(heldAfter(inPieces(wire, 1024))).toBeLessThan(8 * MiB);
  });

  it('nested headers of every length up to the limit stay bounded too', () => {
    let wire = '';
    for (let i = 0; i < 1023; i++) wire += `*${1000 + ((i * 7919) % 64000)}\r\n`;
    expect(heldAfter([b(wire)])).toBeLessThan(8 * MiB);
  });

  it('a bulk string declared at 512 MiB costs what has arrived, not what was announced', () => {
    const wire = b(`$${512 * MiB}\r\n${'x'.repeat(64 * 1024)}`);
    expect(heldAfter([wire])).toBeLessThan(8 * MiB);
    expect(heldAfter(inPieces(wire, 1500))).toBeLessThan(8 * MiB);
    // The same for a bulk error and a verbatim string.
    expect(heldAfter([b(`!${512 * MiB}\r\nERR x`)])).toBeLessThan(8 * MiB);
    expect(heldAfter([b(`=${512 * MiB}\r\ntxt:x`)])).toBeLessThan(8 * MiB);
  });

  it('still decodes large payloads and aggregates that span many chunks exactly', () => {
    const size = 3 * MiB + 17;
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i++) payload[i] = (i * 31) & 255;
    const wire = Buffer.concat([
      b(`*3\r\n$${size}\r\n`),
      payload,
      b('\r\n*70000\r\n'),
      b(':1\r\n'.repeat(70000)),
      b('+OK\r\n'),
    ]);
    for (const size of [wire.length, 64 * 1024, 1000, 333]) {
      const { decoder, out } = recorder({ strings: 'buffer' });
      for (const piece of inPieces(wire, size)) decoder.feed(piece);
      expect(out).toHaveLength(1);
      const [bulk, array, ok] = (out[0] as { value: unknown }).value as [Buffer, number[], string];
      expect(bulk.equals(payload)).toBe(true);
      expect(array).toHaveLength(70000);
      expect(array.every((n) => n === 1)).toBe(true);
      expect(ok).toBe('OK');
    }
  });
});

describe('time follows the bytes received', () => {
  it('merges 300 000 consecutive attributes in linear time', () => {
    const count = 300_000;
    const { decoder, out } = recorder();
    decoder.feed(b(`${'|1\r\n:1\r\n:2\r\n'.repeat(count)}+OK\r\n`));
    expect(out).toHaveLength(1);
    const value = out[0]?.value as { value: unknown; attributes: Map<unknown, unknown> };
    expect(value.value).toBe('OK');
    expect(value.attributes).toEqual(new Map([[1, 2]]));
  });

  it('merges 300 000 consecutive attributes inside an array, in pieces', () => {
    const count = 300_000;
    const { decoder, out } = recorder({ typed: true });
    const wire = b(`*1\r\n${'|1\r\n:1\r\n:2\r\n'.repeat(count)}+OK\r\n`);
    for (const piece of cutAt(wire, 5, 1000, 70_000)) decoder.feed(piece);
    const node = out[0]?.value as { value: { attributes: unknown[] }[] };
    expect(node.value[0]?.attributes).toHaveLength(count);
  });

  it('passes a 1 MiB big number through as a string without converting it twice', () => {
    const digits = `-${'7'.repeat(MiB - 8)}`;
    const { decoder, out } = recorder({ bigIntegers: 'string' });
    decoder.feed(b(`(${digits}\r\n(+007\r\n(-0\r\n(00\r\n`));
    expect(out.map((e) => e.value)).toEqual([digits, '7', '0', '0']);
  });
});

describe('a protocol error is the only way out', () => {
  it('fails with a protocol error rather than a RangeError on a too-deep map key in object mode', () => {
    const depth = 20_000;
    const { decoder } = recorder({ maps: 'object', maxDepth: depth + 10 });
    let thrown: unknown;
    try {
      decoder.feed(b(`%1\r\n${'*1\r\n'.repeat(depth)}:1\r\n:2\r\n`));
    } catch (err) {
      thrown = err;
    }
    // Either it decodes (the key is stringified without recursion) or it is a typed error.
    if (thrown !== undefined) expect(thrown).toBeInstanceOf(RespProtocolError);
  });
});
