// @redis-events/replication: the handshake (PSYNC) and full syncs as spans; delivered commands
// counted; the listener's lag behind its master (bytes and seconds) as observable gauges. The
// listener reads the master's offset (INFO) only while the lag channel has a subscriber, so the
// instrumentation subscribes to it only once a meter has read the gauges.
import { type Attributes, type ObservableResult, SpanKind } from '@opentelemetry/api';
import { METRICS } from '../metrics.ts';
import type { OperationMapping } from '../operations.ts';
import { ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME, DB_SYSTEM_REDIS } from '../semconv.ts';
import { type Attachment, commandAttributes, count, put, serverAttributes, text } from './common.ts';

/** The context of `redis-events:replication:handshake`. */
interface HandshakeContext {
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly attempt?: unknown;
  readonly replId?: unknown;
  readonly offset?: unknown;
  readonly result?: unknown;
}

/** The context of `redis-events:replication:sync`. */
interface SyncContext {
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly replId?: unknown;
  readonly offset?: unknown;
  readonly diskless?: unknown;
  readonly size?: unknown;
  readonly bytes?: unknown;
  readonly keys?: unknown;
}

/** A message of `redis-events:replication:lag`. */
interface LagMessage {
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly phase?: unknown;
  readonly bytes?: unknown;
  readonly seconds?: unknown;
}

/** A message of `redis-events:replication:command`. */
interface CommandMessage {
  readonly command?: unknown;
  readonly database?: unknown;
}

export const ATTR_REPLICATION_ATTEMPT = 'redis.replication.attempt';
export const ATTR_REPLICATION_ID = 'redis.replication.id';
export const ATTR_REPLICATION_OFFSET = 'redis.replication.offset';
export const ATTR_REPLICATION_PSYNC_RESULT = 'redis.replication.psync.result';
export const ATTR_REPLICATION_DISKLESS = 'redis.replication.diskless';
export const ATTR_REPLICATION_RDB_SIZE = 'redis.replication.rdb.size';
export const ATTR_REPLICATION_RDB_KEYS = 'redis.replication.rdb.keys';
export const ATTR_REPLICATION_PHASE = 'redis.replication.phase';

export const replicationHandshake: OperationMapping<HandshakeContext> = {
  channel: 'redis-events:replication:handshake',
  begin(context) {
    const attributes = commandAttributes(context, 'PSYNC');
    put(attributes, ATTR_REPLICATION_ATTEMPT, count(context.attempt));
    put(attributes, ATTR_REPLICATION_ID, text(context.replId));
    put(attributes, ATTR_REPLICATION_OFFSET, count(context.offset));
    return { name: 'PSYNC', kind: SpanKind.CLIENT, attributes };
  },
  finish(context) {
    const result = text(context.result);
    return result === undefined ? undefined : { attributes: { [ATTR_REPLICATION_PSYNC_RESULT]: result } };
  },
};

export const replicationSync: OperationMapping<SyncContext> = {
  channel: 'redis-events:replication:sync',
  begin(context) {
    // The snapshot the master sends after +FULLRESYNC: named after that reply.
    const attributes = commandAttributes(context, 'FULLRESYNC');
    put(attributes, ATTR_REPLICATION_ID, text(context.replId));
    put(attributes, ATTR_REPLICATION_OFFSET, count(context.offset));
    if (typeof context.diskless === 'boolean') attributes[ATTR_REPLICATION_DISKLESS] = context.diskless;
    put(attributes, ATTR_REPLICATION_RDB_SIZE, count(context.size));
    return { name: 'FULLRESYNC', kind: SpanKind.CLIENT, attributes };
  },
  finish(context) {
    const attributes: Attributes = {};
    put(attributes, ATTR_REPLICATION_RDB_SIZE, count(context.bytes));
    put(attributes, ATTR_REPLICATION_RDB_KEYS, count(context.keys));
    return { attributes };
  },
};

interface LagReading {
  readonly attributes: Attributes;
  readonly bytes: number;
  readonly seconds: number;
  readonly at: number;
  /** The time between this listener's last two readings, to tell when it stopped reporting. */
  readonly interval: number;
}

/** How long a listener's last lag reading is observed after it stopped reporting (closed). */
function staleAfter(interval: number): number {
  return Math.max(5_000, 3 * interval);
}

export function attachReplication(attachment: Attachment): void {
  attachment.engine.attach(replicationHandshake);
  attachment.engine.attach(replicationSync);
  const instruments = attachment.instruments;
  if (instruments === undefined) return;
  attachment.plain('redis-events:replication:command', (message) => {
    const m = message as CommandMessage;
    const attributes: Attributes = { [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_REDIS };
    put(attributes, ATTR_DB_OPERATION_NAME, text(m.command));
    const database = count(m.database);
    if (database !== undefined) attributes[ATTR_DB_NAMESPACE] = String(database);
    instruments.replicationCommands.add(1, attributes);
  });

  const readings = new Map<string, LagReading>();
  let listening = false;
  const onLag = (message: unknown) => {
    const m = message as LagMessage;
    const bytes = count(m.bytes);
    const seconds = count(m.seconds);
    if (bytes === undefined || seconds === undefined) return;
    const attributes: Attributes = { [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_REDIS };
    serverAttributes(attributes, m);
    put(attributes, ATTR_REPLICATION_PHASE, text(m.phase));
    const key = `${String(m.serverAddress)}:${String(m.serverPort)}`;
    const now = Date.now();
    const previous = readings.get(key);
    readings.set(key, { attributes, bytes, seconds, at: now, interval: previous ? now - previous.at : 1000 });
  };
  const meter = instruments.meter;
  const lag = meter.createObservableGauge(METRICS.replicationLag, {
    unit: 'By',
    description: "Bytes of the master's replication stream a replication listener has not delivered yet.",
  });
  const lagTime = meter.createObservableGauge(METRICS.replicationLagTime, {
    unit: 's',
    description: 'How old the oldest write a replication listener has not delivered yet is (an estimate).',
  });
  const observe = (result: ObservableResult, pickValue: (r: LagReading) => number) => {
    // The first collection starts the lag readings: the listener then reads its master's offset.
    if (!listening) {
      listening = true;
      attachment.plain('redis-events:replication:lag', onLag);
    }
    const now = Date.now();
    for (const [key, reading] of readings) {
      if (now - reading.at > staleAfter(reading.interval)) readings.delete(key);
      else result.observe(pickValue(reading), reading.attributes);
    }
  };
  const observeLag = (result: ObservableResult) => observe(result, (r) => r.bytes);
  const observeLagTime = (result: ObservableResult) => observe(result, (r) => r.seconds);
  lag.addCallback(observeLag);
  lagTime.addCallback(observeLagTime);
  attachment.onClose(() => {
    lag.removeCallback(observeLag);
    lagTime.removeCallback(observeLagTime);
    readings.clear();
  });
}
