// Consumer-group lag and pending, for the groups this process subscribes to: when a meter
// collects, the instrumentation publishes a census on `redis-events:streams-driver:groups`, every
// live streams-driver subscription answers with a probe, and each group is read once (XINFO
// GROUPS, XPENDING, XRANGE). Nothing is read between collections.
import { channel } from 'node:diagnostics_channel';
import type { Attributes, BatchObservableResult, ObservableGauge } from '@opentelemetry/api';
import { METRICS } from '../metrics.ts';
import {
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_SYSTEM,
  MESSAGING_SYSTEM_REDIS,
} from '../semconv.ts';
import { type Attachment, serverAttributes } from './common.ts';

export const GROUPS_CHANNEL = 'redis-events:streams-driver:groups';

/** What a streams-driver subscription adds to a census (see the streams-driver README). */
interface GroupProbe {
  readonly topic: string;
  readonly group: string;
  readonly key: string;
  readonly serverAddress?: string | undefined;
  readonly serverPort?: number | undefined;
  read(options?: { readonly timeoutMs?: number | undefined }): Promise<GroupState | undefined>;
}

interface GroupState {
  readonly lag: number | undefined;
  readonly pending: number;
  readonly oldestPendingId: string | undefined;
  readonly nextUndeliveredId: string | undefined;
}

/** The millisecond part of a stream entry ID (`1700000000000-3`), when it is one. */
export function idTime(id: string | undefined): number | undefined {
  if (id === undefined) return undefined;
  const dash = id.indexOf('-');
  const ms = Number(dash < 0 ? id : id.slice(0, dash));
  return Number.isSafeInteger(ms) && ms > 0 ? ms : undefined;
}

/** Seconds since the entry was added (0 for none; never negative under clock skew). */
function ageOf(id: string | undefined, now: number): number {
  const time = idTime(id);
  return time === undefined ? 0 : Math.max(0, now - time) / 1000;
}

export function attachStreamGroups(attachment: Attachment, readTimeoutMs = 5000): void {
  const instruments = attachment.instruments;
  if (instruments === undefined) return;
  const meter = instruments.meter;
  const lag = meter.createObservableGauge(METRICS.streamLag, {
    unit: '{message}',
    description:
      'Entries of a stream not yet delivered to a consumer group (XINFO GROUPS lag; absent when Redis cannot tell, after XDEL).',
  });
  const lagTime = meter.createObservableGauge(METRICS.streamLagTime, {
    unit: 's',
    description: 'Age of the oldest entry a consumer group has not been delivered yet (0 when caught up).',
  });
  const pending = meter.createObservableGauge(METRICS.streamPending, {
    unit: '{message}',
    description: 'Entries delivered to a consumer group and not acknowledged (XPENDING).',
  });
  const pendingTime = meter.createObservableGauge(METRICS.streamPendingTime, {
    unit: 's',
    description: 'Age of the oldest entry delivered to a consumer group and not acknowledged (0 when none).',
  });
  const groups = channel(GROUPS_CHANNEL);
  const observe = async (result: BatchObservableResult) => {
    if (!groups.hasSubscribers) return; // no streams-driver subscription is live
    const census: { groups: GroupProbe[] } = { groups: [] };
    groups.publish(census);
    const unique = new Map<string, GroupProbe>();
    for (const probe of census.groups) if (!unique.has(probe.key)) unique.set(probe.key, probe);
    await Promise.all(
      [...unique.values()].map(async (probe) => {
        let state: GroupState | undefined;
        try {
          state = await probe.read({ timeoutMs: readTimeoutMs });
        } catch (err) {
          attachment.failed(GROUPS_CHANNEL, err);
          return;
        }
        if (state === undefined) return;
        const attributes: Attributes = {
          [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_REDIS,
          [ATTR_MESSAGING_DESTINATION_NAME]: probe.topic,
          [ATTR_MESSAGING_CONSUMER_GROUP_NAME]: probe.group,
        };
        serverAttributes(attributes, probe);
        const now = Date.now();
        if (state.lag !== undefined) result.observe(lag, state.lag, attributes);
        result.observe(lagTime, ageOf(state.nextUndeliveredId, now), attributes);
        result.observe(pending, state.pending, attributes);
        result.observe(pendingTime, ageOf(state.oldestPendingId, now), attributes);
      }),
    );
  };
  const observables: ObservableGauge[] = [lag, lagTime, pending, pendingTime];
  meter.addBatchObservableCallback(observe, observables);
  attachment.onClose(() => meter.removeBatchObservableCallback(observe, observables));
}
