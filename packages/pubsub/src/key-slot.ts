// Shard channels grouped by Redis Cluster hash slot (the slot function is resp's keySlot).
import { keySlot } from '@redis-events/resp';

/** Hash slots in a Redis Cluster. */
export { CLUSTER_SLOTS as SLOTS, keySlot } from '@redis-events/resp';

/** Names grouped by their hash slot, in first-seen order: one SSUBSCRIBE per group in a cluster. */
export function groupBySlot(names: readonly string[]): Map<number, string[]> {
  const groups = new Map<number, string[]>();
  for (const name of names) {
    const slot = keySlot(name);
    const group = groups.get(slot);
    if (group) group.push(name);
    else groups.set(slot, [name]);
  }
  return groups;
}
