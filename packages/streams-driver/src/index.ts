export {
  type CreateGroupOptions,
  createGroup,
  createTopic,
  type DeadLetter,
  deleteGroup,
  deleteTopic,
  type GroupInfo,
  groupInfo,
  type ReadDeadLettersOptions,
  readDeadLetters,
  type TopicInfo,
  topicInfo,
  trimTopic,
} from './admin.ts';
export type { RetryOptions } from './backoff.ts';
export type { RedisClient } from './client.ts';
export type { CodecLimits, MessageBody, Metadata, OutgoingMessage } from './codec.ts';
export {
  CARRIER_FIELDS,
  CHANNELS,
  type DeadLetterNotice,
  type ReceiveTrace,
  type RedeliveryEvent,
  type SendTrace,
  type SettleTrace,
} from './diagnostics.ts';
export { StreamsError, type StreamsErrorCode, type StreamsErrorContext } from './errors.ts';
export type { ServerFeatures } from './features.ts';
export { GROUPS_CHANNEL, type GroupCensus, type GroupProbe, type GroupState } from './group-census.ts';
export { Message, type Settlement } from './message.ts';
export { DEAD_LETTER_FIELDS, RELEASED_CONSUMER } from './scripts.ts';
export {
  type DeadLetterEvent,
  type MalformedAction,
  type MalformedEvent,
  type ReceiveOptions,
  type ShutdownOptions,
  Subscription,
  type SubscriptionEvents,
  type SubscriptionOptions,
  type SubscriptionStats,
} from './subscription.ts';
export {
  type Retention,
  type RetryEvent,
  type SendOptions,
  Topic,
  type TopicEvents,
  type TopicOptions,
  type TopicStats,
} from './topic.ts';
export {
  openSubscription,
  openTopic,
  parseDuration,
  parseSubscriptionURL,
  parseTopicURL,
  URLOpener,
  type URLOpenerOptions,
} from './url.ts';
