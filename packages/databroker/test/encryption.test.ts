import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createDataCipher } from '../src/encryption.ts';
import { thrownCode } from './helpers.ts';

const aad = Buffer.from('7:session:s1');

const codeOf = thrownCode;

describe('data encryption', () => {
  it('opens what it sealed, with a fresh nonce every time', () => {
    const cipher = createDataCipher(randomBytes(32));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (plain) => {
        const sealed = cipher.seal(plain, aad);
        expect(cipher.open(sealed, aad).equals(Buffer.from(plain))).toBe(true);
        expect(cipher.seal(plain, aad).equals(sealed)).toBe(false);
      }),
    );
  });

  it('takes a base64 key and rejects keys of the wrong size', () => {
    const key = randomBytes(32);
    const sealed = createDataCipher(key).seal(Buffer.from('x'), aad);
    expect(createDataCipher(key.toString('base64')).open(sealed, aad).toString()).toBe('x');
    expect(codeOf(() => createDataCipher(randomBytes(16)))).toBe('ERR_DATABROKER_ARGUMENT');
    expect(() => createDataCipher('c2hvcnQ=')).toThrow(/must be 32 bytes, got 5/);
  });

  it('reports every altered byte as tampering', () => {
    const cipher = createDataCipher(randomBytes(32));
    const sealed = cipher.seal(Buffer.from('the data'), aad);
    for (let i = 0; i < sealed.length; i++) {
      const altered = Buffer.from(sealed);
      altered[i] = (altered[i] ?? 0) ^ 1;
      const code = codeOf(() => cipher.open(altered, aad));
      // Bytes of the key id make it look like another key's data: that is said as such.
      expect(code).toBe(i >= 1 && i <= 8 ? 'ERR_DATABROKER_WRONG_KEY' : 'ERR_DATABROKER_TAMPERED');
    }
    expect(codeOf(() => cipher.open(sealed.subarray(0, 20), aad))).toBe('ERR_DATABROKER_TAMPERED');
  });

  it('refuses data moved to another record', () => {
    const cipher = createDataCipher(randomBytes(32));
    const sealed = cipher.seal(Buffer.from('secret'), aad);
    expect(codeOf(() => cipher.open(sealed, Buffer.from('7:session:s2')))).toBe('ERR_DATABROKER_TAMPERED');
  });

  it('tells a wrong key apart, and reads old data with a previous key', () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const sealed = createDataCipher(oldKey).seal(Buffer.from('old'), aad);
    expect(codeOf(() => createDataCipher(newKey).open(sealed, aad))).toBe('ERR_DATABROKER_WRONG_KEY');
    expect(() => createDataCipher(newKey).open(sealed, aad)).toThrow(/decryptionKeys/);
    const rotating = createDataCipher(newKey, [oldKey]);
    expect(rotating.open(sealed, aad).toString()).toBe('old');
    const resealed = rotating.seal(Buffer.from('new'), aad);
    expect(codeOf(() => createDataCipher(oldKey).open(resealed, aad))).toBe('ERR_DATABROKER_WRONG_KEY');
  });
});
