// Shared by the sync scenarios: data of every type (with hash tags, so that a Cluster spreads it
// over its masters), writes of every kind, and the compare every scenario ends with.
import { type CompareOptions, compareRedis } from '@redis-events/replication';
import type { Cluster, Redis } from 'ioredis';

type Client = Redis | Cluster;

/** Writes keys of every type under `prefix`, spread over many slots; returns how many. */
export async function writeData(client: Client, prefix: string, count = 200): Promise<number> {
  for (let i = 0; i < count; i++) {
    const k = `${prefix}{t${i % 50}}:${i}`;
    switch (i % 7) {
      case 0:
        await client.set(k, `value-${i}`);
        break;
      case 1:
        await client.set(k, `expiring-${i}`, 'PX', 3_600_000);
        break;
      case 2:
        await client.hset(k, 'a', String(i), 'b', 'x'.repeat(i % 100));
        break;
      case 3:
        await client.rpush(k, ...Array.from({ length: 1 + (i % 30) }, (_, e) => `e${e}`));
        break;
      case 4:
        await client.sadd(k, ...Array.from({ length: 1 + (i % 40) }, (_, e) => e * 3));
        break;
      case 5:
        await client.zadd(k, ...Array.from({ length: 1 + (i % 20) }, (_, e) => [e / 7, `m${e}`]).flat());
        break;
      default:
        await client.xadd(k, '*', 'n', String(i));
    }
  }
  // One key larger than a part of the snapshot.
  await client.rpush(`${prefix}{big}:list`, ...Array.from({ length: 5000 }, (_, e) => `item-${e}`));
  return count + 1;
}

/** Live writes of many kinds (single-slot multi-key commands, so that a Cluster takes them). */
export async function writeChanges(client: Client, prefix: string, round: number): Promise<void> {
  const t = `${prefix}{t${round % 50}}`;
  await client.set(`${t}:live:${round}`, String(round));
  await client.incr(`${t}:counter`);
  await client.hset(`${t}:2`, 'round', String(round));
  await client.del(`${t}:${(round % 50) + 150}`);
  await client.rpush(`${prefix}{big}:list`, `tail-${round}`);
  await client.expire(`${t}:0`, 10_000);
  await client.mset(`${t}:m1`, String(round), `${t}:m2`, String(round));
  await client.rename(`${t}:live:${round}`, `${t}:renamed:${round}`);
  await client.multi().sadd(`${t}:s`, String(round)).zadd(`${t}:z`, round, `r${round}`).exec();
}

/** The differences between two servers, as lines (empty when equal). */
export async function differences(options: CompareOptions): Promise<string[]> {
  const report = await compareRedis({ rounds: 5, roundDelay: 500, ...options });
  return report.differences.map((d) => `${d.kind} db${d.db} ${d.key.toString('latin1')}: ${d.detail}`);
}
