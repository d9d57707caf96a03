// The wire format of a message in a stream entry, shared with the Go driver
// github.com/covrom/redispubsub so that both can publish to and consume from the same streams:
//   headers  JSON object of string values (the metadata), `{}` or `null` when empty
//   body     the body bytes, unchanged
// Other fields are ignored. Field order does not matter.
import { StreamsError } from './errors.ts';

/** A message body: bytes, or a string sent as UTF-8. */
export type MessageBody = Buffer | Uint8Array | string;

/** Metadata: string keys to string values, both well-formed Unicode. */
export type Metadata = Readonly<Record<string, string>>;

/** What {@link Topic.send} takes. */
export interface OutgoingMessage {
  readonly body: MessageBody;
  readonly metadata?: Metadata | undefined;
}

/** Limits applied when encoding (sending) and decoding (receiving). */
export interface CodecLimits {
  /** Largest body in bytes. Default 16 MiB. */
  readonly maxBodyBytes: number;
  /** Largest encoded metadata (the `headers` JSON) in bytes. Default 64 KiB. */
  readonly maxMetadataBytes: number;
  /** Most metadata keys. Default 1000. */
  readonly maxMetadataKeys: number;
}

/** The default {@link CodecLimits}. */
export const DEFAULT_LIMITS: CodecLimits = Object.freeze({
  maxBodyBytes: 16 * 1024 * 1024,
  maxMetadataBytes: 64 * 1024,
  maxMetadataKeys: 1000,
});

export const HEADERS_FIELD = 'headers';
export const BODY_FIELD = 'body';
const HEADERS_BYTES = Buffer.from(HEADERS_FIELD);
const BODY_BYTES = Buffer.from(BODY_FIELD);
const EMPTY_METADATA: Metadata = Object.freeze({});
const EMPTY_JSON = '{}';

/** An encoded message: the field/value pairs of its XADD, and its size for batching. */
export interface EncodedMessage {
  readonly headers: string;
  readonly body: Buffer | string;
  readonly bytes: number;
}

function bodyToWire(body: MessageBody): Buffer | string {
  if (typeof body === 'string') return body;
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new StreamsError(
    'ERR_STREAMS_ARGUMENT',
    `message body must be a Buffer, Uint8Array or string, not ${body === null ? 'null' : typeof body}`,
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks a message and turns it into the fields of its XADD.
 *
 * @throws {StreamsError} `ERR_STREAMS_ARGUMENT` for an unknown field, a bad body, metadata that is not string pairs,
 * strings that are not well-formed Unicode (lone surrogates), or sizes beyond the limits.
 */
export function encodeMessage(message: OutgoingMessage, limits: CodecLimits = DEFAULT_LIMITS): EncodedMessage {
  if (typeof message !== 'object' || message === null) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', 'send() takes a message object: { body, metadata? }');
  }
  // A typo (`metdata`, `headers`) would otherwise send the message without what was meant.
  for (const key in message) {
    if (key !== 'body' && key !== 'metadata') {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        `message has an unknown field "${key}"; a message is { body, metadata? }`,
      );
    }
  }
  const body = bodyToWire(message.body);
  const bodyBytes = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
  if (bodyBytes > limits.maxBodyBytes) {
    throw new StreamsError(
      'ERR_STREAMS_ARGUMENT',
      `message body is ${bodyBytes} bytes, over the limit of ${limits.maxBodyBytes}; raise limits.maxBodyBytes or store large payloads elsewhere and send a reference`,
    );
  }
  const metadata = message.metadata;
  let headers = EMPTY_JSON;
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) {
      throw new StreamsError('ERR_STREAMS_ARGUMENT', 'message metadata must be a plain object of string values');
    }
    let count = 0;
    for (const key in metadata) {
      if (!Object.hasOwn(metadata, key)) continue;
      const value = metadata[key];
      if (typeof value !== 'string') {
        throw new StreamsError(
          'ERR_STREAMS_ARGUMENT',
          `metadata "${key}" must be a string, not ${value === null ? 'null' : typeof value}`,
        );
      }
      if (!key.isWellFormed() || !value.isWellFormed()) {
        throw new StreamsError(
          'ERR_STREAMS_ARGUMENT',
          `metadata "${key.toWellFormed()}" holds a lone surrogate; keys and values must be valid UTF-8 text`,
        );
      }
      if (++count > limits.maxMetadataKeys) {
        throw new StreamsError(
          'ERR_STREAMS_ARGUMENT',
          `message metadata has more than ${limits.maxMetadataKeys} keys; raise limits.maxMetadataKeys`,
        );
      }
    }
    if (count > 0) headers = JSON.stringify(metadata);
  }
  const headerBytes = headers.length === 2 ? 2 : Buffer.byteLength(headers);
  if (headerBytes > limits.maxMetadataBytes) {
    throw new StreamsError(
      'ERR_STREAMS_ARGUMENT',
      `message metadata is ${headerBytes} bytes as JSON, over the limit of ${limits.maxMetadataBytes}; raise limits.maxMetadataBytes`,
    );
  }
  return { headers, body, bytes: bodyBytes + headerBytes };
}

/** A decoded stream entry. */
export interface DecodedEntry {
  readonly body: Buffer;
  readonly metadata: Metadata;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function malformed(reason: string): StreamsError {
  return new StreamsError('ERR_STREAMS_MALFORMED', reason);
}

function decodeHeaders(raw: Buffer, limits: CodecLimits): Metadata {
  // The common cases first: "{}" from us, "null" from the Go driver with nil metadata.
  if (raw.length === 2 && raw[0] === 0x7b && raw[1] === 0x7d) return EMPTY_METADATA;
  if (raw.length === 4 && raw.toString('latin1') === 'null') return EMPTY_METADATA;
  if (raw.length > limits.maxMetadataBytes) {
    throw malformed(`the headers field is ${raw.length} bytes, over the limit of ${limits.maxMetadataBytes}`);
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    throw malformed('the headers field is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw malformed('the headers field is not JSON');
  }
  if (parsed === null) return EMPTY_METADATA;
  if (!isPlainObject(parsed)) throw malformed('the headers field is not a JSON object');
  let count = 0;
  for (const key in parsed) {
    if (typeof parsed[key] !== 'string') throw malformed(`header "${key}" is not a string`);
    if (++count > limits.maxMetadataKeys) throw malformed(`the headers hold more than ${limits.maxMetadataKeys} keys`);
  }
  return Object.freeze(parsed as Record<string, string>);
}

/**
 * Decodes the field/value list of a stream entry (as Buffers, the way `XREADGROUP` returns it).
 * A missing `headers` field means no metadata; a missing `body` field is malformed.
 *
 * @throws {StreamsError} `ERR_STREAMS_MALFORMED` with the reason.
 */
export function decodeEntry(fields: readonly unknown[], limits: CodecLimits = DEFAULT_LIMITS): DecodedEntry {
  let body: Buffer | undefined;
  let headers: Buffer | undefined;
  if (fields.length % 2 !== 0) throw malformed(`the entry has an odd number of field/value items (${fields.length})`);
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const value = fields[i + 1];
    if (!Buffer.isBuffer(name) || !Buffer.isBuffer(value)) throw malformed('an entry field or value is not a string');
    if (body === undefined && name.equals(BODY_BYTES)) body = value;
    else if (headers === undefined && name.equals(HEADERS_BYTES)) headers = value;
  }
  if (body === undefined) throw malformed('the entry has no "body" field');
  return { body, metadata: headers === undefined ? EMPTY_METADATA : decodeHeaders(headers, limits) };
}
