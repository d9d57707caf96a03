import type { JsonValue } from './records.ts';

/**
 * Turns record data into bytes and back. The default is {@link jsonCodec}; pass
 * {@link bytesCodec} or your own (protobuf, MessagePack...) as the `codec` option. Errors thrown
 * here reach the caller as `ERR_DATABROKER_CODEC`.
 *
 * @example
 * ```ts
 * const textCodec: RecordCodec<string> = {
 *   encode: (text) => Buffer.from(text, 'utf8'),
 *   decode: (bytes) => bytes.toString('utf8'),
 * };
 * const broker = new DataBroker(redis, { codec: textCodec });
 * ```
 */
export interface RecordCodec<T> {
  /** Bytes to store for `data`. */
  encode(data: T): Uint8Array;
  /** The data back from stored bytes. `bytes` may be a view into a larger buffer: copy it to keep it. */
  decode(bytes: Buffer): T;
}

/**
 * JSON data, the default codec: `JSON.stringify` on the way in, `JSON.parse` on the way out.
 *
 * @example
 * ```ts
 * const broker = new DataBroker(redis, { codec: jsonCodec }); // the same as leaving codec out
 * ```
 */
export const jsonCodec: RecordCodec<JsonValue> = {
  encode(data: JsonValue): Uint8Array {
    const text = JSON.stringify(data);
    // JSON.stringify gives undefined for undefined, functions and symbols: nothing JSON can hold.
    if (text === undefined) throw new TypeError(`${typeof data} is not a JSON value`);
    return Buffer.from(text, 'utf8');
  },
  decode(bytes: Buffer): JsonValue {
    return JSON.parse(bytes.toString('utf8')) as JsonValue;
  },
};

/**
 * Raw bytes: data is stored as given and read back as a `Buffer`.
 *
 * @example
 * ```ts
 * const broker = new DataBroker<Uint8Array>(redis, { codec: bytesCodec });
 * await broker.put([{ type: 'blob', id: 'b1', data: Buffer.from([1, 2, 3]) }]);
 * ```
 */
export const bytesCodec: RecordCodec<Uint8Array> = {
  encode(data: Uint8Array): Uint8Array {
    if (!(data instanceof Uint8Array)) throw new TypeError(`bytesCodec needs a Uint8Array, not ${typeof data}`);
    return data;
  },
  decode(bytes: Buffer): Uint8Array {
    return bytes;
  },
};
