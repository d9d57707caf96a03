export { findServer, HOW_TO_GET_A_REDIS, listServers, type ServerBinary, selectedServers } from './binaries.ts';
export { RedisCluster, type RedisClusterOptions, startCluster } from './cluster.ts';
export {
  ContainerRedis,
  type ContainerRedisOptions,
  containerEngineAvailable,
  startContainerRedis,
} from './container.ts';
export { TestkitError, type TestkitErrorCode } from './errors.ts';
export { type Logger, noopLogger } from './logger.ts';
export { freePort } from './ports.ts';
export { type ProxyDirection, type ProxyOptions, type ProxyStats, startProxy, TcpProxy } from './proxy.ts';
export { ReplicaSet, type ReplicaSetOptions, startReplicaSet } from './replica-set.ts';
export {
  type AclUser,
  type AclUserSpec,
  type ConnectionOptions,
  type ConnectRedisOptions,
  connectRedis,
  ExternalRedis,
  parseInfo,
  RedisServer,
  type ServerKind,
} from './server.ts';
export { type Persistence, SpawnedRedis, type SpawnRedisOptions, spawnRedis } from './spawned.ts';
export { type StartMode, type StartRedisOptions, startRedis } from './start.ts';
export { type TlsMaterial, testCertificates } from './tls.ts';
export {
  missingVersion,
  parseVersion,
  type ServerVersion,
  versionAtLeast,
  versionFromBanner,
  versionFromInfo,
} from './version.ts';
export { type WaitOptions, waitFor } from './wait.ts';
