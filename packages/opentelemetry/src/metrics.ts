// The synchronous instruments, created once per instrumentation from the user's meter. The
// observable gauges (lags) live with the code that observes them (consumer-groups.ts,
// channels/replication.ts).
import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import {
  DURATION_BUCKETS,
  METRIC_DB_CLIENT_OPERATION_DURATION,
  METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES,
  METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
  METRIC_MESSAGING_CLIENT_SENT_MESSAGES,
  METRIC_MESSAGING_PROCESS_DURATION,
} from './semconv.ts';

/** The names of the metrics of the package's own (non semantic-convention) instruments. */
export const METRICS: {
  readonly streamLag: 'redis.stream.consumer_group.lag';
  readonly streamLagTime: 'redis.stream.consumer_group.lag.time';
  readonly streamPending: 'redis.stream.consumer_group.pending';
  readonly streamPendingTime: 'redis.stream.consumer_group.pending.time';
  readonly streamRedeliveries: 'redis.stream.redeliveries';
  readonly streamDeadLetters: 'redis.stream.dead_letters';
  readonly pubsubDropped: 'redis.pubsub.messages.dropped';
  readonly pubsubGaps: 'redis.pubsub.gaps';
  readonly pubsubGapDuration: 'redis.pubsub.gap.duration';
  readonly replicationLag: 'redis.replication.lag';
  readonly replicationLagTime: 'redis.replication.lag.time';
  readonly replicationCommands: 'redis.replication.commands';
  readonly databrokerSyncLag: 'redis.databroker.sync.lag';
  readonly databrokerSyncChanges: 'redis.databroker.sync.changes';
  readonly databrokerCorrupt: 'redis.databroker.corrupt_entries';
} = Object.freeze({
  streamLag: 'redis.stream.consumer_group.lag',
  streamLagTime: 'redis.stream.consumer_group.lag.time',
  streamPending: 'redis.stream.consumer_group.pending',
  streamPendingTime: 'redis.stream.consumer_group.pending.time',
  streamRedeliveries: 'redis.stream.redeliveries',
  streamDeadLetters: 'redis.stream.dead_letters',
  pubsubDropped: 'redis.pubsub.messages.dropped',
  pubsubGaps: 'redis.pubsub.gaps',
  pubsubGapDuration: 'redis.pubsub.gap.duration',
  replicationLag: 'redis.replication.lag',
  replicationLagTime: 'redis.replication.lag.time',
  replicationCommands: 'redis.replication.commands',
  databrokerSyncLag: 'redis.databroker.sync.lag',
  databrokerSyncChanges: 'redis.databroker.sync.changes',
  databrokerCorrupt: 'redis.databroker.corrupt_entries',
} as const);

/** The synchronous instruments every mapping records into. */
export interface Instruments {
  readonly meter: Meter;
  readonly dbOperationDuration: Histogram;
  readonly messagingOperationDuration: Histogram;
  readonly sentMessages: Counter;
  readonly consumedMessages: Counter;
  readonly processDuration: Histogram;
  readonly streamRedeliveries: Counter;
  readonly streamDeadLetters: Counter;
  readonly pubsubDropped: Counter;
  readonly pubsubGaps: Counter;
  readonly pubsubGapDuration: Histogram;
  readonly replicationCommands: Counter;
  readonly databrokerSyncLag: Histogram;
  readonly databrokerSyncChanges: Counter;
  readonly databrokerCorrupt: Counter;
}

export function createInstruments(meter: Meter): Instruments {
  const seconds = (name: string, description: string): Histogram =>
    meter.createHistogram(name, { unit: 's', description, advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  return {
    meter,
    dbOperationDuration: seconds(METRIC_DB_CLIENT_OPERATION_DURATION, 'Duration of Redis commands.'),
    messagingOperationDuration: seconds(
      METRIC_MESSAGING_CLIENT_OPERATION_DURATION,
      'Duration of messaging operations (send, receive, settle) on Redis.',
    ),
    sentMessages: meter.createCounter(METRIC_MESSAGING_CLIENT_SENT_MESSAGES, {
      unit: '{message}',
      description: 'Messages a producer attempted to send to Redis (stream entries, Pub/Sub publishes, events).',
    }),
    consumedMessages: meter.createCounter(METRIC_MESSAGING_CLIENT_CONSUMED_MESSAGES, {
      unit: '{message}',
      description: 'Messages delivered to a consumer (each delivery counts, redeliveries too).',
    }),
    processDuration: seconds(METRIC_MESSAGING_PROCESS_DURATION, 'Duration of processing a message.'),
    streamRedeliveries: meter.createCounter(METRICS.streamRedeliveries, {
      unit: '{message}',
      description: 'Stream messages delivered again (claimed after their consumer failed to settle them in time).',
    }),
    streamDeadLetters: meter.createCounter(METRICS.streamDeadLetters, {
      unit: '{message}',
      description: 'Stream messages given up on after too many deliveries (dead-lettered).',
    }),
    pubsubDropped: meter.createCounter(METRICS.pubsubDropped, {
      unit: '{message}',
      description: "Pub/Sub messages a subscription's overflow policy dropped (the reader was too slow).",
    }),
    pubsubGaps: meter.createCounter(METRICS.pubsubGaps, {
      unit: '{gap}',
      description: 'Times a Pub/Sub subscription may have missed messages (a reconnection, a slot move).',
    }),
    pubsubGapDuration: meter.createHistogram(METRICS.pubsubGapDuration, {
      unit: 's',
      description: 'How long a Pub/Sub subscription was not whole (messages published then are lost).',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
    replicationCommands: meter.createCounter(METRICS.replicationCommands, {
      unit: '{command}',
      description: 'Replicated commands a replication listener delivered.',
    }),
    databrokerSyncLag: meter.createHistogram(METRICS.databrokerSyncLag, {
      unit: 's',
      description:
        "Time from a databroker change's commit to its arrival in a sync stream (newest change of each batch).",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
    databrokerSyncChanges: meter.createCounter(METRICS.databrokerSyncChanges, {
      unit: '{change}',
      description: 'Changes databroker sync streams took.',
    }),
    databrokerCorrupt: meter.createCounter(METRICS.databrokerCorrupt, {
      unit: '{entry}',
      description: 'Damaged databroker entries skipped.',
    }),
  };
}

/** Copies the named attributes that are set: metrics keep only low-cardinality ones. */
export function pick(attributes: Attributes, names: readonly string[], errorType?: string): Attributes {
  const out: Attributes = {};
  for (const name of names) {
    const value = attributes[name];
    if (value !== undefined) out[name] = value;
  }
  if (errorType !== undefined) out['error.type'] = errorType;
  return out;
}
