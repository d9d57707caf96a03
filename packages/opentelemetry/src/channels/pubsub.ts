// @redis-events/pubsub: subscribe calls and publishes as spans; received, dropped and missed
// messages as metrics. Pub/Sub messages carry no metadata, so there is no trace context to
// carry (see the pubsub README): a received message is counted, not linked.
import { type Attributes, SpanKind } from '@opentelemetry/api';
import { pick } from '../metrics.ts';
import type { OperationMapping } from '../operations.ts';
import {
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_DESTINATION_TEMPLATE,
  ATTR_MESSAGING_MESSAGE_BODY_SIZE,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  MESSAGING_SYSTEM_REDIS,
} from '../semconv.ts';
import {
  type Attachment,
  commandAttributes,
  count,
  DB_METRIC_ATTRIBUTES,
  MESSAGING_METRIC_ATTRIBUTES,
  messagingStart,
  put,
  serverAttributes,
  text,
} from './common.ts';

/** The context of `redis-events:pubsub:subscribe`. */
interface SubscribeContext {
  readonly command?: unknown;
  readonly kind?: unknown;
  readonly destinations?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
}

/** The context of `redis-events:pubsub:publish`. */
interface PublishContext {
  readonly command?: unknown;
  readonly destination?: unknown;
  readonly bodySize?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly result?: unknown;
}

/** The messages of `redis-events:pubsub:message`, `:drop` and `:gap`. */
interface MessageEvent {
  readonly kind?: unknown;
  readonly destination?: unknown;
  readonly pattern?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
}
interface DropEvent {
  readonly destination?: unknown;
  readonly policy?: unknown;
  readonly count?: unknown;
}
interface GapEvent {
  readonly reason?: unknown;
  readonly since?: unknown;
  readonly until?: unknown;
}

/** `redis.pubsub.receivers`: how many subscribers a publish reached (the server's answer). */
export const ATTR_PUBSUB_RECEIVERS = 'redis.pubsub.receivers';
/** `redis.pubsub.overflow_policy` on the drop counter. */
export const ATTR_PUBSUB_OVERFLOW_POLICY = 'redis.pubsub.overflow_policy';
/** `redis.pubsub.gap.reason` on the gap metrics: `reconnect` or `moved`. */
export const ATTR_PUBSUB_GAP_REASON = 'redis.pubsub.gap.reason';

export const pubsubSubscribe: OperationMapping<SubscribeContext> = {
  channel: 'redis-events:pubsub:subscribe',
  command: true,
  begin(context) {
    const command = text(context.command);
    if (command === undefined) return undefined;
    const attributes = commandAttributes(context, command);
    const names = Array.isArray(context.destinations) ? context.destinations : [];
    // One name is a destination; several (or "all of a kind") are not one.
    if (names.length === 1 && typeof names[0] === 'string') {
      put(
        attributes,
        context.kind === 'pattern' ? ATTR_MESSAGING_DESTINATION_TEMPLATE : ATTR_MESSAGING_DESTINATION_NAME,
        names[0],
      );
    }
    attributes[ATTR_MESSAGING_SYSTEM] = MESSAGING_SYSTEM_REDIS;
    return { name: command, kind: SpanKind.CLIENT, attributes };
  },
  record(instruments, _context, seconds, attributes, errorType) {
    instruments.dbOperationDuration.record(seconds, pick(attributes, DB_METRIC_ATTRIBUTES, errorType));
  },
};

export const pubsubPublish: OperationMapping<PublishContext> = {
  channel: 'redis-events:pubsub:publish',
  begin(context) {
    const operation = text(context.command)?.toLowerCase() ?? 'publish';
    const start = messagingStart(context, 'send', operation, text(context.destination));
    put(start.attributes as Attributes, ATTR_MESSAGING_MESSAGE_BODY_SIZE, count(context.bodySize));
    return start;
  },
  finish(context) {
    const receivers = count(context.result);
    return receivers === undefined ? undefined : { attributes: { [ATTR_PUBSUB_RECEIVERS]: receivers } };
  },
  record(instruments, _context, seconds, attributes, errorType) {
    const metric = pick(attributes, MESSAGING_METRIC_ATTRIBUTES, errorType);
    instruments.sentMessages.add(1, metric);
    instruments.messagingOperationDuration.record(seconds, metric);
  },
};

export function attachPubsub(attachment: Attachment): void {
  attachment.engine.attach(pubsubSubscribe);
  attachment.engine.attach(pubsubPublish);
  const instruments = attachment.instruments;
  if (instruments === undefined) return;
  attachment.plain('redis-events:pubsub:message', (message) => {
    const m = message as MessageEvent;
    const attributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_REDIS,
      [ATTR_MESSAGING_OPERATION_TYPE]: 'receive',
      [ATTR_MESSAGING_OPERATION_NAME]: text(m.kind) ?? 'message',
    };
    put(attributes, ATTR_MESSAGING_DESTINATION_NAME, text(m.destination));
    put(attributes, ATTR_MESSAGING_DESTINATION_TEMPLATE, text(m.pattern));
    serverAttributes(attributes, m);
    instruments.consumedMessages.add(1, attributes);
  });
  attachment.plain('redis-events:pubsub:drop', (message) => {
    const m = message as DropEvent;
    const attributes: Attributes = { [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_REDIS };
    put(attributes, ATTR_MESSAGING_DESTINATION_NAME, text(m.destination));
    put(attributes, ATTR_PUBSUB_OVERFLOW_POLICY, text(m.policy));
    instruments.pubsubDropped.add(count(m.count) ?? 1, attributes);
  });
  attachment.plain('redis-events:pubsub:gap', (message) => {
    const m = message as GapEvent;
    const attributes: Attributes = { [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_REDIS };
    put(attributes, ATTR_PUBSUB_GAP_REASON, text(m.reason));
    instruments.pubsubGaps.add(1, attributes);
    const since = count(m.since);
    const until = count(m.until);
    if (since !== undefined && until !== undefined && until >= since) {
      instruments.pubsubGapDuration.record((until - since) / 1000, attributes);
    }
  });
}
