// @redis-events/streams-driver and @redis-events/event-store: messages sent, received and
// settled as messaging spans, with the trace context carried in the stored message. The contexts
// follow CONTRIBUTING's shared fields (`destination`, `group`, `consumer`, `messageId`,
// `batchSize`, `bodySize`, `carrier`); a channel nobody publishes yet costs nothing and makes
// nothing, so these mappings wait for the packages by name.
import type { Attributes } from '@opentelemetry/api';
import { pick } from '../metrics.ts';
import type { OperationEnd, OperationMapping } from '../operations.ts';
import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_SYSTEM,
  MESSAGING_SYSTEM_REDIS,
  type MessagingOperationType,
} from '../semconv.ts';
import { type Attachment, count, MESSAGING_METRIC_ATTRIBUTES, messagingStart, put, text } from './common.ts';

/** The fields a messaging context may hold (CONTRIBUTING.md, "Diagnostics channels"). */
interface MessagingContext {
  readonly destination?: unknown;
  readonly group?: unknown;
  readonly consumer?: unknown;
  readonly messageId?: unknown;
  readonly batchSize?: unknown;
  readonly bodySize?: unknown;
  /** Received: 1 for a first delivery, more for a redelivery. */
  readonly deliveryAttempt?: unknown;
  /** Sent: the carrier to fill. Received (one message): the fields read back. */
  readonly carrier?: unknown;
  /** Received (a batch): the carriers of its messages. */
  readonly carriers?: unknown;
  /** Received (a batch): its messages, each with its own `carrier` and `messageId`. */
  readonly messages?: unknown;
  readonly result?: unknown;
  readonly error?: unknown;
}

/** `redis.stream.delivery_attempt`: which delivery of a stream message this is (1: the first). */
export const ATTR_STREAM_DELIVERY_ATTEMPT = 'redis.stream.delivery_attempt';

/** A plain channel's message (a redelivery, a dead letter). */
interface MessageNotice {
  readonly destination?: unknown;
  readonly group?: unknown;
  readonly count?: unknown;
}

/** Every carrier a received context holds, in message order. */
function receivedCarriers(context: MessagingContext): unknown[] {
  const out: unknown[] = [];
  if (Array.isArray(context.carriers)) out.push(...context.carriers);
  if (Array.isArray(context.messages)) {
    for (const message of context.messages) {
      if (typeof message === 'object' && message !== null) out.push((message as { carrier?: unknown }).carrier);
    }
  }
  if (out.length === 0 && context.carrier !== undefined) out.push(context.carrier);
  return out;
}

/** How many messages an operation covers: `batchSize`, else the messages listed, else one. */
function messagesIn(context: MessagingContext): number {
  return (
    count(context.batchSize) ??
    (Array.isArray(context.messages) ? context.messages.length : undefined) ??
    (Array.isArray(context.carriers) ? context.carriers.length : undefined) ??
    1
  );
}

/** The attributes known once an operation ended: message ID, batch size. */
function endAttributes(context: MessagingContext): Attributes {
  const attributes: Attributes = {};
  const messages = messagesIn(context);
  const id = text(context.messageId) ?? (typeof context.result === 'string' ? context.result : undefined);
  if (messages === 1) put(attributes, ATTR_MESSAGING_MESSAGE_ID, id);
  else attributes[ATTR_MESSAGING_BATCH_MESSAGE_COUNT] = messages;
  put(attributes, ATTR_STREAM_DELIVERY_ATTEMPT, count(context.deliveryAttempt));
  return attributes;
}

function start(context: MessagingContext, type: MessagingOperationType, operation: string) {
  const begun = messagingStart(context, type, operation, text(context.destination));
  put(begun.attributes as Attributes, ATTR_MESSAGING_MESSAGE_BODY_SIZE, count(context.bodySize));
  return begun;
}

/** A send (a stream entry, an appended event): a PRODUCER span whose context goes into the message. */
function sendMapping(channel: string, operation: string): OperationMapping<MessagingContext> {
  return {
    channel,
    inject: true,
    begin: (context) => start(context, 'send', operation),
    finish: (context) => ({ attributes: endAttributes(context) }),
    record(instruments, context, seconds, attributes, errorType) {
      const metric = pick(attributes, MESSAGING_METRIC_ATTRIBUTES, errorType);
      instruments.sentMessages.add(messagesIn(context), metric);
      instruments.messagingOperationDuration.record(seconds, metric);
    },
  };
}

/**
 * A receive (a read, a tail's batch): linked to the span of every message's producer. Carriers
 * already in the context when it starts (one message being handled) are known to the span's
 * start, so `messageContext: 'parent'` can make the producer's span its parent; those found at
 * the end become links.
 */
function receiveMapping(channel: string, operation: string): OperationMapping<MessagingContext> {
  const linkedAtStart = new WeakSet<object>();
  return {
    channel,
    begin(context) {
      const carriers = receivedCarriers(context);
      if (carriers.length === 0) return start(context, 'receive', operation);
      linkedAtStart.add(context);
      return { ...start(context, 'receive', operation), carriers };
    },
    finish: (context): OperationEnd => ({
      attributes: endAttributes(context),
      ...(linkedAtStart.has(context) ? {} : { carriers: receivedCarriers(context) }),
    }),
    record(instruments, context, seconds, attributes, errorType) {
      const metric = pick(attributes, MESSAGING_METRIC_ATTRIBUTES, errorType);
      instruments.messagingOperationDuration.record(seconds, metric);
      if (errorType === undefined) {
        const received = messagesIn(context);
        if (received > 0) instruments.consumedMessages.add(received, metric);
      }
    },
  };
}

/** A settlement (ack, nack): a CLIENT span naming the message. */
function settleMapping(channel: string, operation: string): OperationMapping<MessagingContext> {
  return {
    channel,
    begin: (context) => start(context, 'settle', operation),
    finish: (context) => ({ attributes: endAttributes(context) }),
    record(instruments, _context, seconds, attributes, errorType) {
      instruments.messagingOperationDuration.record(seconds, pick(attributes, MESSAGING_METRIC_ATTRIBUTES, errorType));
    },
  };
}

export const streamsSend: OperationMapping<MessagingContext> = sendMapping('redis-events:streams-driver:send', 'send');
export const streamsReceive: OperationMapping<MessagingContext> = receiveMapping(
  'redis-events:streams-driver:receive',
  'receive',
);
export const streamsAck: OperationMapping<MessagingContext> = settleMapping('redis-events:streams-driver:ack', 'ack');
export const streamsNack: OperationMapping<MessagingContext> = settleMapping(
  'redis-events:streams-driver:nack',
  'nack',
);
export const eventStoreAppend: OperationMapping<MessagingContext> = sendMapping(
  'redis-events:event-store:append',
  'append',
);
export const eventStoreRead: OperationMapping<MessagingContext> = receiveMapping(
  'redis-events:event-store:read',
  'read',
);
export const eventStoreTail: OperationMapping<MessagingContext> = receiveMapping(
  'redis-events:event-store:tail',
  'tail',
);

function noticeAttributes(message: MessageNotice): Attributes {
  const attributes: Attributes = { [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_REDIS };
  put(attributes, ATTR_MESSAGING_DESTINATION_NAME, text(message.destination));
  put(attributes, ATTR_MESSAGING_CONSUMER_GROUP_NAME, text(message.group));
  return attributes;
}

export function attachStreamsDriver(attachment: Attachment): void {
  for (const mapping of [streamsSend, streamsReceive, streamsAck, streamsNack]) attachment.engine.attach(mapping);
  const instruments = attachment.instruments;
  if (instruments === undefined) return;
  const counters = [
    ['redis-events:streams-driver:redelivery', instruments.streamRedeliveries],
    ['redis-events:streams-driver:dead-letter', instruments.streamDeadLetters],
  ] as const;
  for (const [name, counter] of counters) {
    attachment.plain(name, (message) => {
      const m = message as MessageNotice;
      counter.add(count(m.count) ?? 1, noticeAttributes(m));
    });
  }
}

export function attachEventStore(attachment: Attachment): void {
  for (const mapping of [eventStoreAppend, eventStoreRead, eventStoreTail]) attachment.engine.attach(mapping);
}
