import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll } from 'vitest';
import { defineContract } from './contract.ts';

let server: SpawnedRedis;
beforeAll(async () => {
  server = await spawnRedis();
});
afterAll(() => server?.stop());

const clients = [
  { label: 'standalone, RESP2', options: { protocol: 2 } },
  { label: 'standalone, RESP3', options: { protocol: 3 } },
  { label: 'standalone, RESP3 with replyMapping resp3', options: { protocol: 3, replyMapping: 'resp3' } },
] as const;

for (const layout of ['stream', 'timeline'] as const) {
  for (const { label, options } of clients) {
    defineContract({ label, layout, connect: () => server.createClient(options) });
  }
}
