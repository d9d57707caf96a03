export {
  defaultConfig,
  type EventStoreConfig,
  type EventStoreLayout,
  type EventStoreOptions,
  type ResolvedConfig,
} from './config.ts';
export { type AppendTrace, CHANNELS, type ReadTrace } from './diagnostics.ts';
export { EventStoreError, type EventStoreErrorCode, PublishError } from './errors.ts';
export type {
  Event,
  EventStore,
  EventTail,
  ReadOptions,
  ReadOrder,
  StoredEvent,
  TailOptions,
  TimeInput,
} from './event.ts';
export { formatRfc3339Nano, goEscapeJson } from './go-json.ts';
export { escapeName, MAX_NAME_BYTES, type TimelineKeys } from './keys.ts';
export { type EventHandler, type EventMap, Mediator, type MediatorOptions, type PublishOptions } from './mediator.ts';
export type { RedisClient } from './redis-client.ts';
export { type CallOptions, type CloseOptions, RedisEventStore } from './redis-event-store.ts';
export { jsonSerializer, type Serializer, serializePayload } from './serializer.ts';
