// The JSON the Go extension writes for an event: `json.Marshal(map[string]interface{}{"name",
// "payload", "timestamp"})`. Go sorts map keys (name, payload, timestamp), escapes <, >, & and
// U+2028/U+2029 in strings, and writes a time.Time in RFC 3339 with nanoseconds, trailing zeros
// of the fraction trimmed (time.RFC3339Nano), "Z" for UTC.

const GO_ESCAPES: Readonly<Record<string, string>> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};
const GO_ESCAPED = /[<>&\u2028\u2029]/;
const GO_ESCAPED_ALL = /[<>&\u2028\u2029]/g;

/**
 * Rewrites JSON text the way Go's `encoding/json` escapes strings: `<`, `>`, `&`, U+2028 and
 * U+2029 become `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`. These characters only occur
 * inside strings in JSON text, so the rewrite never changes the value.
 *
 * @example
 * ```ts
 * goEscapeJson(JSON.stringify({ html: '<b>&</b>' })); // '{"html":"\\u003cb\\u003e\\u0026\\u003c/b\\u003e"}'
 * ```
 */
export function goEscapeJson(json: string): string {
  return GO_ESCAPED.test(json) ? json.replace(GO_ESCAPED_ALL, (c) => GO_ESCAPES[c] as string) : json;
}

/**
 * The start of the Go envelope for an event, up to the opening quote of the timestamp; the
 * append script adds `<RFC 3339 time>"}` once the server has chosen the time.
 */
export function envelopeHead(name: string, payloadJson: string): string {
  return `${envelopeStart(name)}${payloadJson},"timestamp":"`;
}

/** The start of the Go envelope, up to the payload: `{"name":<name>,"payload":`. */
export function envelopeStart(name: string): string {
  return `{"name":${goEscapeJson(JSON.stringify(name))},"payload":`;
}

/**
 * Formats a Unix time in nanoseconds (a decimal string, as in the Go keys) the way Go's
 * `time.RFC3339Nano` does for UTC: `2024-05-13T10:20:30.12345Z`.
 *
 * @example
 * ```ts
 * formatRfc3339Nano('1715595630123450000'); // '2024-05-13T10:20:30.12345Z'
 * formatRfc3339Nano('1715595630000000000'); // '2024-05-13T10:20:30Z'
 * ```
 */
export function formatRfc3339Nano(unixNano: string): string {
  const ns = BigInt(unixNano);
  let seconds = ns / 1_000_000_000n;
  let fraction = ns % 1_000_000_000n;
  if (fraction < 0n) {
    fraction += 1_000_000_000n;
    seconds -= 1n;
  }
  const date = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const digits = fraction === 0n ? '' : `.${fraction.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${date}${digits}Z`;
}

/** The parts of an envelope in the canonical field order, as text slices. */
export interface EnvelopeParts {
  /** The JSON text of the payload, exactly as stored. */
  readonly payloadText: string;
}

/**
 * Finds the payload's JSON text inside an envelope written in Go's field order
 * (`{"name":"…","payload":…,"timestamp":"…"}`, no spaces), without parsing the payload, so a
 * custom deserializer sees the exact bytes (big integers, key order). Returns `undefined` for any
 * other shape; the caller then parses the envelope as a whole.
 */
export function splitEnvelope(text: string): EnvelopeParts | undefined {
  const NAME = '{"name":"';
  if (!text.startsWith(NAME)) return undefined;
  // Scan the name string to its closing quote, stepping over escapes.
  let i = NAME.length;
  const end = text.length;
  while (i < end) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i += 2;
    else if (c === 0x22 /* " */) break;
    else i++;
  }
  if (i >= end) return undefined;
  const PAYLOAD = ',"payload":';
  if (!text.startsWith(PAYLOAD, i + 1)) return undefined;
  const start = i + 1 + PAYLOAD.length;
  const TIMESTAMP = ',"timestamp":"';
  const at = text.lastIndexOf(TIMESTAMP);
  if (at < start || !text.endsWith('"}')) return undefined;
  const stamp = text.slice(at + TIMESTAMP.length, -2);
  if (stamp.includes('"') || stamp.includes('\\')) return undefined;
  return { payloadText: text.slice(start, at) };
}
