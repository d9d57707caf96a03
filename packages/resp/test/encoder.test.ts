import { describe, expect, it } from 'vitest';
import { RespDecoder } from '../src/decoder.ts';
import { CommandEncoder, encodeCommand, encodeNode, encodePipeline, encodeValue } from '../src/encoder.ts';
import { ReplyError } from '../src/errors.ts';
import { Attributed, type RespNode, VerbatimString } from '../src/values.ts';

const text = (b: Buffer | Buffer[]) => (Array.isArray(b) ? Buffer.concat(b) : b).toString('latin1');

describe('encodeCommand', () => {
  it('writes strings, numbers, bigints, Buffers and Uint8Arrays as bulk strings', () => {
    expect(text(encodeCommand(['SET', 'k', 'v']))).toBe('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n');
    expect(text(encodeCommand(['X', 42, -1.5, 12345678901234567890n, 0]))).toBe(
      '*5\r\n$1\r\nX\r\n$2\r\n42\r\n$4\r\n-1.5\r\n$20\r\n12345678901234567890\r\n$1\r\n0\r\n',
    );
    expect(text(encodeCommand(['Z', Infinity, -Infinity, -0]))).toBe(
      '*4\r\n$1\r\nZ\r\n$3\r\ninf\r\n$4\r\n-inf\r\n$1\r\n0\r\n',
    );
    expect(text(encodeCommand(['B', Buffer.from([0, 13, 10, 255]), new Uint8Array([1, 2])]))).toBe(
      '*3\r\n$1\r\nB\r\n$4\r\n\x00\r\n\xff\r\n$2\r\n\x01\x02\r\n',
    );
    expect(text(encodeCommand(['E', '']))).toBe('*2\r\n$1\r\nE\r\n$0\r\n\r\n');
  });

  it('counts UTF-8 bytes, not characters', () => {
    const encoded = encodeCommand(['SET', 'clé', '€'.repeat(40), '😀']);
    expect(encoded.toString('utf8')).toBe(`*4\r\n$3\r\nSET\r\n$4\r\nclé\r\n$120\r\n${'€'.repeat(40)}\r\n$4\r\n😀\r\n`);
  });

  it('writes long arguments and many arguments', () => {
    const long = 'y'.repeat(200_000);
    const args = Array.from({ length: 1000 }, (_, i) => `a${i}`);
    expect(text(encodeCommand(['SET', 'k', long]))).toBe(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$200000\r\n${long}\r\n`);
    expect(text(encodeCommand(['RPUSH', ...args]))).toBe(
      `*1001\r\n$5\r\nRPUSH\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`,
    );
  });

  it('refuses arguments it cannot send, naming them, and writes nothing of that command', () => {
    const encoder = new CommandEncoder();
    encoder.push(['PING']);
    for (const bad of [null, undefined, true, {}, [], Symbol('s'), () => 1]) {
      expect(() => encoder.push(['SET', 'k', bad as never])).toThrow(
        expect.objectContaining({ code: 'ERR_RESP_ARGUMENT', message: expect.stringMatching(/command argument 2/) }),
      );
    }
    expect(() => encoder.push(['SET', 'k', Number.NaN])).toThrow(/NaN/);
    expect(() => encoder.push(['SET', Buffer.alloc(20_000), Number.NaN])).toThrow(/NaN/);
    expect(() => encoder.push([])).toThrow(expect.objectContaining({ code: 'ERR_RESP_ARGUMENT' }));
    encoder.push(['ECHO', 'x']);
    expect(text(encoder.take())).toBe('*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n');
    expect(encoder.pendingBytes).toBe(0);
  });
});

describe('CommandEncoder', () => {
  it('packs small commands into one chunk and passes large Buffers through uncopied', () => {
    const encoder = new CommandEncoder();
    const big = Buffer.alloc(20_000, 'b');
    encoder.push(['SET', 'a', '1']);
    encoder.push(['SET', 'b', big]);
    encoder.push(['GET', 'a']);
    expect(encoder.pendingBytes).toBe(
      Buffer.concat([encodeCommand(['SET', 'a', '1']), encodeCommand(['SET', 'b', big]), encodeCommand(['GET', 'a'])])
        .length,
    );
    const chunks = encoder.take();
    expect(chunks).toHaveLength(3);
    expect(chunks[1]).toBe(big);
    expect(text(chunks)).toBe(
      `*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$20000\r\n${big.toString('latin1')}\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n`,
    );
  });

  it('moves to a new slab when one is full without corrupting what was handed out', () => {
    const encoder = new CommandEncoder({ slabBytes: 256 });
    const handedOut: Buffer[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 200; i++) {
      const command = ['SET', `key:${i}`, 'v'.repeat(i % 50)];
      encoder.push(command);
      expected.push(text(encodeCommand(command)));
      if (i % 7 === 0) handedOut.push(Buffer.concat(encoder.take()));
    }
    handedOut.push(Buffer.concat(encoder.take()));
    expect(Buffer.concat(handedOut).toString('latin1')).toBe(expected.join(''));
  });

  it('encodes pipelines', () => {
    expect(
      text(
        encodePipeline([
          ['INCR', 'a'],
          ['INCR', 'b'],
        ]),
      ),
    ).toBe('*2\r\n$4\r\nINCR\r\n$1\r\na\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n');
  });
});

describe('encodeValue', () => {
  it('writes plain values as RESP3', () => {
    expect(text(encodeValue('hi'))).toBe('$2\r\nhi\r\n');
    expect(text(encodeValue(7))).toBe(':7\r\n');
    expect(text(encodeValue(1.5))).toBe(',1.5\r\n');
    expect(text(encodeValue(Number.NaN))).toBe(',nan\r\n');
    expect(text(encodeValue(2n ** 70n))).toBe(`(${2n ** 70n}\r\n`);
    expect(text(encodeValue(-5n))).toBe(':-5\r\n');
    expect(text(encodeValue(true))).toBe('#t\r\n');
    expect(text(encodeValue(null))).toBe('_\r\n');
    expect(text(encodeValue([1, 'a', null]))).toBe('*3\r\n:1\r\n$1\r\na\r\n_\r\n');
    expect(text(encodeValue(new Set([1])))).toBe('~1\r\n:1\r\n');
    expect(text(encodeValue(new Map([['k', 1]])))).toBe('%1\r\n$1\r\nk\r\n:1\r\n');
    expect(text(encodeValue({ k: 'v' }))).toBe('%1\r\n$1\r\nk\r\n$1\r\nv\r\n');
    expect(text(encodeValue(new ReplyError('ERR bad')))).toBe('-ERR bad\r\n');
    expect(text(encodeValue(new ReplyError('ERR a\r\nb')))).toBe('!8\r\nERR a\r\nb\r\n');
    expect(text(encodeValue(new VerbatimString('txt', 'hey')))).toBe('=7\r\ntxt:hey\r\n');
    expect(text(encodeValue(new Attributed('v', new Map([['ttl', 3]]))))).toBe('|1\r\n$3\r\nttl\r\n:3\r\n$1\r\nv\r\n');
  });

  it('maps to RESP2 on request', () => {
    const opts = { protocol: 2 } as const;
    expect(text(encodeValue(null, opts))).toBe('$-1\r\n');
    expect(text(encodeValue(true, opts))).toBe(':1\r\n');
    expect(text(encodeValue(1.5, opts))).toBe('$3\r\n1.5\r\n');
    expect(text(encodeValue(new Map([['k', 1]]), opts))).toBe('*2\r\n$1\r\nk\r\n:1\r\n');
    expect(text(encodeValue(new Set(['a']), opts))).toBe('*1\r\n$1\r\na\r\n');
    expect(text(encodeValue(new ReplyError('ERR a\r\nb'), opts))).toBe('-ERR a b\r\n');
    expect(text(encodeValue(new VerbatimString('txt', 'hey'), opts))).toBe('$3\r\nhey\r\n');
    expect(text(encodeValue(new Attributed('v', new Map()), opts))).toBe('$1\r\nv\r\n');
  });

  it('refuses what has no RESP form, and cycles', () => {
    expect(() => encodeValue((() => 1) as never)).toThrow(expect.objectContaining({ code: 'ERR_RESP_ARGUMENT' }));
    expect(() => encodeValue(new Date() as never)).toThrow(/cannot encode a Date/);
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    expect(() => encodeValue(cyclic as never)).toThrow(/deeper than maxDepth 1024/);
    expect(() => encodeValue(new VerbatimString('toolong', 'x'))).toThrow(/3 printable ASCII/);
  });
});

describe('encodeNode', () => {
  const cases: [RespNode, string][] = [
    [{ type: 'simple-string', value: 'OK' }, '+OK\r\n'],
    [{ type: 'simple-error', value: new ReplyError('ERR x') }, '-ERR x\r\n'],
    [{ type: 'integer', value: 5 }, ':5\r\n'],
    [{ type: 'bulk-string', value: null }, '$-1\r\n'],
    [{ type: 'bulk-string', value: 'Hello word', streamed: true }, '$?\r\n;10\r\nHello word\r\n;0\r\n'],
    [{ type: 'array', value: null }, '*-1\r\n'],
    [{ type: 'array', value: [{ type: 'null', value: null }], streamed: true }, '*?\r\n_\r\n.\r\n'],
    [{ type: 'boolean', value: false }, '#f\r\n'],
    [{ type: 'double', value: -0 }, ',-0\r\n'],
    [{ type: 'double', value: -Infinity }, ',-inf\r\n'],
    [{ type: 'big-number', value: 10n ** 30n }, `(${10n ** 30n}\r\n`],
    [{ type: 'bulk-error', value: new ReplyError('SYNTAX x', true) }, '!8\r\nSYNTAX x\r\n'],
    [{ type: 'verbatim-string', format: 'mkd', value: '# t' }, '=7\r\nmkd:# t\r\n'],
    [
      {
        type: 'map',
        value: [
          [
            { type: 'integer', value: 1 },
            { type: 'null', value: null },
          ],
        ],
      },
      '%1\r\n:1\r\n_\r\n',
    ],
    [{ type: 'set', value: [] }, '~0\r\n'],
    [{ type: 'push', value: [{ type: 'bulk-string', value: 'message' }] }, '>1\r\n$7\r\nmessage\r\n'],
    [
      {
        type: 'integer',
        value: 1,
        attributes: [
          [
            { type: 'simple-string', value: 'a' },
            { type: 'boolean', value: true },
          ],
        ],
      },
      '|1\r\n+a\r\n#t\r\n:1\r\n',
    ],
  ];
  it.each(cases.map(([node, wire]) => [wire.replace(/\r\n/g, '⏎'), node, wire] as const))(
    '%s',
    (_label, node, wire) => {
      expect(text(encodeNode(node))).toBe(wire);
    },
  );

  it('refuses a simple string or error holding CR or LF', () => {
    expect(() => encodeNode({ type: 'simple-string', value: 'a\nb' })).toThrow(/bulk string/);
    expect(() => encodeNode({ type: 'simple-error', value: new ReplyError('a\rb') })).toThrow(/bulk error/);
  });

  it('writes a verbatim format as the 3 bytes the decoder read, whatever they are (found by the fuzzer)', () => {
    const wire = Buffer.from('=8\r\nm\xb37:# hi\r\n', 'latin1');
    const nodes: RespNode[] = [];
    new RespDecoder<RespNode>({ typed: true, onReply: (node) => nodes.push(node) }).feed(wire);
    expect(nodes[0]).toEqual({ type: 'verbatim-string', format: 'm\xb37', value: '# hi' });
    expect(encodeNode(nodes[0] as RespNode)).toEqual(wire);
    expect(() => encodeNode({ type: 'verbatim-string', format: 'md', value: 'x' })).toThrow(/3 bytes/);
    expect(() => encodeNode({ type: 'verbatim-string', format: 'mk€', value: 'x' })).toThrow(/3 bytes/);
  });
});
