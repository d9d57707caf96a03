// databroker's sync wake-ups travel over Redis Pub/Sub: every commit publishes on
// `{name}:changed`, a @redis-events/pubsub subscriber sees each one, and a waiting sync in another
// process-like backend wakes on it long before its polling fallback would.
import { DataBroker } from '@redis-events/databroker';
import { createPubSubClient } from '@redis-events/pubsub';
import { connectRedis } from '@redis-events/testkit';
import { describe, expect, inject, it } from 'vitest';

describe('databroker wake-ups over Pub/Sub', () => {
  it('publishes every commit, and a waiting sync wakes on the notification, not the poll', async () => {
    const server = await connectRedis(inject('redisUrl'));
    const name = `e2e-broker-${server.keyPrefix('x').slice(2, -1)}`;
    const writer = new DataBroker(server.createClient(), { name });
    // A poll interval far beyond the test's waits: only a Pub/Sub wake-up can deliver in time.
    const reader = new DataBroker(server.createClient(), { name, pollIntervalMs: 600_000 });
    const pubsub = createPubSubClient(server.url);
    try {
      const notifications = await pubsub.subscribe(`{${name}}:changed`);
      const { serverVersion, recordVersion } = await reader.syncLatest('session');
      const stream = reader.sync('session', serverVersion, recordVersion);
      const iterator = stream[Symbol.asyncIterator]();
      const firstChange = iterator.next(); // waiting: nothing newer yet

      const { records } = await writer.put([{ type: 'session', id: 's1', data: { user: 'ada' } }]);
      const change = await Promise.race([
        firstChange,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no wake-up within 10 s')), 10_000)),
      ]);
      expect(change.done).toBe(false);
      expect(change.value).toMatchObject({ id: 's1', version: records[0]?.version, data: { user: 'ada' } });

      const seen: string[] = [];
      for await (const event of notifications) {
        if (event.kind === 'gap') continue;
        seen.push(event.channel);
        break;
      }
      expect(seen).toEqual([`{${name}}:changed`]);
      await stream.close();
    } finally {
      await pubsub.close();
      await writer.close();
      await reader.close();
      await server.stop();
    }
  });
});
