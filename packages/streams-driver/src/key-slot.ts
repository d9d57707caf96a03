// Redis Cluster key slots (resp's keySlot). The dead-letter stream must share its topic's slot so
// that moving an entry there and acknowledging it at the source is one atomic script.
import { keySlot } from '@redis-events/resp';

export { keySlot };

/** The bytes Redis hashes: the content of the first non-empty `{...}`, else the whole key. */
function hashedPart(key: Buffer): Buffer {
  const open = key.indexOf(0x7b); // {
  if (open === -1) return key;
  const close = key.indexOf(0x7d, open + 1); // }
  if (close === -1 || close === open + 1) return key;
  return key.subarray(open + 1, close);
}

/** True when the key carries a hash tag Redis uses (a non-empty first `{...}`). */
export function hasHashTag(key: string): boolean {
  const bytes = Buffer.from(key);
  return hashedPart(bytes) !== bytes;
}

/**
 * The default dead-letter stream of a topic, in the same cluster slot: `<key>:dead` when the key
 * has a hash tag (the tag stays first), else `{<key>}:dead`. Returns `undefined` when no such
 * name shares the slot (a key with braces but no usable tag); the caller then asks for an
 * explicit name.
 */
export function defaultDeadLetterKey(topic: string): string | undefined {
  const candidate = hasHashTag(topic) ? `${topic}:dead` : `{${topic}}:dead`;
  return keySlot(candidate) === keySlot(topic) ? candidate : undefined;
}
