// @redis-events/databroker: puts and leases as spans; the lag of sync streams (commit to
// arrival) and the changes they take as metrics. A put carries no trace context into the stored
// records (see the databroker README): records are state, not messages.
import { type Attributes, SpanKind } from '@opentelemetry/api';
import type { OperationMapping } from '../operations.ts';
import { errorType } from '../operations.ts';
import { ATTR_DB_NAMESPACE } from '../semconv.ts';
import { type Attachment, commandAttributes, count, put, serverAttributes, text } from './common.ts';

/** The context of `redis-events:databroker:put`. */
interface PutContext {
  readonly backend?: unknown;
  readonly records?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly database?: unknown;
  readonly serverVersion?: unknown;
  readonly firstVersion?: unknown;
  readonly lastVersion?: unknown;
  readonly mode?: unknown;
}

/** The context of `redis-events:databroker:lease`. */
interface LeaseContext {
  readonly backend?: unknown;
  readonly lease?: unknown;
  readonly ttlMs?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly database?: unknown;
  readonly outcome?: unknown;
}

/** A message of `redis-events:databroker:sync`. */
interface SyncEvent {
  readonly backend?: unknown;
  readonly type?: unknown;
  readonly source?: unknown;
  readonly count?: unknown;
  readonly lastModifiedAt?: unknown;
  readonly receivedAt?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly database?: unknown;
}

/** A message of `redis-events:databroker:corrupt`. */
interface CorruptEvent {
  readonly backend?: unknown;
  readonly where?: unknown;
  readonly error?: unknown;
}

export const ATTR_DATABROKER_BACKEND = 'redis.databroker.backend';
export const ATTR_DATABROKER_RECORDS = 'redis.databroker.records';
export const ATTR_DATABROKER_SERVER_VERSION = 'redis.databroker.server_version';
export const ATTR_DATABROKER_FIRST_VERSION = 'redis.databroker.version.first';
export const ATTR_DATABROKER_LAST_VERSION = 'redis.databroker.version.last';
export const ATTR_DATABROKER_MODE = 'redis.databroker.mode';
export const ATTR_DATABROKER_LEASE = 'redis.databroker.lease';
export const ATTR_DATABROKER_LEASE_OUTCOME = 'redis.databroker.lease.outcome';
export const ATTR_DATABROKER_TYPE = 'redis.databroker.type';
export const ATTR_DATABROKER_SYNC_SOURCE = 'redis.databroker.sync.source';
export const ATTR_DATABROKER_CORRUPT_WHERE = 'redis.databroker.corrupt.where';

export const databrokerPut: OperationMapping<PutContext> = {
  channel: 'redis-events:databroker:put',
  begin(context) {
    const attributes = commandAttributes(context, 'put');
    put(attributes, ATTR_DATABROKER_BACKEND, text(context.backend));
    put(attributes, ATTR_DATABROKER_RECORDS, count(context.records));
    return { name: 'databroker put', kind: SpanKind.CLIENT, attributes };
  },
  finish(context) {
    // The address is known once connected, which may be after the start.
    const attributes: Attributes = {};
    serverAttributes(attributes, context);
    const database = count(context.database);
    if (database !== undefined) attributes[ATTR_DB_NAMESPACE] = String(database);
    put(attributes, ATTR_DATABROKER_SERVER_VERSION, count(context.serverVersion));
    put(attributes, ATTR_DATABROKER_FIRST_VERSION, count(context.firstVersion));
    put(attributes, ATTR_DATABROKER_LAST_VERSION, count(context.lastVersion));
    put(attributes, ATTR_DATABROKER_MODE, text(context.mode));
    return { attributes };
  },
};

export const databrokerLease: OperationMapping<LeaseContext> = {
  channel: 'redis-events:databroker:lease',
  begin(context) {
    const attributes = commandAttributes(context, 'lease');
    put(attributes, ATTR_DATABROKER_BACKEND, text(context.backend));
    put(attributes, ATTR_DATABROKER_LEASE, text(context.lease));
    return { name: 'databroker lease', kind: SpanKind.CLIENT, attributes };
  },
  finish(context) {
    const outcome = text(context.outcome);
    return outcome === undefined ? undefined : { attributes: { [ATTR_DATABROKER_LEASE_OUTCOME]: outcome } };
  },
};

export function attachDatabroker(attachment: Attachment): void {
  attachment.engine.attach(databrokerPut);
  attachment.engine.attach(databrokerLease);
  const instruments = attachment.instruments;
  if (instruments === undefined) return;
  attachment.plain('redis-events:databroker:sync', (message) => {
    const m = message as SyncEvent;
    const attributes: Attributes = {};
    put(attributes, ATTR_DATABROKER_BACKEND, text(m.backend));
    // '' is "every type"; keep it as such rather than dropping the attribute.
    if (typeof m.type === 'string') attributes[ATTR_DATABROKER_TYPE] = m.type;
    put(attributes, ATTR_DATABROKER_SYNC_SOURCE, text(m.source));
    const changes = count(m.count);
    if (changes !== undefined && changes > 0) instruments.databrokerSyncChanges.add(changes, attributes);
    const modified = count(m.lastModifiedAt);
    const received = count(m.receivedAt);
    if (modified !== undefined && received !== undefined && changes !== undefined && changes > 0) {
      // Clock skew between the Redis host and this one can make it negative: report 0 then.
      instruments.databrokerSyncLag.record(Math.max(0, received - modified) / 1000, attributes);
    }
  });
  attachment.plain('redis-events:databroker:corrupt', (message) => {
    const m = message as CorruptEvent;
    const attributes: Attributes = {};
    put(attributes, ATTR_DATABROKER_BACKEND, text(m.backend));
    put(attributes, ATTR_DATABROKER_CORRUPT_WHERE, text(m.where));
    if (m.error !== undefined) attributes['error.type'] = errorType(m.error);
    instruments.databrokerCorrupt.add(1, attributes);
  });
}
