// node:diagnostics_channel publications, for tracers and metrics (such as
// @redis-events/opentelemetry). Nothing is built or published unless someone subscribes: every
// call site checks `hasSubscribers` first. The contexts are documented in the README
// ("Diagnostics channels"); their fields are a stable interface.
import { type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import type { EventStoreLayout } from './config.ts';
import type { StoredEvent } from './event.ts';
import { isCluster, type RedisClient } from './redis-client.ts';

/** The channel names, for `tracingChannel(name)`. */
export const CHANNELS: {
  readonly append: 'redis-events:event-store:append';
  readonly read: 'redis-events:event-store:read';
  readonly tail: 'redis-events:event-store:tail';
} = Object.freeze({
  /** Tracing channel: each `storeEvent()` (and a mediator's publish), from the call to the stored id. */
  append: 'redis-events:event-store:append',
  /** Tracing channel: each `read()` / `getEvents()`, from the call to the decoded events. */
  read: 'redis-events:event-store:read',
  /** Tracing channel: each batch a tail reads after it was woken, from the read to the decoded events. */
  tail: 'redis-events:event-store:tail',
});

/**
 * The context of a `storeEvent()` on the `redis-events:event-store:append` tracing channel
 * (events `tracing:redis-events:event-store:append:start`, `:end`, `:asyncStart`, `:asyncEnd`,
 * `:error`). There is no `carrier`: the stored event has no room for trace context yet.
 *
 * @example
 * ```ts
 * import { tracingChannel } from 'node:diagnostics_channel';
 * tracingChannel<object, AppendTrace>('redis-events:event-store:append').subscribe({
 *   asyncEnd: (a) => console.log(a.destination, a.messageId, a.bodySize),
 * });
 * ```
 */
export interface AppendTrace {
  /** The event's name. */
  readonly destination: string;
  readonly layout: EventStoreLayout;
  /** The serialized payload's size in bytes. */
  readonly bodySize: number;
  /** The server (standalone); undefined in a cluster. */
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** Set once stored: the event's id. */
  messageId?: string | undefined;
  /** Set by the tracing channel: the stored event. */
  result?: unknown;
  /** Set by the tracing channel on failure: the EventStoreError. */
  error?: unknown;
}

/**
 * The context of a `read()` (`redis-events:event-store:read`) or of a tail's batch
 * (`redis-events:event-store:tail`). At the end, `batchSize` and `messages` (each event's id)
 * say what came back.
 *
 * @example
 * ```ts
 * tracingChannel<object, ReadTrace>('redis-events:event-store:tail').subscribe({
 *   asyncEnd: (batch) => console.log(batch.destination, batch.batchSize),
 * });
 * ```
 */
export interface ReadTrace {
  /** The event name read. */
  readonly destination: string;
  readonly layout: EventStoreLayout;
  readonly serverAddress: string | undefined;
  readonly serverPort: number | undefined;
  /** Set at the end: how many events came back. */
  batchSize?: number | undefined;
  /** Set at the end: the events' ids, in the order returned. */
  messages?: { readonly messageId: string }[] | undefined;
  /** Set by the tracing channel: the events. */
  result?: unknown;
  /** Set by the tracing channel on failure: the EventStoreError. */
  error?: unknown;
}

export const appendChannel: TracingChannel<object, AppendTrace> = tracingChannel(CHANNELS.append);
export const readChannel: TracingChannel<object, ReadTrace> = tracingChannel(CHANNELS.read);
export const tailChannel: TracingChannel<object, ReadTrace> = tracingChannel(CHANNELS.tail);

/** `serverAddress` and `serverPort` of a standalone client; undefined for a Cluster. */
export function serverOf(client: RedisClient): { serverAddress: string | undefined; serverPort: number | undefined } {
  if (isCluster(client)) return { serverAddress: undefined, serverPort: undefined };
  const options = (client as { options?: { host?: string; port?: number; path?: string } }).options;
  if (options?.path) return { serverAddress: options.path, serverPort: undefined };
  return { serverAddress: options?.host, serverPort: options?.port };
}

/** Traces `read` on `channel` with a read context; the events' ids are set at the end. */
export function traceRead<Payload>(
  channel: TracingChannel<object, ReadTrace>,
  base: Omit<ReadTrace, 'batchSize' | 'messages' | 'result' | 'error'>,
  read: () => Promise<StoredEvent<Payload>[]>,
): Promise<StoredEvent<Payload>[]> {
  const context: ReadTrace = { ...base };
  return channel.tracePromise(
    () =>
      read().then((events) => {
        context.batchSize = events.length;
        context.messages = events.map((event) => ({ messageId: event.id }));
        return events;
      }),
    context,
  );
}
