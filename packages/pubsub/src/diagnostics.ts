// node:diagnostics_channel publications, for tracers and metrics (such as
// @redis-events/opentelemetry). Nothing is built or published unless someone subscribes: every
// call site checks `hasSubscribers` first. The payloads are documented in the README
// ("Diagnostics channels"); their fields are a stable interface.
import { channel, type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import type { MessageKind, SubscriptionKind } from './frames.ts';
import type { OverflowPolicy, PubSubGap } from './message-buffer.ts';

/** The channel names, for `subscribe(name, ...)` and `tracingChannel(name)`. */
export const CHANNELS: {
  readonly subscribe: 'redis-events:pubsub:subscribe';
  readonly publish: 'redis-events:pubsub:publish';
  readonly message: 'redis-events:pubsub:message';
  readonly drop: 'redis-events:pubsub:drop';
  readonly gap: 'redis-events:pubsub:gap';
} = Object.freeze({
  /** Tracing channel: each (un)subscribe call, from the call to the server's confirmation. */
  subscribe: 'redis-events:pubsub:subscribe',
  /** Tracing channel: each `publish` / `spublish`, from the call to the server's answer. */
  publish: 'redis-events:pubsub:publish',
  /** Each message a subscription receives from the server (before its buffer policy). */
  message: 'redis-events:pubsub:message',
  /** Each message the overflow policy drops. */
  drop: 'redis-events:pubsub:drop',
  /** Each `reconnect` or `moved` gap, once the subscriptions are whole again. */
  gap: 'redis-events:pubsub:gap',
});

/**
 * The context of an (un)subscribe call, on the `redis-events:pubsub:subscribe` tracing channel
 * (events `tracing:redis-events:pubsub:subscribe:start`, `:end`, `:asyncStart`, `:asyncEnd`,
 * `:error`). `asyncEnd` comes once the server confirmed the call; `error` holds its PubSubError.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * tracingChannel<object, SubscribeTrace>('redis-events:pubsub:subscribe').subscribe({
 *   asyncEnd: (call) => console.log(call.command, call.destinations, call.subscriptionId),
 *   error: (call) => console.warn(call.command, call.error),
 * });
 * ```
 */
export interface SubscribeTrace {
  /** `SUBSCRIBE`, `UNSUBSCRIBE`, `PSUBSCRIBE`, `PUNSUBSCRIBE`, `SSUBSCRIBE` or `SUNSUBSCRIBE`. */
  readonly command: string;
  /** What the names are: channels, patterns or shard channels. */
  readonly kind: SubscriptionKind;
  /** The names of the call; empty for an unsubscribe from every name of its kind. */
  readonly destinations: readonly string[];
  /** The subscription ({@link Subscription.id}), to match its messages, drops and gaps. */
  readonly subscriptionId: number;
  /** The server (standalone); undefined in a cluster, where a call may reach several nodes. */
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** Set by the tracing channel on failure: the PubSubError the call rejected with. */
  error?: unknown;
}

/**
 * The context of a `publish` or `spublish`, on the `redis-events:pubsub:publish` tracing
 * channel. `result` is the number of subscribers that received it (in a cluster: those of the
 * node that took it). Pub/Sub messages carry no metadata, so there is no trace `carrier` to fill.
 *
 * @example
 * ```ts
 * tracingChannel<object, PublishTrace>('redis-events:pubsub:publish').subscribe({
 *   asyncEnd: (p) => sent.add(1, { channel: p.destination, receivers: p.result }),
 * });
 * ```
 */
export interface PublishTrace {
  /** `PUBLISH` or `SPUBLISH`. */
  readonly command: 'PUBLISH' | 'SPUBLISH';
  /** The channel (or shard channel). */
  readonly destination: string;
  /** The payload's size in bytes. */
  readonly bodySize: number;
  /** The server (standalone); undefined in a cluster (the node is chosen per command). */
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** Set by the tracing channel: how many subscribers received it. */
  result?: unknown;
  /** Set by the tracing channel on failure: the PubSubError. */
  error?: unknown;
}

/**
 * Published on `redis-events:pubsub:message` for each message a subscription receives, as it
 * arrives from the server and before the buffer's overflow policy sees it (so a message can be
 * followed by a `drop` of itself, or of an older one).
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * subscribe('redis-events:pubsub:message', (m) => received.add(1, { channel: (m as MessageEvent).destination }));
 * ```
 */
export interface MessageEvent {
  readonly subscriptionId: number;
  /** `message` (a channel), `pmessage` (a pattern) or `smessage` (a shard channel). */
  readonly kind: MessageKind;
  /** The channel it was published to. */
  readonly destination: string;
  /** The pattern that matched (`pmessage`), else undefined. */
  readonly pattern: string | undefined;
  /** The payload's size in bytes. */
  readonly bodySize: number;
  /** The node it came from. */
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
}

/**
 * Published on `redis-events:pubsub:drop` for each message the overflow policy drops: the oldest
 * buffered one (`drop-oldest`), the arriving one (`drop-newest`), or the one that did not fit and
 * ended the subscription (`error`). A counter of these events is the subscription's drop metric;
 * `dropped` is the running total ({@link Subscription.dropped}).
 *
 * @example
 * ```ts
 * subscribe('redis-events:pubsub:drop', (d) => drops.add((d as DropEvent).count, { policy: (d as DropEvent).policy }));
 * ```
 */
export interface DropEvent {
  readonly subscriptionId: number;
  readonly policy: OverflowPolicy;
  /** Messages dropped by this event: always 1. */
  readonly count: number;
  /** Messages dropped by the subscription so far, this one included. */
  readonly dropped: number;
  /** The dropped message's kind and channel. */
  readonly kind: MessageKind;
  readonly destination: string;
  /** The dropped payload's size (bytes for a Buffer, string length for a string). */
  readonly bodySize: number;
  /** What the buffer holds after the drop, and its limits. */
  readonly buffered: number;
  readonly bufferedBytes: number;
  readonly highWaterMark: number;
  readonly maxBufferedBytes: number;
}

/**
 * Published on `redis-events:pubsub:gap` for each `reconnect` or `moved` gap, when the
 * subscriptions it concerns are whole again (the moment the subscription's `gap` event fires):
 * the gap's fields (`reason`, `channels`, `patterns`, `shardChannels`, `cause`, `since`, `until`)
 * and the subscription's id. Overflow drops are on `redis-events:pubsub:drop`.
 *
 * @example
 * ```ts
 * subscribe('redis-events:pubsub:gap', (g) => gaps.add(1, { reason: (g as GapEvent).reason }));
 * ```
 */
export interface GapEvent extends Omit<PubSubGap, 'kind' | 'dropped'> {
  readonly subscriptionId: number;
}

export const subscribeChannel: TracingChannel<object, SubscribeTrace> = tracingChannel(CHANNELS.subscribe);
export const publishChannel: TracingChannel<object, PublishTrace> = tracingChannel(CHANNELS.publish);
export const messageChannel: ReturnType<typeof channel> = channel(CHANNELS.message);
export const dropChannel: ReturnType<typeof channel> = channel(CHANNELS.drop);
export const gapChannel: ReturnType<typeof channel> = channel(CHANNELS.gap);
