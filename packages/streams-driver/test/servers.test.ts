// The version matrix: every server in REDIS_SERVERS_DIR (Redis 7.2 to 8.6, Valkey 8 and 9) plus
// the one on PATH. Optional features must be detected exactly where they exist, and the same
// behaviour must hold with them (Redis 8.2+ XACKDEL, 8.4+ XREADGROUP CLAIM) and without them.
import { listServers, type ServerBinary, selectedServers, spawnRedis, versionAtLeast } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import { createGroup, type ServerFeatures, Subscription, type SubscriptionOptions, Topic } from '../src/index.ts';
import { eventually, receiveN } from './helpers.ts';

const servers: ServerBinary[] = [...(await selectedServers()).slice(0, 1)];
for (const s of await listServers()) if (!servers.some((x) => x.path === s.path)) servers.push(s);

const FORCED_OFF: ServerFeatures = { readClaim: false, xnack: false, xackdel: false };

describe.each(servers.map((s) => [`${s.version.text} (${s.name})`, s] as const))('%s', (_, binary) => {
  it('detects the optional features it has, and behaves the same with and without them', async () => {
    await using server = await spawnRedis({ binary });
    const redis = server.createClient();
    const v = binary.version;
    const redisAtLeast = (min: string) => v.flavor === 'redis' && versionAtLeast(v, min);
    const expected: ServerFeatures = {
      readClaim: redisAtLeast('8.4'),
      xackdel: redisAtLeast('8.2'),
      xnack: redisAtLeast('8.8'),
    };

    for (const forced of [undefined, FORCED_OFF]) {
      const key = server.keyPrefix();
      const base: SubscriptionOptions = {
        topic: key,
        group: 'g',
        // long enough that a loaded machine renews the live consumer's leases in time (a message
        // held past its deadline is claimed again, and a third delivery is a dead letter)
        ackDeadlineMs: 1000,
        claimIntervalMs: 50,
        maxDeliveries: 2,
        deleteAcked: true,
        ...(forced ? { features: forced } : {}),
      };
      await createGroup(redis, key, 'g', { from: '$' });
      await createGroup(redis, key, 'other', { from: '$' });
      const topic = new Topic(redis, key);
      await Promise.all(['a', 'b', 'poison'].map((body) => topic.send({ body })));

      // A consumer that took everything and went away holding it: the live one takes over.
      const dead = new Subscription(redis, { ...base, consumer: 'dead' });
      await receiveN(dead, 3);
      // held messages stay pending on "dead", and the shutdown says so
      await expect(dead.shutdown({ timeoutMs: 0 })).rejects.toMatchObject({ abandoned: { held: 3 } });

      const sub = new Subscription(redis, { ...base, consumer: 'live', blockMs: 100 });
      await sub.ready();
      expect(sub.features).toEqual(forced ?? expected);
      const got = await receiveN(sub, 3);
      expect(got.map((m) => m.body.toString()).sort()).toEqual(['a', 'b', 'poison']);
      expect(got.every((m) => m.deliveryAttempt === 2)).toBe(true);
      const poison = got.find((m) => m.body.toString() === 'poison');
      await Promise.all(got.filter((m) => m !== poison).map((m) => m.ack()));
      await poison?.nack(); // third delivery would exceed maxDeliveries 2: dead letter
      await eventually('the dead letter', () => sub.stats.deadLettered === 1);

      // deleteAcked: entries stay until the other group has read and acked them too.
      expect(await redis.xlen(key)).toBe(3);
      const other = new Subscription(redis, { ...base, group: 'other', consumer: 'o' });
      for (const m of await receiveN(other, 3)) await m.ack();
      await eventually('the stream to empty', async () => (await redis.xlen(key)) === 0);
      await Promise.all([sub.shutdown({ timeoutMs: 0 }), other.shutdown({ timeoutMs: 0 }), topic.shutdown()]);
    }
  });
});
