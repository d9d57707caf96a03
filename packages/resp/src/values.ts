import type { ReplyError } from './errors.ts';

/**
 * A RESP3 verbatim string (`=`): text with its three-letter format, `txt` for plain text and
 * `mkd` for markdown. `String(value)` and template literals give the text.
 *
 * @example
 * ```ts
 * const info = await connection.send(['INFO', 'server']); // RESP3: a VerbatimString
 * if (info instanceof VerbatimString) console.log(info.format, info.text.length); // "txt" 1234
 * ```
 */
export class VerbatimString<Text extends string | Buffer = string | Buffer> {
  /** Three characters, for example `txt` or `mkd`. */
  readonly format: string;
  /** The text after the `xxx:` prefix, as a string or a Buffer (decoder option `strings`). */
  readonly text: Text;

  constructor(format: string, text: Text) {
    this.format = format;
    this.text = text;
  }

  toString(): string {
    return typeof this.text === 'string' ? this.text : this.text.toString('utf8');
  }
}

/**
 * A value that the server annotated with a RESP3 attribute (`|`), in the plain (untyped) value
 * mapping. Attributes are rare: a value without one is never wrapped.
 *
 * @example
 * ```ts
 * // |1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n *1\r\n$1\r\na\r\n  (spec example)
 * if (reply instanceof Attributed) console.log(reply.attributes, reply.value); // Map {...} ['a']
 * ```
 */
export class Attributed<Value = RespValue> {
  /** The annotated value. */
  readonly value: Value;
  /** The attribute map, mapped like every other map (decoder option `maps`). */
  readonly attributes: RespMapValue;

  constructor(value: Value, attributes: RespMapValue) {
    this.value = value;
    this.attributes = attributes;
  }
}

/** A RESP3 map in the plain value mapping: a `Map` (default), a plain object, or a flat `[k, v, ...]` array. */
export type RespMapValue = Map<RespValue, RespValue> | { [key: string]: RespValue } | RespValue[];

/**
 * A decoded value in the plain mapping (decoder option `typed` off). Which of these a RESP type
 * becomes is chosen once, at construction: see the README's value mapping table.
 */
export type RespValue =
  | string
  | Buffer
  | number
  | bigint
  | boolean
  | null
  | ReplyError
  | VerbatimString
  | Attributed<RespValue>
  | RespValue[]
  | Set<RespValue>
  | Map<RespValue, RespValue>
  | { [key: string]: RespValue };

/** Attributes of a {@link RespNode}: the attribute map as key/value pairs, in wire order. */
export type RespNodeAttributes = readonly (readonly [RespNode, RespNode])[];

interface NodeBase {
  /** Present when a RESP3 attribute (`|`) annotated this value. */
  readonly attributes?: RespNodeAttributes | undefined;
}

/** `+OK` */
export interface SimpleStringNode extends NodeBase {
  readonly type: 'simple-string';
  readonly value: string;
}
/** `-ERR ...` */
export interface SimpleErrorNode extends NodeBase {
  readonly type: 'simple-error';
  readonly value: ReplyError;
}
/** `:42`; a `string` only with `bigIntegers: 'string'` beyond 2^53 - 1. */
export interface IntegerNode extends NodeBase {
  readonly type: 'integer';
  readonly value: number | bigint | string;
}
/** `$5\r\nhello`; `null` for the RESP2 null bulk string `$-1`. */
export interface BulkStringNode extends NodeBase {
  readonly type: 'bulk-string';
  readonly value: string | Buffer | null;
  /** True when it came as a RESP3 streamed string (`$?` and `;` chunks). */
  readonly streamed?: boolean | undefined;
}
/** `*2\r\n...`; `null` for the RESP2 null array `*-1`. */
export interface ArrayNode extends NodeBase {
  readonly type: 'array';
  readonly value: RespNode[] | null;
  /** True when it came as a RESP3 streamed aggregate (`*?` ... `.`). */
  readonly streamed?: boolean | undefined;
}
/** `_` */
export interface NullNode extends NodeBase {
  readonly type: 'null';
  readonly value: null;
}
/** `#t` / `#f` */
export interface BooleanNode extends NodeBase {
  readonly type: 'boolean';
  readonly value: boolean;
}
/** `,3.14`, `,inf`, `,nan` */
export interface DoubleNode extends NodeBase {
  readonly type: 'double';
  readonly value: number;
}
/** `(3492890328409238509324850943850943825024385` */
export interface BigNumberNode extends NodeBase {
  readonly type: 'big-number';
  readonly value: bigint | string;
}
/** `!21\r\nSYNTAX invalid syntax` */
export interface BulkErrorNode extends NodeBase {
  readonly type: 'bulk-error';
  readonly value: ReplyError;
}
/** `=15\r\ntxt:Some string` */
export interface VerbatimStringNode extends NodeBase {
  readonly type: 'verbatim-string';
  readonly format: string;
  readonly value: string | Buffer;
}
/** `%2\r\n...`: pairs in wire order, duplicates kept. */
export interface MapNode extends NodeBase {
  readonly type: 'map';
  readonly value: (readonly [RespNode, RespNode])[];
  readonly streamed?: boolean | undefined;
}
/** `~2\r\n...`: elements in wire order, duplicates kept. */
export interface SetNode extends NodeBase {
  readonly type: 'set';
  readonly value: RespNode[];
  readonly streamed?: boolean | undefined;
}
/** `>3\r\n...`: out-of-band data (pub/sub messages, invalidations). */
export interface PushNode extends NodeBase {
  readonly type: 'push';
  readonly value: RespNode[];
}

/**
 * A decoded value in the typed mapping (decoder option `typed: true`): every RESP type stays
 * distinguishable, including the three nulls, attributes and streamed forms, so that
 * `encodeNode(node)` writes the same bytes back (doubles in their shortest form).
 *
 * @example
 * ```ts
 * const decoder = new RespDecoder<RespNode>({ typed: true, onReply: (node) => console.log(node) });
 * decoder.feed(Buffer.from(',1.5\r\n')); // { type: 'double', value: 1.5 }
 * ```
 */
export type RespNode =
  | SimpleStringNode
  | SimpleErrorNode
  | IntegerNode
  | BulkStringNode
  | ArrayNode
  | NullNode
  | BooleanNode
  | DoubleNode
  | BigNumberNode
  | BulkErrorNode
  | VerbatimStringNode
  | MapNode
  | SetNode
  | PushNode;

/** The `type` tags of {@link RespNode}. */
export type RespNodeType = RespNode['type'];
