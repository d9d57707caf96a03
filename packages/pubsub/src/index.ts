export { type BufferPayloadOptions, createPubSubClient, PubSubClient } from './client.ts';
export {
  CHANNELS,
  type DropEvent,
  type GapEvent,
  type MessageEvent,
  type PublishTrace,
  type SubscribeTrace,
} from './diagnostics.ts';
export { PubSubError, type PubSubErrorCode } from './errors.ts';
export type { MessageKind, SubscriptionKind } from './frames.ts';
export { keySlot } from './key-slot.ts';
export type { CallOptions, CloseOptions } from './lifecycle.ts';
export type { GapReason, OverflowPolicy, PubSubGap } from './message-buffer.ts';
export type {
  BufferOptions,
  ClusterOptions,
  NodeAddress,
  PubSubClientOptions,
  SubscriptionOptions,
} from './options.ts';
export {
  type PubSubMessage,
  Subscription,
  type SubscriptionEvent,
  type SubscriptionEvents,
} from './subscription.ts';
