// Decoder test vectors: every RESP2 and RESP3 type, edge cases, malformed input and incomplete
// input. Valid vectors give the typed values (string mode) they must decode to, in order, with
// `push` marking values delivered as pushes.
import { ReplyError } from '../src/errors.ts';
import type { RespNode } from '../src/values.ts';

export interface ValidVector {
  readonly name: string;
  readonly input: string;
  readonly values: readonly { readonly node: RespNode; readonly push?: boolean }[];
}
export interface MalformedVector {
  readonly name: string;
  readonly input: string;
  /** Offset of the offending byte. */
  readonly offset: number;
  readonly reason: RegExp;
  readonly code?: 'ERR_RESP_PROTOCOL' | 'ERR_RESP_LIMIT';
  /** Decoder limits the vector needs. */
  readonly options?: { readonly maxLineLength?: number; readonly maxBulkLength?: number };
}

/** Bytes of a vector input: the strings are latin1 except where a vector says utf8. */
export function bytes(input: string): Buffer {
  return Buffer.from(input, 'latin1');
}

const simple = (value: string): RespNode => ({ type: 'simple-string', value });
const error = (message: string): RespNode => ({ type: 'simple-error', value: new ReplyError(message) });
const bulkError = (message: string): RespNode => ({ type: 'bulk-error', value: new ReplyError(message, true) });
const int = (value: number | bigint): RespNode => ({ type: 'integer', value });
const bulk = (value: string | null): RespNode => ({ type: 'bulk-string', value });
const array = (value: RespNode[] | null): RespNode => ({ type: 'array', value });
const nul: RespNode = { type: 'null', value: null };
const bool = (value: boolean): RespNode => ({ type: 'boolean', value });
const double = (value: number): RespNode => ({ type: 'double', value });
const big = (value: bigint): RespNode => ({ type: 'big-number', value });
const verbatim = (format: string, value: string): RespNode => ({ type: 'verbatim-string', format, value });
const map = (...pairs: [RespNode, RespNode][]): RespNode => ({ type: 'map', value: pairs });
const set = (...value: RespNode[]): RespNode => ({ type: 'set', value });
const push = (...value: RespNode[]): RespNode => ({ type: 'push', value });
const withAttrs = (node: RespNode, ...attributes: [RespNode, RespNode][]): RespNode => ({ ...node, attributes });
const one = (node: RespNode) => [{ node }];

export const VALID: readonly ValidVector[] = [
  // Simple strings
  { name: 'simple string OK', input: '+OK\r\n', values: one(simple('OK')) },
  { name: 'empty simple string', input: '+\r\n', values: one(simple('')) },
  { name: 'simple string with spaces', input: '+hello world\r\n', values: one(simple('hello world')) },
  { name: 'simple string PONG', input: '+PONG\r\n', values: one(simple('PONG')) },
  {
    name: 'simple string utf8',
    input: Buffer.from('+héllo\r\n', 'utf8').toString('latin1'),
    values: one(simple('héllo')),
  },
  // Simple errors
  { name: 'simple error', input: '-ERR unknown command\r\n', values: one(error('ERR unknown command')) },
  {
    name: 'WRONGTYPE error',
    input: '-WRONGTYPE Operation against a key holding the wrong kind of value\r\n',
    values: one(error('WRONGTYPE Operation against a key holding the wrong kind of value')),
  },
  { name: 'MOVED error', input: '-MOVED 3999 127.0.0.1:6381\r\n', values: one(error('MOVED 3999 127.0.0.1:6381')) },
  { name: 'lower-case error', input: '-user script:1: oops\r\n', values: one(error('user script:1: oops')) },
  { name: 'empty error', input: '-\r\n', values: one(error('')) },
  // Integers
  { name: 'zero', input: ':0\r\n', values: one(int(0)) },
  { name: 'integer', input: ':1000\r\n', values: one(int(1000)) },
  { name: 'negative integer', input: ':-1\r\n', values: one(int(-1)) },
  { name: 'plus sign', input: ':+5\r\n', values: one(int(5)) },
  { name: 'minus zero', input: ':-0\r\n', values: one(int(0)) },
  { name: 'leading zeros', input: ':007\r\n', values: one(int(7)) },
  { name: '15 digits', input: ':999999999999999\r\n', values: one(int(999999999999999)) },
  { name: '2^53 - 1', input: ':9007199254740991\r\n', values: one(int(9007199254740991)) },
  { name: '-(2^53 - 1)', input: ':-9007199254740991\r\n', values: one(int(-9007199254740991)) },
  { name: '2^53', input: ':9007199254740992\r\n', values: one(int(9007199254740992n)) },
  { name: '2^53 + 1', input: ':9007199254740993\r\n', values: one(int(9007199254740993n)) },
  { name: '-(2^53 + 1)', input: ':-9007199254740993\r\n', values: one(int(-9007199254740993n)) },
  { name: 'int64 max', input: ':9223372036854775807\r\n', values: one(int(9223372036854775807n)) },
  { name: 'int64 min', input: ':-9223372036854775808\r\n', values: one(int(-9223372036854775808n)) },
  // Bulk strings
  { name: 'bulk string', input: '$5\r\nhello\r\n', values: one(bulk('hello')) },
  { name: 'empty bulk string', input: '$0\r\n\r\n', values: one(bulk('')) },
  { name: 'null bulk string', input: '$-1\r\n', values: one(bulk(null)) },
  { name: 'bulk string holding CRLF', input: '$4\r\na\r\nb\r\n', values: one(bulk('a\r\nb')) },
  { name: 'bulk string of 13 bytes', input: '$13\r\nabcdefghijklm\r\n', values: one(bulk('abcdefghijklm')) },
  { name: 'bulk string utf8', input: Buffer.from('$3\r\n€\r\n', 'utf8').toString('latin1'), values: one(bulk('€')) },
  { name: 'bulk string with type bytes', input: '$6\r\n+:$*%~\r\n', values: one(bulk('+:$*%~')) },
  // Arrays
  { name: 'empty array', input: '*0\r\n', values: one(array([])) },
  { name: 'null array', input: '*-1\r\n', values: one(array(null)) },
  {
    name: 'array of bulk strings',
    input: '*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n',
    values: one(array([bulk('foo'), bulk('bar')])),
  },
  { name: 'array of integers', input: '*3\r\n:1\r\n:2\r\n:3\r\n', values: one(array([int(1), int(2), int(3)])) },
  {
    name: 'array with a null element',
    input: '*3\r\n$3\r\nfoo\r\n$-1\r\n$3\r\nbar\r\n',
    values: one(array([bulk('foo'), bulk(null), bulk('bar')])),
  },
  {
    name: 'nested arrays',
    input: '*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Hello\r\n-World\r\n',
    values: one(array([array([int(1), int(2), int(3)]), array([simple('Hello'), error('World')])])),
  },
  { name: 'array of empty arrays', input: '*2\r\n*0\r\n*0\r\n', values: one(array([array([]), array([])])) },
  { name: 'array ending in a null array', input: '*2\r\n:1\r\n*-1\r\n', values: one(array([int(1), array(null)])) },
  {
    name: 'EXEC with an error element',
    input: '*2\r\n+OK\r\n-WRONGTYPE bad\r\n',
    values: one(array([simple('OK'), error('WRONGTYPE bad')])),
  },
  {
    name: 'deep single-element nesting',
    input: '*1\r\n*1\r\n*1\r\n*1\r\n:5\r\n',
    values: one(array([array([array([array([int(5)])])])])),
  },
  // Null, booleans
  { name: 'null', input: '_\r\n', values: one(nul) },
  { name: 'true', input: '#t\r\n', values: one(bool(true)) },
  { name: 'false', input: '#f\r\n', values: one(bool(false)) },
  // Doubles
  { name: 'double', input: ',1.23\r\n', values: one(double(1.23)) },
  { name: 'double integral', input: ',10\r\n', values: one(double(10)) },
  { name: 'negative double', input: ',-1.5\r\n', values: one(double(-1.5)) },
  { name: 'double 0.1', input: ',0.1\r\n', values: one(double(0.1)) },
  { name: 'double zero', input: ',0\r\n', values: one(double(0)) },
  { name: 'double minus zero', input: ',-0\r\n', values: one(double(-0)) },
  { name: 'double inf', input: ',inf\r\n', values: one(double(Infinity)) },
  { name: 'double -inf', input: ',-inf\r\n', values: one(double(-Infinity)) },
  { name: 'double +inf', input: ',+inf\r\n', values: one(double(Infinity)) },
  { name: 'double INF upper case', input: ',INF\r\n', values: one(double(Infinity)) },
  { name: 'double nan', input: ',nan\r\n', values: one(double(Number.NaN)) },
  { name: 'double -nan (older servers)', input: ',-nan\r\n', values: one(double(Number.NaN)) },
  { name: 'double exponent', input: ',1.5e10\r\n', values: one(double(1.5e10)) },
  { name: 'double upper exponent', input: ',1E-5\r\n', values: one(double(1e-5)) },
  { name: 'double exponent with plus', input: ',1e+3\r\n', values: one(double(1000)) },
  { name: 'double max', input: ',1.7976931348623157e308\r\n', values: one(double(Number.MAX_VALUE)) },
  { name: 'double min subnormal', input: ',5e-324\r\n', values: one(double(Number.MIN_VALUE)) },
  // Underflow rounds to zero, as strtod does (hiredis accepts it); only overflow is refused.
  { name: 'double underflow', input: ',5e-4324\r\n', values: one(double(0)) },
  { name: 'double 17 digits', input: ',3.1415926535897931\r\n', values: one(double(Math.PI)) },
  {
    name: 'double 18-digit integer',
    input: ',123456789012345678\r\n',
    values: one(double(Number('123456789012345678'))),
  },
  { name: 'double round-trip 0.3', input: ',0.30000000000000004\r\n', values: one(double(0.1 + 0.2)) },
  // Big numbers
  {
    name: 'big number',
    input: '(3492890328409238509324850943850943825024385\r\n',
    values: one(big(3492890328409238509324850943850943825024385n)),
  },
  { name: 'small big number', input: '(1\r\n', values: one(big(1n)) },
  { name: 'negative big number', input: '(-12345678901234567890\r\n', values: one(big(-12345678901234567890n)) },
  // Bulk errors and verbatim strings
  { name: 'bulk error', input: '!21\r\nSYNTAX invalid syntax\r\n', values: one(bulkError('SYNTAX invalid syntax')) },
  { name: 'bulk error with CRLF', input: '!8\r\nERR a\r\nb\r\n', values: one(bulkError('ERR a\r\nb')) },
  { name: 'verbatim string', input: '=15\r\ntxt:Some string\r\n', values: one(verbatim('txt', 'Some string')) },
  { name: 'verbatim markdown', input: '=8\r\nmkd:# hi\r\n', values: one(verbatim('mkd', '# hi')) },
  { name: 'empty verbatim text', input: '=4\r\ntxt:\r\n', values: one(verbatim('txt', '')) },
  // Maps
  {
    name: 'map',
    input: '%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n',
    values: one(map([simple('first'), int(1)], [simple('second'), int(2)])),
  },
  { name: 'empty map', input: '%0\r\n', values: one(map()) },
  {
    name: 'map with an array key',
    input: '%1\r\n*2\r\n:1\r\n:2\r\n+v\r\n',
    values: one(map([array([int(1), int(2)]), simple('v')])),
  },
  {
    name: 'map with duplicate keys',
    input: '%2\r\n+k\r\n:1\r\n+k\r\n:2\r\n',
    values: one(map([simple('k'), int(1)], [simple('k'), int(2)])),
  },
  {
    name: 'nested map',
    input: '%1\r\n$1\r\na\r\n%1\r\n$1\r\nb\r\n_\r\n',
    values: one(map([bulk('a'), map([bulk('b'), nul])])),
  },
  {
    name: 'HELLO 3 reply',
    input:
      '%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:5\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n',
    values: one(
      map(
        [bulk('server'), bulk('redis')],
        [bulk('version'), bulk('7.2.4')],
        [bulk('proto'), int(3)],
        [bulk('id'), int(5)],
        [bulk('mode'), bulk('standalone')],
        [bulk('role'), bulk('master')],
        [bulk('modules'), array([])],
      ),
    ),
  },
  // Sets
  { name: 'set', input: '~2\r\n+a\r\n+b\r\n', values: one(set(simple('a'), simple('b'))) },
  { name: 'set with duplicates', input: '~3\r\n:1\r\n:1\r\n:2\r\n', values: one(set(int(1), int(1), int(2))) },
  { name: 'empty set', input: '~0\r\n', values: one(set()) },
  // Pushes
  {
    name: 'push message',
    input: '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n',
    values: [{ node: push(bulk('message'), bulk('ch'), bulk('hello')), push: true }],
  },
  {
    name: 'push pmessage',
    input: '>4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nx\r\n',
    values: [{ node: push(bulk('pmessage'), bulk('c*'), bulk('ch'), bulk('x')), push: true }],
  },
  {
    name: 'push smessage',
    input: '>3\r\n$8\r\nsmessage\r\n$2\r\nsh\r\n$1\r\ny\r\n',
    values: [{ node: push(bulk('smessage'), bulk('sh'), bulk('y')), push: true }],
  },
  {
    name: 'push subscribe confirmation',
    input: '>3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n',
    values: [{ node: push(bulk('subscribe'), bulk('ch'), int(1)), push: true }],
  },
  {
    name: 'push unsubscribe all with a null channel',
    input: '>3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n',
    values: [{ node: push(bulk('unsubscribe'), nul, int(0)), push: true }],
  },
  {
    name: 'push invalidate',
    input: '>2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nkey\r\n',
    values: [{ node: push(bulk('invalidate'), array([bulk('key')])), push: true }],
  },
  {
    name: 'push invalidate null (FLUSHALL)',
    input: '>2\r\n$10\r\ninvalidate\r\n_\r\n',
    values: [{ node: push(bulk('invalidate'), nul), push: true }],
  },
  { name: 'empty push', input: '>0\r\n', values: [{ node: push(), push: true }] },
  {
    name: 'push before a reply',
    input: '>2\r\n$7\r\nmessage\r\n$1\r\nm\r\n+OK\r\n',
    values: [{ node: push(bulk('message'), bulk('m')), push: true }, { node: simple('OK') }],
  },
  // Attributes
  {
    name: 'attribute before a reply (spec example)',
    input: '|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9323\r\n',
    values: one(
      withAttrs(array([int(2039123), int(9323)]), [
        simple('key-popularity'),
        map([bulk('a'), double(0.1923)], [bulk('b'), double(0.0012)]),
      ]),
    ),
  },
  {
    name: 'attribute inside an array',
    input: '*2\r\n|1\r\n+ttl\r\n:10\r\n+a\r\n+b\r\n',
    values: one(array([withAttrs(simple('a'), [simple('ttl'), int(10)]), simple('b')])),
  },
  {
    name: 'attribute on a map value',
    input: '%1\r\n+k\r\n|1\r\n+src\r\n+cache\r\n:1\r\n',
    values: one(map([simple('k'), withAttrs(int(1), [simple('src'), simple('cache')])])),
  },
  {
    name: 'attribute before a push',
    input: '|1\r\n+a\r\n+b\r\n>1\r\n+x\r\n',
    values: [{ node: withAttrs(push(simple('x')), [simple('a'), simple('b')]), push: true }],
  },
  {
    name: 'two attributes merge',
    input: '|1\r\n+a\r\n:1\r\n|1\r\n+b\r\n:2\r\n+v\r\n',
    values: one(withAttrs(simple('v'), [simple('a'), int(1)], [simple('b'), int(2)])),
  },
  { name: 'empty attribute', input: '|0\r\n+v\r\n', values: one(simple('v')) },
  {
    name: 'attribute with an aggregate value applies to the aggregate',
    input: '|1\r\n+a\r\n*1\r\n:1\r\n*1\r\n:2\r\n',
    values: one(withAttrs(array([int(2)]), [simple('a'), array([int(1)])])),
  },
  // Streamed forms
  {
    name: 'streamed string (spec bytes: "Hello word")',
    input: '$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n',
    values: one({ type: 'bulk-string', value: 'Hello word', streamed: true }),
  },
  {
    name: 'empty streamed string',
    input: '$?\r\n;0\r\n',
    values: one({ type: 'bulk-string', value: '', streamed: true }),
  },
  {
    name: 'streamed array',
    input: '*?\r\n:1\r\n:2\r\n:3\r\n.\r\n',
    values: one({ type: 'array', value: [int(1), int(2), int(3)], streamed: true }),
  },
  {
    name: 'streamed map',
    input: '%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n',
    values: one({
      type: 'map',
      value: [
        [simple('a'), int(1)],
        [simple('b'), int(2)],
      ],
      streamed: true,
    }),
  },
  { name: 'empty streamed set', input: '~?\r\n.\r\n', values: one({ type: 'set', value: [], streamed: true }) },
  {
    name: 'streamed array inside an array',
    input: '*2\r\n*?\r\n:1\r\n.\r\n:2\r\n',
    values: one(array([{ type: 'array', value: [int(1)], streamed: true }, int(2)])),
  },
  // Pipelines
  {
    name: 'pipeline of mixed replies',
    input: '+OK\r\n:1\r\n$3\r\nfoo\r\n*1\r\n:2\r\n-ERR x\r\n_\r\n',
    values: [
      { node: simple('OK') },
      { node: int(1) },
      { node: bulk('foo') },
      { node: array([int(2)]) },
      { node: error('ERR x') },
      { node: nul },
    ],
  },
  {
    name: 'many short strings in an array (region slicing)',
    input: `*20\r\n${Array.from({ length: 20 }, (_, i) => `$${String(i).length + 1}\r\nv${i}\r\n`).join('')}`,
    values: one(array(Array.from({ length: 20 }, (_, i) => bulk(`v${i}`)))),
  },
  {
    name: 'short strings next to non-ASCII ones',
    input: Buffer.from('*3\r\n$2\r\nab\r\n$2\r\né\r\n$2\r\ncd\r\n', 'utf8').toString('latin1'),
    values: one(array([bulk('ab'), bulk('é'), bulk('cd')])),
  },
];

export const MALFORMED: readonly MalformedVector[] = [
  { name: 'unknown type byte', input: 'x\r\n', offset: 0, reason: /unknown type byte 0x78/ },
  { name: 'leading CRLF', input: '\r\n', offset: 0, reason: /unknown type byte 0x0d/ },
  { name: 'unknown type after a value', input: '+OK\r\n@\r\n', offset: 5, reason: /unknown type byte 0x40/ },
  { name: 'integer with a letter', input: ':12a\r\n', offset: 3, reason: /unexpected byte 0x61 in integer/ },
  { name: 'integer without digits', input: ':\r\n', offset: 0, reason: /integer without digits/ },
  { name: 'integer sign only', input: ':-\r\n', offset: 0, reason: /integer without digits/ },
  { name: 'integer with a space', input: ':1 \r\n', offset: 2, reason: /unexpected byte 0x20/ },
  { name: 'integer ending in bare LF', input: ':1\n', offset: 2, reason: /bare LF/ },
  { name: 'integer with CR and no LF', input: ':1\rX', offset: 2, reason: /CR not followed by LF/ },
  { name: 'integer beyond int64', input: ':9223372036854775808\r\n', offset: 0, reason: /64-bit range/ },
  { name: 'integer of 20 digits', input: ':12345678901234567890\r\n', offset: 0, reason: /64-bit range/ },
  { name: 'simple string with bare LF', input: '+OK\nfoo\r\n', offset: 3, reason: /bare LF in simple string/ },
  { name: 'simple string with CR inside', input: '+O\rK\r\n', offset: 2, reason: /CR not followed by LF/ },
  { name: 'simple error with bare LF', input: '-ERR\n', offset: 4, reason: /bare LF in simple error/ },
  { name: 'bulk length not a number', input: '$abc\r\n', offset: 1, reason: /unexpected byte 0x61 in length/ },
  { name: 'bulk length -2', input: '$-2\r\n', offset: 1, reason: /negative length .*only -1 means null/ },
  { name: 'bulk length without digits', input: '$\r\n', offset: 1, reason: /without digits/ },
  { name: 'bulk length with plus', input: '$+5\r\n', offset: 1, reason: /unexpected byte 0x2b/ },
  { name: 'bulk length with a space', input: '$ 5\r\n', offset: 1, reason: /unexpected byte 0x20/ },
  { name: 'bulk length bare LF', input: '$5\nhello\r\n', offset: 2, reason: /bare LF/ },
  {
    name: 'bulk payload longer than declared',
    input: '$5\r\nhelloXX\r\n',
    offset: 9,
    reason: /missing CRLF after the 5-byte bulk string payload/,
  },
  { name: 'bulk payload without CRLF', input: '$5\r\nhello\rX', offset: 10, reason: /missing CRLF/ },
  { name: 'bulk payload with LFCR', input: '$5\r\nhello\n\r', offset: 9, reason: /missing CRLF/ },
  { name: 'bulk payload shorter than declared', input: '$5\r\nhi\r\n+OK\r\n', offset: 9, reason: /missing CRLF/ },
  { name: 'array length -2', input: '*-2\r\n', offset: 1, reason: /negative length/ },
  { name: 'array length not a number', input: '*x\r\n', offset: 1, reason: /unexpected byte 0x78/ },
  { name: 'map length -1', input: '%-1\r\n', offset: 1, reason: /negative length of a map$/ },
  { name: 'set length -1', input: '~-1\r\n', offset: 1, reason: /negative length of a set$/ },
  { name: 'null with content', input: '_x\r\n', offset: 1, reason: /unexpected byte 0x78 in null/ },
  { name: 'null with bare LF', input: '_\n', offset: 1, reason: /bare LF in null/ },
  { name: 'boolean x', input: '#x\r\n', offset: 0, reason: /boolean must be #t or #f/ },
  { name: 'boolean upper case', input: '#T\r\n', offset: 0, reason: /boolean must be/ },
  { name: 'boolean too long', input: '#tt\r\n', offset: 0, reason: /boolean must be/ },
  { name: 'empty double', input: ',\r\n', offset: 0, reason: /double without digits/ },
  {
    name: 'double with a leading point',
    input: ',.5\r\n',
    offset: 0,
    reason: /double without digits before the point/,
  },
  {
    name: 'double with a trailing point',
    input: ',5.\r\n',
    offset: 0,
    reason: /double without digits after the point/,
  },
  { name: 'double with an empty exponent', input: ',1e\r\n', offset: 0, reason: /exponent/ },
  { name: 'double word', input: ',abc\r\n', offset: 0, reason: /double without digits/ },
  { name: 'double hex', input: ',0x10\r\n', offset: 0, reason: /invalid double/ },
  { name: 'double with a space', input: ', 1\r\n', offset: 0, reason: /double without digits/ },
  { name: 'double with two points', input: ',1.5.5\r\n', offset: 0, reason: /invalid double/ },
  { name: 'double infinity spelled out', input: ',infinity\r\n', offset: 0, reason: /double without digits/ },
  { name: 'empty big number', input: '(\r\n', offset: 0, reason: /big number without digits/ },
  { name: 'big number with a letter', input: '(12a\r\n', offset: 3, reason: /invalid digit in a big number/ },
  { name: 'big number sign only', input: '(-\r\n', offset: 0, reason: /big number without digits/ },
  { name: 'verbatim too short', input: '=3\r\ntxt\r\n', offset: 4, reason: /3-byte format and ":"/ },
  { name: 'verbatim without colon', input: '=5\r\ntxt_x\r\n', offset: 4, reason: /3-byte format and ":"/ },
  { name: 'push inside an array', input: '*1\r\n>1\r\n:1\r\n', offset: 4, reason: /push .* inside an aggregate/ },
  {
    name: 'end marker outside a streamed aggregate',
    input: '.\r\n',
    offset: 0,
    reason: /outside a streamed aggregate/,
  },
  {
    name: 'end marker in a sized array',
    input: '*2\r\n:1\r\n.\r\n',
    offset: 8,
    reason: /outside a streamed aggregate/,
  },
  {
    name: 'chunk outside a streamed string',
    input: ';4\r\nHell\r\n',
    offset: 0,
    reason: /chunk .* outside a streamed string/,
  },
  { name: 'non-chunk inside a streamed string', input: '$?\r\n:1\r\n', offset: 4, reason: /holds only ; chunks/ },
  {
    name: 'streamed map ends after a key',
    input: '%?\r\n+a\r\n.\r\n',
    offset: 8,
    reason: /between a key and its value/,
  },
  { name: 'streamed attribute', input: '|?\r\n', offset: 1, reason: /attribute cannot be streamed/ },
  { name: 'streamed push', input: '>?\r\n', offset: 1, reason: /push cannot be streamed/ },
  { name: 'streamed bulk error', input: '!?\r\n', offset: 1, reason: /bulk error cannot be streamed/ },
  {
    name: 'attribute then end marker',
    input: '*?\r\n|1\r\n+a\r\n+b\r\n.\r\n',
    offset: 16,
    reason: /attribute not followed by a value/,
  },
  {
    name: 'empty attribute then end marker',
    input: '*?\r\n|0\r\n.\r\n',
    offset: 8,
    reason: /attribute not followed by a value/,
  },
  { name: 'negative chunk length', input: '$?\r\n;-1\r\n', offset: 5, reason: /negative length/ },
  {
    name: 'chunk payload without CRLF',
    input: '$?\r\n;2\r\nabXX',
    offset: 10,
    reason: /missing CRLF after the 2-byte chunk/,
  },
  // Checked in the order a byte-by-byte reader meets them, so every chunking reports the same error.
  { name: 'verbatim too short, then no CRLF', input: '=3\r\ntxtXX', offset: 4, reason: /3-byte format and ":"/ },
  { name: 'verbatim without colon, then no CRLF', input: '=5\r\ntxt_xYY', offset: 4, reason: /3-byte format/ },
  {
    name: 'simple string past maxLineLength, then a bare CR',
    input: '+abcd\rX',
    offset: 0,
    reason: /maxLineLength 2/,
    code: 'ERR_RESP_LIMIT',
    options: { maxLineLength: 2 },
  },
  {
    name: 'simple error past maxLineLength, then a bare LF',
    input: '-abcd\n',
    offset: 0,
    reason: /maxLineLength 2/,
    code: 'ERR_RESP_LIMIT',
    options: { maxLineLength: 2 },
  },
  {
    name: 'simple string with a bare CR within maxLineLength',
    input: '+a\rbcdef\r\n',
    offset: 2,
    reason: /CR not followed by LF in simple string/,
    options: { maxLineLength: 2 },
  },
  {
    name: 'big number past maxLineLength, then a bare CR',
    input: '(12345\rX',
    offset: 0,
    reason: /maxLineLength 2/,
    code: 'ERR_RESP_LIMIT',
    options: { maxLineLength: 2 },
  },
  { name: 'big number with a bare CR', input: '(12\rX\r\n', offset: 3, reason: /CR not followed by LF in big number/ },
  {
    name: 'double longer than 512 bytes, then a bare CR',
    input: `,${'1'.repeat(600)}\rX`,
    offset: 0,
    reason: /double/,
  },
  { name: 'double with a bare CR', input: ',1.5\rX', offset: 4, reason: /CR not followed by LF in double/ },
  { name: 'double overflow', input: ',5e4324\r\n', offset: 0, reason: /double out of range/ },
  { name: 'negative double overflow', input: ',-5e4324\r\n', offset: 0, reason: /double out of range/ },
  { name: 'double overflow past the largest double', input: ',1.8e308\r\n', offset: 0, reason: /double out of range/ },
  { name: 'double overflow by digits', input: `,1${'0'.repeat(320)}\r\n`, offset: 0, reason: /double out of range/ },
  {
    name: 'bulk past maxBulkLength, header cut',
    input: '$11\r\nhello world\r\n',
    offset: 0,
    reason: /exceeds maxBulkLength 10/,
    code: 'ERR_RESP_LIMIT',
    options: { maxBulkLength: 10 },
  },
  {
    name: 'length of 16 digits',
    input: '$1234567890123456\r\n',
    offset: 1,
    reason: /too large/,
    code: 'ERR_RESP_LIMIT',
  },
];

/** Inputs that hold no complete value: they emit nothing and raise nothing. */
export const INCOMPLETE: readonly string[] = [
  '+OK',
  '+OK\r',
  ':12',
  '$5\r\nhel',
  '$5\r\nhello',
  '$5\r\nhello\r',
  '*2\r\n:1\r\n',
  '%1\r\n+a\r\n',
  '$?\r\n;2\r\nab\r\n',
  '|1\r\n+a\r\n+b\r\n',
  '*?\r\n:1\r\n',
  '$-',
  ',1.5',
];
