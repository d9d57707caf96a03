// node:diagnostics_channel publications, for tracers and metrics (such as
// @redis-events/opentelemetry). Nothing is built or published unless someone subscribes: every
// call site checks `hasSubscribers` first. The contexts are documented in the README
// ("Diagnostics channels"); their fields are a stable interface.
import { channel, type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import { isClusterClient, type RedisClient } from './client.ts';
import type { Metadata } from './codec.ts';

/** The channel names, for `subscribe(name, ...)` and `tracingChannel(name)`. */
export const CHANNELS: {
  readonly send: 'redis-events:streams-driver:send';
  readonly receive: 'redis-events:streams-driver:receive';
  readonly ack: 'redis-events:streams-driver:ack';
  readonly nack: 'redis-events:streams-driver:nack';
  readonly redelivery: 'redis-events:streams-driver:redelivery';
  readonly deadLetter: 'redis-events:streams-driver:dead-letter';
} = Object.freeze({
  /** Tracing channel: each `topic.send()`, from the call to the entry ID (or the failure). */
  send: 'redis-events:streams-driver:send',
  /** Tracing channel: each `subscription.receive()` (and iterator step), from the call to the message. */
  receive: 'redis-events:streams-driver:receive',
  /** Tracing channel: each `message.ack()`, from the call to Redis's confirmation. */
  ack: 'redis-events:streams-driver:ack',
  /** Tracing channel: each `message.nack()`, from the call to Redis's confirmation. */
  nack: 'redis-events:streams-driver:nack',
  /** Each message delivered again (its `deliveryAttempt` is above 1). */
  redelivery: 'redis-events:streams-driver:redelivery',
  /** Each message moved to the dead-letter stream (by `deadLetter()`, `maxDeliveries` or as malformed). */
  deadLetter: 'redis-events:streams-driver:dead-letter',
});

/** The trace-context fields a carrier may hold, stored as message metadata of the same names. */
export const CARRIER_FIELDS: readonly ['traceparent', 'tracestate'] = ['traceparent', 'tracestate'];

/**
 * The context of a `topic.send()` on the `redis-events:streams-driver:send` tracing channel
 * (events `tracing:redis-events:streams-driver:send:start`, `:end`, `:asyncStart`, `:asyncEnd`,
 * `:error`). A subscriber may fill `carrier` at `start`; its `traceparent` and `tracestate` are
 * stored as metadata of the message (an application's own metadata of those names wins).
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * tracingChannel<object, SendTrace>('redis-events:streams-driver:send').subscribe({
 *   start: (send) => void (send.carrier.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'),
 *   asyncEnd: (send) => console.log(send.destination, send.messageId),
 * });
 * ```
 */
export interface SendTrace {
  /** The topic's stream key. */
  readonly destination: string;
  /** The body's size in bytes (undefined when the body is not a string or bytes: the send fails). */
  readonly bodySize: number | undefined;
  /** Filled by subscribers at `start`: `traceparent`, `tracestate`. */
  readonly carrier: Record<string, string>;
  /** The server (standalone); undefined in a cluster. */
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** Set once stored: the entry ID (also in `result`). */
  messageId?: string | undefined;
  /** Set by the tracing channel: the entry ID. */
  result?: unknown;
  /** Set by the tracing channel on failure: the StreamsError. */
  error?: unknown;
}

/**
 * The context of a `subscription.receive()` (or a step of `messages()`) on the
 * `redis-events:streams-driver:receive` tracing channel. It spans the wait for a message; at its
 * end the message's fields are set, `carrier` holding the `traceparent` and `tracestate` its
 * sender stored.
 *
 * @example
 * ```ts
 * tracingChannel<object, ReceiveTrace>('redis-events:streams-driver:receive').subscribe({
 *   asyncEnd: (r) => console.log(r.destination, r.group, r.messageId, r.deliveryAttempt),
 * });
 * ```
 */
export interface ReceiveTrace {
  readonly destination: string;
  readonly group: string;
  readonly consumer: string;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** Set once a message arrived. */
  messageId?: string | undefined;
  bodySize?: number | undefined;
  deliveryAttempt?: number | undefined;
  /** Set once a message arrived: the trace-context fields it carries (possibly none). */
  carrier?: Record<string, string> | undefined;
  /** Set by the tracing channel: the Message. */
  result?: unknown;
  /** Set by the tracing channel on failure: the StreamsError (an abort or a shutdown included). */
  error?: unknown;
}

/**
 * The context of a `message.ack()` or `message.nack()` on `redis-events:streams-driver:ack` or
 * `:nack`: from the call to Redis's confirmation of the batch that carried it.
 *
 * @example
 * ```ts
 * tracingChannel<object, SettleTrace>('redis-events:streams-driver:ack').subscribe({
 *   error: (s) => console.warn(`ack of ${s.messageId} failed`, s.error),
 * });
 * ```
 */
export interface SettleTrace {
  readonly destination: string;
  readonly group: string;
  readonly consumer: string;
  readonly messageId: string;
  readonly deliveryAttempt: number;
  /** Set by the tracing channel on failure: the StreamsError. */
  error?: unknown;
}

/**
 * Published on `redis-events:streams-driver:redelivery` for each message a subscription hands
 * out again (its `deliveryAttempt` is above 1: it was nacked, or its ack deadline passed).
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe('redis-events:streams-driver:redelivery', (r) => redeliveries.add((r as RedeliveryEvent).count));
 * ```
 */
export interface RedeliveryEvent {
  readonly destination: string;
  readonly group: string;
  readonly consumer: string;
  readonly messageId: string;
  readonly deliveryAttempt: number;
  /** Messages in this event: always 1. */
  readonly count: number;
}

/**
 * Published on `redis-events:streams-driver:dead-letter` for each message moved to the
 * dead-letter stream, once Redis confirmed the move.
 *
 * @example
 * ```ts
 * subscribe('redis-events:streams-driver:dead-letter', (d) => console.warn((d as DeadLetterNotice).reason));
 * ```
 */
export interface DeadLetterNotice {
  readonly destination: string;
  readonly group: string;
  readonly consumer: string;
  readonly messageId: string;
  /** `rejected` (or the application's reason), `max-deliveries`, `malformed: ...`. */
  readonly reason: string;
  /** Delivery attempts it had. */
  readonly deliveryAttempt: number;
  /** The dead-letter stream's key. */
  readonly deadLetterKey: string;
  /** Messages in this event: always 1. */
  readonly count: number;
}

export const sendChannel: TracingChannel<object, SendTrace> = tracingChannel(CHANNELS.send);
export const receiveChannel: TracingChannel<object, ReceiveTrace> = tracingChannel(CHANNELS.receive);
export const ackChannel: TracingChannel<object, SettleTrace> = tracingChannel(CHANNELS.ack);
export const nackChannel: TracingChannel<object, SettleTrace> = tracingChannel(CHANNELS.nack);
export const redeliveryChannel: ReturnType<typeof channel> = channel(CHANNELS.redelivery);
export const deadLetterChannel: ReturnType<typeof channel> = channel(CHANNELS.deadLetter);

/** `serverAddress` and `serverPort` of a standalone client; undefined for a Cluster. */
export function serverOf(client: RedisClient): { serverAddress: string | undefined; serverPort: number | undefined } {
  if (isClusterClient(client)) return { serverAddress: undefined, serverPort: undefined };
  const options = (client as { options?: { host?: string; port?: number; path?: string } }).options;
  if (options?.path) return { serverAddress: options.path, serverPort: undefined };
  return { serverAddress: options?.host, serverPort: options?.port };
}

/** The trace-context fields of a received message's metadata. */
export function carrierOf(metadata: Metadata): Record<string, string> {
  const carrier: Record<string, string> = {};
  for (const field of CARRIER_FIELDS) {
    const value = metadata[field];
    if (typeof value === 'string') carrier[field] = value;
  }
  return carrier;
}

/** The size in bytes of a body as given to `send()`, or undefined for what `send()` refuses. */
export function bodySizeOf(body: unknown): number | undefined {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  return undefined;
}
