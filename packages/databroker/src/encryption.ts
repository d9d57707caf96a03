// Encryption at rest of record data with AES-256-GCM from node:crypto. A sealed value is
//
//   0       format (1)
//   1..8    key id: the first 8 bytes of HMAC-SHA256(key, KEY_ID_LABEL)
//   9..20   nonce, 12 random bytes
//   21..    ciphertext, then the 16-byte authentication tag
//
// The additional data binds the ciphertext to its record (type and id), so that data copied from
// one record to another fails authentication. The key id lets a reader tell "written with another
// key" from "altered", and pick the right key among old ones during a rotation.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { argumentError, DataBrokerError } from './errors.ts';

const FORMAT = 1;
const KEY_BYTES = 32;
const ID_BYTES = 8;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const OVERHEAD = 1 + ID_BYTES + NONCE_BYTES + TAG_BYTES;
const KEY_ID_LABEL = '@redis-events/databroker key id';

/**
 * A 32-byte key: raw bytes, or base64 text of 32 bytes.
 *
 * @example
 * ```ts
 * const key: EncryptionKey = crypto.randomBytes(32).toString('base64'); // keep it in a secret store
 * ```
 */
export type EncryptionKey = Uint8Array | string;

/** Seals and opens record data. */
export interface DataCipher {
  seal(plain: Uint8Array, associated: Buffer): Buffer;
  open(sealed: Buffer, associated: Buffer): Buffer;
}

interface Key {
  readonly bytes: Buffer;
  readonly id: Buffer;
}

function toKey(key: EncryptionKey, what: string): Key {
  let bytes: Buffer;
  if (typeof key === 'string') {
    bytes = Buffer.from(key, 'base64');
  } else if (key instanceof Uint8Array) {
    bytes = Buffer.from(key);
  } else {
    throw argumentError(`${what} must be 32 bytes (a Uint8Array, or base64 text), not ${typeof key}`);
  }
  if (bytes.length !== KEY_BYTES) {
    throw argumentError(
      `${what} must be ${KEY_BYTES} bytes, got ${bytes.length}; make one with crypto.randomBytes(32) and keep it secret`,
    );
  }
  const id = createHmac('sha256', bytes).update(KEY_ID_LABEL).digest().subarray(0, ID_BYTES);
  return { bytes, id };
}

/**
 * A cipher that seals with `key` and opens data sealed with `key` or any of `previousKeys`
 * (for key rotation).
 */
export function createDataCipher(key: EncryptionKey, previousKeys: readonly EncryptionKey[] = []): DataCipher {
  const current = toKey(key, 'encryptionKey');
  const keys = [current, ...previousKeys.map((k, i) => toKey(k, `decryptionKeys[${i}]`))];
  return {
    seal(plain: Uint8Array, associated: Buffer): Buffer {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.bytes, nonce);
      cipher.setAAD(associated);
      const head = Buffer.allocUnsafe(1 + ID_BYTES + NONCE_BYTES);
      head[0] = FORMAT;
      current.id.copy(head, 1);
      nonce.copy(head, 1 + ID_BYTES);
      return Buffer.concat([head, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    },
    open(sealed: Buffer, associated: Buffer): Buffer {
      if (sealed.length < OVERHEAD || sealed[0] !== FORMAT) {
        throw new DataBrokerError(
          'ERR_DATABROKER_TAMPERED',
          `encrypted data of ${sealed.length} bytes is not in a format this version reads: it was altered or damaged`,
        );
      }
      const id = sealed.subarray(1, 1 + ID_BYTES);
      const key = keys.find((k) => k.id.equals(id));
      if (!key) {
        throw new DataBrokerError(
          'ERR_DATABROKER_WRONG_KEY',
          `data was encrypted with a key whose id is ${id.toString('hex')}, and this backend has ${keys
            .map((k) => k.id.toString('hex'))
            .join(
              ', ',
            )}; pass the key it was written with as encryptionKey, or in decryptionKeys while you rotate keys`,
        );
      }
      const nonce = sealed.subarray(1 + ID_BYTES, 1 + ID_BYTES + NONCE_BYTES);
      const tag = sealed.subarray(sealed.length - TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, nonce);
      decipher.setAAD(associated);
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([
          decipher.update(sealed.subarray(1 + ID_BYTES + NONCE_BYTES, sealed.length - TAG_BYTES)),
          decipher.final(),
        ]);
      } catch (err) {
        throw new DataBrokerError(
          'ERR_DATABROKER_TAMPERED',
          'encrypted data failed authentication: it was altered, damaged, or copied from another record',
          { cause: err },
        );
      }
    },
  };
}
