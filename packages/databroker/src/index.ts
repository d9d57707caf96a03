export { bytesCodec, jsonCodec, type RecordCodec } from './codec.ts';
export type { RedisClient } from './connection.ts';
export {
  DataBroker,
  type DataBrokerOptions,
  type LatestSnapshot,
  type SyncOptions,
} from './databroker.ts';
export type { EncryptionKey } from './encryption.ts';
export { DataBrokerError, type DataBrokerErrorCode } from './errors.ts';
export type { FilterExpression, FilterScalar, FilterValue } from './filter.ts';
export type { KeySpace } from './keys.ts';
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
