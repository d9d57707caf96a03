// Checks of what callers pass in, shared by topics, subscriptions, messages and URL openers.
import { StreamsError } from './errors.ts';

/** Throws ERR_STREAMS_ARGUMENT when `options` holds a property not in `known` (a typo, most often). */
export function rejectUnknownFields(options: object, known: readonly string[], what: string): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new StreamsError(
        'ERR_STREAMS_ARGUMENT',
        `${what} has an unknown field "${key}"; known fields: ${known.join(', ')}`,
      );
    }
  }
}
