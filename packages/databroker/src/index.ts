export type { Logger } from '@redis-events/resp';
export { bytesCodec, jsonCodec, type RecordCodec } from './codec.ts';
export type { CommitMode } from './commit.ts';
export {
  type CallOptions,
  type CloseOptions,
  DataBroker,
  type DataBrokerEvents,
  type DataBrokerOptions,
  type DataBrokerStats,
  type LatestSnapshot,
  type SyncOptions,
} from './databroker.ts';
export {
  type CorruptEvent,
  DIAGNOSTICS_CHANNELS,
  type LeaseTrace,
  type PutTrace,
  type SyncEvent,
} from './diagnostics.ts';
export type { EncryptionKey } from './encryption.ts';
export { DataBrokerError, type DataBrokerErrorCode } from './errors.ts';
export type { FilterExpression, FilterScalar, FilterValue } from './filter.ts';
export type { KeySpace } from './keys.ts';
export type { RedisClient } from './link.ts';
export type {
  DataRecord,
  DeletedRecord,
  JsonValue,
  LiveRecord,
  PutResult,
  RecordInput,
  TypeOptions,
  Versions,
} from './records.ts';
export type { RecordStream } from './streams.ts';
export type { RetryOptions } from './transaction.ts';
