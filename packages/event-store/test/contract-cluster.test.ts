import { type RedisCluster, startCluster } from '@redis-events/testkit';
import { afterAll, beforeAll } from 'vitest';
import { defineContract } from './contract.ts';

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3 });
});
afterAll(() => cluster?.stop());

for (const layout of ['stream', 'timeline'] as const) {
  for (const protocol of [2, 3] as const) {
    defineContract({
      label: `cluster of 3, RESP${protocol}`,
      layout,
      connect: () => cluster.createClient({ redisOptions: { protocol } }),
      keySlot: (key) => cluster.keySlot(key),
    });
  }
}
