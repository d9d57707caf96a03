export {
  type AbortErrorFactory,
  abortable,
  type DelayOptions,
  delay,
  respAbortError,
  throwIfAborted,
} from './abort.ts';
export { type BackoffOptions, exponentialBackoff, type ReconnectStrategy } from './backoff.ts';
export {
  type Classification,
  type CloseOptions,
  type ConnectInfo,
  type ConnectionStatus,
  type ConnectOptions,
  type ConnectSession,
  connect,
  type DecoderMapping,
  RespConnection,
  type RespConnectionEvents,
  type RespConnectionOptions,
  type SendOptions,
  type ServerInfo,
  type TakeOver,
} from './connection.ts';
export { RespDecoder, type RespDecoderOptions } from './decoder.ts';
export { type CommandTraceContext, RESP_COMMAND_CHANNEL } from './diagnostics.ts';
export {
  type Command,
  type CommandArgument,
  CommandEncoder,
  type CommandEncoderOptions,
  type EncodeValueOptions,
  encodeCommand,
  encodeNode,
  encodePipeline,
  encodeValue,
} from './encoder.ts';
export {
  RedisEventsError,
  type RedisEventsErrorOptions,
  ReplyError,
  RespError,
  type RespErrorCode,
  RespProtocolError,
} from './errors.ts';
export { CLUSTER_SLOTS, keySlot } from './key-slot.ts';
export { isLogger, type Logger, noopLogger } from './logger.ts';
export { type ParsedRedisUrl, parseRedisUrl } from './url.ts';
export {
  type ArrayNode,
  Attributed,
  type BigNumberNode,
  type BooleanNode,
  type BulkErrorNode,
  type BulkStringNode,
  type DoubleNode,
  type IntegerNode,
  type MapNode,
  type NullNode,
  type PushNode,
  type RespMapValue,
  type RespNode,
  type RespNodeAttributes,
  type RespNodeType,
  type RespValue,
  type SetNode,
  type SimpleErrorNode,
  type SimpleStringNode,
  VerbatimString,
  type VerbatimStringNode,
} from './values.ts';
