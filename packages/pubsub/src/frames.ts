// What a subscriber connection receives, told apart without allocating: RESP3 pushes and RESP2
// arrays have the same shape (`[kind, ...]`), with the kind as a string or, when payloads are
// decoded as Buffers, as a Buffer.

/**
 * The three kinds of subscription: channels, patterns and sharded channels.
 *
 * @example
 * ```ts
 * subscription.on('lost', ({ kind, names }) => console.warn(`lost ${kind}s`, names)); // 'channel' | 'pattern' | 'shard'
 * ```
 */
export type SubscriptionKind = 'channel' | 'pattern' | 'shard';

/**
 * How a message reached us: `message` (a channel), `pmessage` (a pattern) or `smessage` (a shard channel).
 *
 * @example
 * ```ts
 * if (event.kind === 'pmessage') console.log(`${event.channel} matched ${event.pattern}`);
 * ```
 */
export type MessageKind = 'message' | 'pmessage' | 'smessage';

// Frame types: small integers so that the hot path is one switch.
export const FRAME_OTHER = 0;
export const FRAME_MESSAGE = 1;
export const FRAME_PMESSAGE = 2;
export const FRAME_SMESSAGE = 3;
export const FRAME_SUBSCRIBE = 4;
export const FRAME_PSUBSCRIBE = 5;
export const FRAME_SSUBSCRIBE = 6;
export const FRAME_UNSUBSCRIBE = 7;
export const FRAME_PUNSUBSCRIBE = 8;
export const FRAME_SUNSUBSCRIBE = 9;
export const FRAME_PONG = 10;

const NAMES: readonly string[] = [
  '',
  'message',
  'pmessage',
  'smessage',
  'subscribe',
  'psubscribe',
  'ssubscribe',
  'unsubscribe',
  'punsubscribe',
  'sunsubscribe',
  'pong',
];
const BUFFERS: readonly Buffer[] = NAMES.map((name) => Buffer.from(name, 'latin1'));

function stringType(head: string): number {
  switch (head) {
    case 'message':
      return FRAME_MESSAGE;
    case 'pmessage':
      return FRAME_PMESSAGE;
    case 'smessage':
      return FRAME_SMESSAGE;
    case 'subscribe':
      return FRAME_SUBSCRIBE;
    case 'psubscribe':
      return FRAME_PSUBSCRIBE;
    case 'ssubscribe':
      return FRAME_SSUBSCRIBE;
    case 'unsubscribe':
      return FRAME_UNSUBSCRIBE;
    case 'punsubscribe':
      return FRAME_PUNSUBSCRIBE;
    case 'sunsubscribe':
      return FRAME_SUNSUBSCRIBE;
    case 'pong':
      return FRAME_PONG;
    default:
      return FRAME_OTHER;
  }
}

function bufferType(head: Buffer): number {
  const is = (type: number) => (head.equals(BUFFERS[type] as Buffer) ? type : FRAME_OTHER);
  switch (head.length) {
    case 4:
      return is(FRAME_PONG);
    case 7:
      return is(FRAME_MESSAGE);
    case 8:
      return head[0] === 0x70 ? is(FRAME_PMESSAGE) : is(FRAME_SMESSAGE);
    case 9:
      return is(FRAME_SUBSCRIBE);
    case 10:
      return head[0] === 0x70 ? is(FRAME_PSUBSCRIBE) : is(FRAME_SSUBSCRIBE);
    case 11:
      return is(FRAME_UNSUBSCRIBE);
    case 12:
      return head[0] === 0x70 ? is(FRAME_PUNSUBSCRIBE) : is(FRAME_SUNSUBSCRIBE);
    default:
      return FRAME_OTHER;
  }
}

function isText(value: unknown): value is string | Buffer {
  return typeof value === 'string' || Buffer.isBuffer(value);
}

/**
 * The frame type of a decoded value: a message, a (un)subscribe confirmation, a RESP2
 * subscriber-mode PONG (`['pong', '']`), or `FRAME_OTHER`. The shape is checked too (element
 * count and types), so a malformed frame is `FRAME_OTHER`, never a message with holes.
 */
export function frameType(value: unknown): number {
  if (!Array.isArray(value) || value.length < 2) return FRAME_OTHER;
  const head: unknown = value[0];
  const type = typeof head === 'string' ? stringType(head) : Buffer.isBuffer(head) ? bufferType(head) : FRAME_OTHER;
  switch (type) {
    case FRAME_MESSAGE:
    case FRAME_SMESSAGE:
      return value.length === 3 && isText(value[1]) && isText(value[2]) ? type : FRAME_OTHER;
    case FRAME_PMESSAGE:
      return value.length === 4 && isText(value[1]) && isText(value[2]) && isText(value[3]) ? type : FRAME_OTHER;
    case FRAME_PONG:
      return value.length === 2 ? type : FRAME_OTHER;
    case FRAME_OTHER:
      return FRAME_OTHER;
    default:
      // A confirmation: [kind, name or null, count].
      return value.length === 3 && (value[1] === null || isText(value[1])) && typeof value[2] === 'number'
        ? type
        : FRAME_OTHER;
  }
}

/** A (un)subscribe confirmation, read from a frame of a confirmation type. */
export interface Confirmation {
  readonly kind: SubscriptionKind;
  readonly subscribe: boolean;
  /** The channel or pattern; `null` for an argument-less unsubscribe with nothing to unsubscribe. */
  readonly name: string | null;
  /** What the server reports as the client's remaining subscriptions of that family. */
  readonly count: number;
}

const CONFIRMATIONS: readonly (readonly [SubscriptionKind, boolean] | undefined)[] = [
  undefined,
  undefined,
  undefined,
  undefined,
  ['channel', true],
  ['pattern', true],
  ['shard', true],
  ['channel', false],
  ['pattern', false],
  ['shard', false],
];

/** Reads a confirmation; `undefined` when the frame is not one. */
export function confirmation(value: unknown, type: number = frameType(value)): Confirmation | undefined {
  const entry = CONFIRMATIONS[type];
  if (entry === undefined) return undefined;
  const frame = value as [unknown, string | Buffer | null, number];
  return { kind: entry[0], subscribe: entry[1], name: text(frame[1]), count: frame[2] };
}

/** A channel or pattern name as a string (names come back as Buffers when payloads are Buffers). */
export function text<T extends string | Buffer | null>(value: T): T extends null ? null : string;
export function text(value: string | Buffer | null): string | null {
  if (value === null || typeof value === 'string') return value;
  return value.toString('utf8');
}

/** The RESP command of a kind of subscription. */
export const SUBSCRIBE_COMMAND: Readonly<Record<SubscriptionKind, string>> = {
  channel: 'SUBSCRIBE',
  pattern: 'PSUBSCRIBE',
  shard: 'SSUBSCRIBE',
};

/** The RESP command that undoes {@link SUBSCRIBE_COMMAND}. */
export const UNSUBSCRIBE_COMMAND: Readonly<Record<SubscriptionKind, string>> = {
  channel: 'UNSUBSCRIBE',
  pattern: 'PUNSUBSCRIBE',
  shard: 'SUNSUBSCRIBE',
};
