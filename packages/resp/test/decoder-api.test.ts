import { describe, expect, it } from 'vitest';
import { RespDecoder } from '../src/decoder.ts';
import { ReplyError, RespError } from '../src/errors.ts';
import { Attributed, VerbatimString } from '../src/values.ts';
import { recorder } from './helpers.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

function decodeOne(
  input: string,
  options: ConstructorParameters<typeof RespDecoder>[0] extends infer O ? Omit<O & object, 'onReply'> : never = {},
) {
  const { decoder, out } = recorder(options);
  decoder.feed(b(input));
  expect(out).toHaveLength(1);
  return out[0]?.value;
}

describe('plain value mapping', () => {
  it('maps every type by default', () => {
    expect(decodeOne('+OK\r\n')).toBe('OK');
    expect(decodeOne('$5\r\nhello\r\n')).toBe('hello');
    expect(decodeOne(':42\r\n')).toBe(42);
    expect(decodeOne(':9007199254740993\r\n')).toBe(9007199254740993n);
    expect(decodeOne('(123\r\n')).toBe(123n);
    expect(decodeOne(',1.5\r\n')).toBe(1.5);
    expect(decodeOne('#t\r\n')).toBe(true);
    expect(decodeOne('_\r\n')).toBeNull();
    expect(decodeOne('$-1\r\n')).toBeNull();
    expect(decodeOne('*-1\r\n')).toBeNull();
    expect(decodeOne('*2\r\n:1\r\n:2\r\n')).toEqual([1, 2]);
    expect(decodeOne('~2\r\n:1\r\n:1\r\n')).toEqual([1, 1]);
    expect(decodeOne('%1\r\n+a\r\n:1\r\n')).toEqual(new Map([['a', 1]]));
    const verbatim = decodeOne('=8\r\ntxt:abcd\r\n');
    expect(verbatim).toBeInstanceOf(VerbatimString);
    expect(verbatim).toMatchObject({ format: 'txt', text: 'abcd' });
    expect(`${verbatim}`).toBe('abcd');
    const error = decodeOne('-WRONGTYPE bad kind\r\n');
    expect(error).toBeInstanceOf(ReplyError);
    expect(error).toBeInstanceOf(RespError);
    expect(error).toMatchObject({
      code: 'ERR_RESP_REPLY',
      prefix: 'WRONGTYPE',
      message: 'WRONGTYPE bad kind',
      bulk: false,
    });
    expect(decodeOne('!7\r\nERR a b\r\n')).toMatchObject({ prefix: 'ERR', bulk: true });
    expect(decodeOne('-oops: lower case\r\n')).toMatchObject({ prefix: undefined });
  });

  it('keeps attributes with the value they annotate', () => {
    const value = decodeOne('*2\r\n|1\r\n+ttl\r\n:3\r\n$1\r\na\r\n$1\r\nb\r\n') as unknown[];
    expect(value[0]).toBeInstanceOf(Attributed);
    expect(value[0]).toMatchObject({ value: 'a', attributes: new Map([['ttl', 3]]) });
    expect(value[1]).toBe('b');
    expect(decodeOne('|1\r\n+ttl\r\n:3\r\n$1\r\na\r\n', { attributes: 'drop' })).toBe('a');
  });

  it('maps strings to Buffers, as zero-copy views when a payload lies in one chunk', () => {
    const input = b('*2\r\n$5\r\nhello\r\n=8\r\ntxt:abcd\r\n');
    const { decoder, out } = recorder({ strings: 'buffer' });
    decoder.feed(input);
    const [hello, verbatim] = (out[0] as { value: [Buffer, VerbatimString<Buffer>] }).value;
    expect(hello).toEqual(Buffer.from('hello'));
    expect(hello.buffer).toBe(input.buffer);
    expect(verbatim.text).toEqual(Buffer.from('abcd'));
    expect(decodeOne('+OK\r\n', { strings: 'buffer' })).toBe('OK');
  });

  it('hands out views that are Buffers in every way user code checks', () => {
    const input = b('*3\r\n$5\r\nhello\r\n$5\r\nworld\r\n$3\r\nend\r\n');
    const { decoder, out } = recorder({ strings: 'buffer' });
    decoder.feed(input);
    for (const value of (out[0] as { value: Buffer[] }).value) {
      expect(Buffer.isBuffer(value)).toBe(true);
      expect(value).toBeInstanceOf(Buffer);
      expect(value.constructor).toBe(Buffer);
      expect(Buffer.isBuffer(value.subarray(1))).toBe(true);
      expect(Buffer.isBuffer(value.slice(1))).toBe(true);
      expect(value.buffer).toBe(input.buffer);
    }
    const [hello, world] = (out[0] as { value: Buffer[] }).value as [Buffer, Buffer];
    expect(hello.toString()).toBe('hello');
    expect(hello.subarray(1, 3).toString('hex')).toBe('656c');
    expect(Buffer.concat([hello, world]).toString()).toBe('helloworld');
    expect(world.equals(Buffer.from('world'))).toBe(true);
    expect(JSON.stringify(hello)).toBe(JSON.stringify(Buffer.from('hello')));
    expect(world.readUInt8(0)).toBe(119);
  });

  it('copies a payload that spans chunks once, into a buffer of its declared size', () => {
    const payload = Buffer.alloc(70_000, 'x');
    const input = Buffer.concat([b('$70000\r\n'), payload, b('\r\n')]);
    const { decoder, out } = recorder({ strings: 'buffer' });
    decoder.feed(input.subarray(0, 65_536));
    expect(out).toHaveLength(0);
    decoder.feed(input.subarray(65_536));
    const value = out[0]?.value as Buffer;
    expect(value).toEqual(payload);
    expect(value.byteOffset).toBe(0);
    expect(value.buffer.byteLength).toBe(70_000);
  });

  it('maps maps to objects, guarding __proto__, or to flat arrays', () => {
    const object = decodeOne('%3\r\n+__proto__\r\n:1\r\n:7\r\n+seven\r\n$1\r\nk\r\n_\r\n', {
      maps: 'object',
    }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
    expect(Object.keys(object)).toEqual(['7', '__proto__', 'k']);
    expect(Object.getOwnPropertyDescriptor(object, '__proto__')?.value).toBe(1);
    expect(object['7']).toBe('seven');
    expect(decodeOne('%2\r\n+a\r\n:1\r\n+a\r\n:2\r\n', { maps: 'array' })).toEqual(['a', 1, 'a', 2]);
    expect(decodeOne('%1\r\n$1\r\nk\r\n:1\r\n', { maps: 'object', strings: 'buffer' })).toEqual({ k: 1 });
  });

  it('maps sets to Set, verbatim strings to text and big integers to strings on request', () => {
    expect(decodeOne('~3\r\n+a\r\n+b\r\n+a\r\n', { sets: 'set' })).toEqual(new Set(['a', 'b']));
    expect(decodeOne('=8\r\ntxt:abcd\r\n', { verbatim: 'text' })).toBe('abcd');
    expect(decodeOne(':-9007199254740993\r\n', { bigIntegers: 'string' })).toBe('-9007199254740993');
    expect(decodeOne(':+0000000000000000012\r\n', { bigIntegers: 'string' })).toBe(12);
    expect(decodeOne('(+0042\r\n', { bigIntegers: 'string' })).toBe('42');
  });

  it('rejects unknown option values', () => {
    for (const options of [
      { strings: 'utf16' },
      { maps: 'dict' },
      { sets: 'list' },
      { maxDepth: -1 },
      { maxBulkLength: 1.5 },
    ]) {
      expect(() => new RespDecoder({ onReply: () => {}, ...(options as object) })).toThrow(
        expect.objectContaining({ code: 'ERR_RESP_ARGUMENT' }),
      );
    }
  });

  it('delivers pushes to onReply when there is no onPush', () => {
    const values: unknown[] = [];
    const decoder = new RespDecoder({ onReply: (v) => values.push(v) });
    decoder.feed(b('>1\r\n+x\r\n+OK\r\n'));
    expect(values).toEqual([['x'], 'OK']);
  });
});

describe('flow control and offsets', () => {
  const stream = b('+first\r\n:2\r\n$4\r\nrest\r\n');

  it('pauses right after a value, holds input, and resumes in order', () => {
    const values: unknown[] = [];
    const decoder: RespDecoder = new RespDecoder({
      onReply: (v) => {
        values.push(v);
        if (v === 'first') decoder.pause();
      },
    });
    decoder.feed(stream);
    expect(values).toEqual(['first']);
    expect(decoder.isPaused).toBe(true);
    expect(decoder.bytesConsumed).toBe(8);
    expect(decoder.bytesBuffered).toBe(stream.length - 8);
    decoder.feed(b('+more\r\n'));
    expect(values).toEqual(['first']);
    decoder.resume();
    expect(values).toEqual(['first', 2, 'rest', 'more']);
    expect(decoder.bytesConsumed).toBe(stream.length + 7);
  });

  it('hands over exactly the bytes after the value it paused on', () => {
    const input = b('+FULLRESYNC abc 0\r\n$5\r\nREDIS\x00\x01');
    const decoder: RespDecoder = new RespDecoder({
      onReply: () => {
        decoder.pause();
      },
    });
    decoder.feed(input.subarray(0, 10));
    decoder.feed(input.subarray(10, 25));
    decoder.feed(input.subarray(25));
    const rest = decoder.takeRemaining();
    expect(rest).toEqual(input.subarray(19));
    expect(decoder.bytesConsumed).toBe(19);
    expect(decoder.bytesBuffered).toBe(0);
  });

  it('counts an attribute as the start of the value it annotates, even empty or dropped (found by the fuzzer)', () => {
    for (const attributes of ['wrap', 'drop'] as const) {
      for (const input of ['|0\r\n', '|1\r\n+a\r\n+b\r\n']) {
        const { decoder, out } = recorder({ attributes });
        decoder.feed(b(input));
        expect(out).toEqual([]);
        expect(decoder.atBoundary).toBe(false);
        expect(decoder.bytesBuffered).toBe(input.length);
        expect(() => decoder.takeRemaining()).toThrow(/between two values/);
        decoder.feed(b(':1\r\n'));
        expect(decoder.lastValueLength).toBe(input.length + 4);
        expect(decoder.atBoundary).toBe(true);
      }
      // An attribute with no value before the end of a streamed array is refused in either mode.
      const { decoder } = recorder({ attributes });
      expect(() => decoder.feed(b('*?\r\n|1\r\n+a\r\n+b\r\n.\r\n'))).toThrow(/attribute not followed by a value/);
    }
  });

  it('refuses takeRemaining in the middle of a value', () => {
    const { decoder } = recorder();
    decoder.feed(b('*2\r\n:1\r\n'));
    expect(() => decoder.takeRemaining()).toThrow(expect.objectContaining({ code: 'ERR_RESP_STATE' }));
  });

  it('reports the byte length of each top-level value, attributes included', () => {
    const lengths: number[] = [];
    const decoder: RespDecoder = new RespDecoder({
      onReply: () => lengths.push(decoder.lastValueLength),
      onPush: () => lengths.push(decoder.lastValueLength),
    });
    decoder.feed(b('|1\r\n+a\r\n+b\r\n:1\r\n>1\r\n+p\r\n$3\r\nabc\r\n'));
    expect(lengths).toEqual([16, 8, 9]);
  });

  it('survives a callback that throws: the value counts as delivered and the rest follows', () => {
    const values: unknown[] = [];
    const decoder = new RespDecoder({
      onReply: (v) => {
        values.push(v);
        if (v === 2) throw new Error('listener bug');
      },
    });
    expect(() => decoder.feed(stream)).toThrow('listener bug');
    expect(values).toEqual(['first', 2]);
    decoder.feed(b('+after\r\n'));
    expect(values).toEqual(['first', 2, 'rest', 'after']);
  });

  it('queues input fed from inside a callback and decodes it in order', () => {
    const values: unknown[] = [];
    const decoder: RespDecoder = new RespDecoder({
      onReply: (v) => {
        values.push(v);
        if (v === 'first') decoder.feed(b('+nested\r\n'));
      },
    });
    decoder.feed(stream);
    expect(values).toEqual(['first', 2, 'rest', 'nested']);
  });

  it('stops when a callback resets it, and starts a new stream', () => {
    const values: unknown[] = [];
    const decoder: RespDecoder = new RespDecoder({
      onReply: (v) => {
        values.push(v);
        if (v === 'first') decoder.reset();
      },
    });
    decoder.feed(stream);
    expect(values).toEqual(['first']);
    expect(decoder.bytesReceived).toBe(0);
    decoder.feed(b(':9\r\n'));
    expect(values).toEqual(['first', 9]);
  });
});
