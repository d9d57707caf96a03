// Options objects are checked for names this package does not know: a typo (`readTimout`) fails
// at once with the list of what is accepted, instead of being silently ignored.
import { ReplicationError } from './errors.ts';

/**
 * Throws `ERR_REPLICATION_ARGUMENT` when `options` holds a field that is not in `known`.
 * `undefined` and non-objects are left to the caller's own checks.
 */
export function rejectUnknownOptions(options: unknown, known: readonly string[], what: string): void {
  if (typeof options !== 'object' || options === null) return;
  for (const name of Object.keys(options)) {
    if (!known.includes(name))
      throw new ReplicationError(
        'ERR_REPLICATION_ARGUMENT',
        `${what} has no option ${JSON.stringify(name)}; it takes ${known.join(', ')}`,
      );
  }
}

/** The options of `RdbParser`. */
export const PARSER_OPTIONS: readonly string[] = [
  'batchSize',
  'maxPartBytes',
  'maxBlobBytes',
  'verifyChecksum',
  'maxStreamGroupRecords',
];

/** Takes the parser's options out of a larger options object. */
export function parserOptionsOf<T extends object>(options: T): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of PARSER_OPTIONS) if (name in options) out[name] = (options as Record<string, unknown>)[name];
  return out;
}
