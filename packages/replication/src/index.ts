export { type AofManifest, type AofManifestFile, parseAofManifest, splitManifestArgs } from './aof/aof-manifest.ts';
export { type AofAnnotationEvent, AofParser, type AofParserEvent, type AofParserOptions } from './aof/aof-parser.ts';
export {
  type AofEndEvent,
  type AofEvent,
  type AofFileEvent,
  type AofLayout,
  describeAof,
  type ReadAofOptions,
  readAof,
} from './aof/read-aof.ts';
export {
  type ClusterCheckpoint,
  ClusterReplicaListener,
  type ClusterReplicaListenerEvents,
  type ClusterReplicaListenerOptions,
  type ClusterReplicationEvent,
  type ClusterShard,
  type ClusterTopologyEvent,
} from './cluster-source.ts';
export { CommandStreamDecoder, type CommandStreamOptions } from './command-stream.ts';
export {
  type CommandView,
  type ControlView,
  commandView,
  type DelView,
  type ExpireCondition,
  type ExpireSpec,
  type ExpireView,
  type FlushView,
  type HDelView,
  type HExpireView,
  type HIncrView,
  type HSetView,
  type IncrView,
  type KeyWriteView,
  type ListMoveView,
  type ListPopView,
  type ListPushView,
  type MalformedView,
  type MSetView,
  type OtherView,
  type PersistView,
  type PublishView,
  type RangeWriteView,
  type RenameView,
  type RestoreView,
  type ScriptAdminView,
  type ScriptCallView,
  type SelectView,
  type SetMembersView,
  type SetView,
  type SMoveView,
  type StoreView,
  type SwapDbView,
  type TransactionView,
  type XAddView,
  type XGroupView,
  type XIdsView,
  type XTrimView,
  type ZAddView,
  type ZIncrByView,
  type ZRemView,
} from './command-views.ts';
export {
  type CompareOptions,
  type CompareReport,
  compareRedis,
  type DifferenceKind,
  type KeyDifference,
} from './compare.ts';
export { Crc64, crc64 } from './crc64.ts';
export {
  REPLICATION_CHANNELS,
  type ReplicationCommandMessage,
  type ReplicationHandshakeContext,
  type ReplicationLagMessage,
  type ReplicationSyncContext,
  type ReplicationSyncProgressMessage,
} from './diagnostics.ts';
export { type DumpPayload, parseDumpPayload } from './dump-payload.ts';
export {
  type LinkPhase,
  RdbError,
  type RdbErrorContext,
  ReplicationError,
  type ReplicationErrorCode,
  ReplicationLinkError,
} from './errors.ts';
export {
  createRdbStream,
  mergeParts,
  type ParseRdbOptions,
  parseRdb,
  parseRdbFile,
  type RdbSource,
  wholeEntries,
} from './parse-rdb.ts';
export type {
  HashField,
  KeyMetaClass,
  ModuleItem,
  ModuleTypeInfo,
  RdbAuxEvent,
  RdbEndEvent,
  RdbEntryBase,
  RdbEntryEvent,
  RdbEvent,
  RdbFunctionEvent,
  RdbFunctionPreGa,
  RdbHashEntry,
  RdbHeaderEvent,
  RdbListEntry,
  RdbModuleAuxEvent,
  RdbModuleEntry,
  RdbResizeDbEvent,
  RdbSelectDbEvent,
  RdbSetEntry,
  RdbSlotImportEvent,
  RdbSlotInfoEvent,
  RdbStreamEntry,
  RdbStringEntry,
  RdbZSetEntry,
  StreamConsumer,
  StreamGroup,
  StreamIdmp,
  StreamItem,
  StreamMeta,
  StreamPart,
  StreamPendingEntry,
  ZSetMember,
} from './rdb-events.ts';
export {
  MAX_REDIS_RDB_VERSION,
  MODULE_OPCODE,
  moduleTypeFromId,
  RDB_OPCODE,
  RDB_TYPE,
  rdbTypeName,
  VALKEY_RDB_VERSIONS,
} from './rdb-format.ts';
export { type RdbEventHandler, RdbParser, type RdbParserOptions } from './rdb-parser.ts';
export { RdbTransfer, type RdbTransferOptions } from './rdb-transfer.ts';
export {
  ReplicaListener,
  type ReplicaListenerCloseOptions,
  type ReplicaListenerEvents,
  type ReplicaListenerOptions,
  type ReplicaListenerStats,
  type ReplicaListenerStatus,
  type ReplicaTlsOptions,
  type ReplicationCheckpoint,
} from './replica-listener.ts';
export type {
  CommandEvent,
  ConnectedEvent,
  ContinuedEvent,
  FullSyncStartEvent,
  LifecycleEvent,
  ReconnectingEvent,
  ReplicationEvent,
  SnapshotDoneEvent,
  SyncProgressEvent,
} from './replication-events.ts';
export { type CommandKeys, commandKeys, type KeyShape } from './sink/command-keys.ts';
export type { ExistingKeyPolicy } from './sink/context.ts';
export { encodeDumpPayload, encodeStoredPayload, PORTABLE_DUMP_VERSION } from './sink/dump-encoder.ts';
export type { RedisEndpoint } from './sink/endpoint.ts';
export type { SyncFilter, SyncKeyType } from './sink/filter.ts';
export {
  RedisSync,
  type RedisSyncEvents,
  type RedisSyncOptions,
  type SyncPhase,
  type SyncProgress,
  type SyncResult,
  type SyncSourceSpec,
  type SyncWarning,
} from './sink/sync.ts';
export { fileStateStore, type SyncShardState, type SyncState, type SyncStateStore } from './sink/sync-state.ts';
