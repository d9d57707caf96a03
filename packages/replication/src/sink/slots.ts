// Cluster hash slots: the slot of a key (resp's keySlot), and the slot map a node reports with
// CLUSTER SLOTS.

export { CLUSTER_SLOTS, keySlot as slotOf } from '@redis-events/resp';

/** One master of a cluster and the slot ranges it serves. */
export interface ClusterMaster {
  readonly host: string;
  readonly port: number;
  /** The node ID, when the server reports it. */
  readonly id?: string | undefined;
  readonly ranges: readonly (readonly [from: number, to: number])[];
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
}

/**
 * Reads a `CLUSTER SLOTS` reply into masters with their slot ranges. An empty host means the
 * address the reply came from (`fallbackHost`); `?` is an unknown endpoint and is skipped.
 */
export function parseClusterSlots(reply: unknown, fallbackHost: string): ClusterMaster[] {
  if (!Array.isArray(reply)) throw new TypeError('CLUSTER SLOTS did not answer an array');
  const masters = new Map<
    string,
    { host: string; port: number; id?: string | undefined; ranges: [number, number][] }
  >();
  for (const row of reply) {
    if (!Array.isArray(row) || row.length < 3) continue;
    const from = Number(row[0]);
    const to = Number(row[1]);
    const node = row[2] as unknown[];
    if (!Array.isArray(node) || node.length < 2) continue;
    let host = text(node[0]);
    if (host === '?') continue;
    if (host === '') host = fallbackHost;
    const port = Number(node[1]);
    const id = node.length > 2 && node[2] !== null ? text(node[2]) : undefined;
    const address = `${host}:${port}`;
    let master = masters.get(address);
    if (!master) {
      master = id === undefined ? { host, port, ranges: [] } : { host, port, id, ranges: [] };
      masters.set(address, master);
    }
    master.ranges.push([from, to]);
  }
  for (const master of masters.values()) master.ranges.sort((a, b) => a[0] - b[0]);
  return [...masters.values()];
}

/** Whether a slot falls in one of the ranges. */
export function inRanges(slot: number, ranges: readonly (readonly [number, number])[]): boolean {
  for (const [from, to] of ranges) if (slot >= from && slot <= to) return true;
  return false;
}
