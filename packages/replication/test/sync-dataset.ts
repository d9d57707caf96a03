// Data for the sync, AOF and compare tests: every type, in its compact and its large
// encodings, keys larger than one part (so they arrive in several), TTLs, binary keys and
// values, streams with consumer groups and pending entries, and several databases.
import type { Redis } from 'ioredis';

/** Writes the dataset (under `prefix`) into databases 0, 1 and 2; returns the key count per database. */
export async function writeDataset(client: Redis, prefix = '', size = 1): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  const p = (s: string) => `${prefix}${s}`;
  await client.select(0);
  const m = client.multi();
  m.set(p('str'), 'hello');
  m.set(p('int'), '12345');
  m.set(Buffer.concat([Buffer.from(p('bin:')), Buffer.from([0, 0xff, 0x0d, 0x0a])]), Buffer.from([1, 2, 3, 0, 255]));
  m.set(p('ttl'), 'soon', 'PX', 3_600_000);
  m.set(p('big-string'), Buffer.alloc(1_500_000 * size, 'x'));
  m.rpush(p('list'), 'a', 'b', 'c');
  m.rpush(p('big-list'), ...Array.from({ length: 3000 * size }, (_, i) => `e${i}`));
  m.sadd(p('intset'), 1, 2, 3, 400000);
  m.sadd(p('set'), 'x', 'y', 'z');
  m.sadd(p('big-set'), ...Array.from({ length: 2500 * size }, (_, i) => `m${i}`));
  m.zadd(p('zset'), 1, 'a', 2.5, 'b', '-inf', 'c', '+inf', 'd');
  m.zadd(p('big-zset'), ...Array.from({ length: 2000 * size }, (_, i) => [i / 3, `z${i}`]).flat());
  m.hset(p('hash'), 'f1', 'v1', 'f2', 'v2');
  m.hset(p('big-hash'), ...Array.from({ length: 2000 * size }, (_, i) => [`f${i}`, `value-${i}`]).flat());
  m.hset(p('hash-ttl'), 'f', 'v');
  m.expire(p('hash-ttl'), 7200);
  for (let i = 0; i < 50; i++) m.xadd(p('stream'), `${i + 1}-0`, 'n', String(i), 'payload', 'x'.repeat(i));
  m.xdel(p('stream'), '3-0');
  m.xgroup('CREATE', p('stream'), 'g1', '0');
  m.xgroup('CREATE', p('stream'), 'g2', '$');
  m.xadd(p('stream-empty'), '5-0', 'f', 'v');
  m.xdel(p('stream-empty'), '5-0');
  m.xgroup('CREATE', p('stream-empty'), 'g', '0');
  for (let i = 0; i < 20; i++) m.set(p(`plain:${i}`), `v${i}`);
  await m.exec();
  // Pending entries, two consumers, and one consumer with nothing pending.
  await client.xreadgroup('GROUP', 'g1', 'alice', 'COUNT', 5, 'STREAMS', p('stream'), '>');
  await client.xreadgroup('GROUP', 'g1', 'bob', 'COUNT', 3, 'STREAMS', p('stream'), '>');
  await client.xack(p('stream'), 'g1', '2-0');
  await client.call('XGROUP', 'CREATECONSUMER', p('stream'), 'g2', 'idle');
  counts.set(0, 17 + 20);
  for (const db of [1, 2]) {
    await client.select(db);
    await client.set(p(`db${db}:a`), `in db ${db}`);
    await client.hset(p(`db${db}:h`), 'f', String(db));
    counts.set(db, 2);
  }
  await client.select(0);
  return counts;
}

/** Writes of every kind after a snapshot: the live part of a sync. */
export async function writeLive(client: Redis, prefix = ''): Promise<void> {
  const p = (s: string) => `${prefix}${s}`;
  await client.select(0);
  await client.set(p('live:str'), 'after');
  await client.incr(p('int'));
  await client.append(p('str'), ' world');
  await client.rpush(p('list'), 'd');
  await client.lpop(p('big-list'));
  await client.sadd(p('set'), 'w');
  await client.srem(p('big-set'), 'm1');
  await client.zincrby(p('zset'), 10, 'a');
  await client.hset(p('hash'), 'f3', 'v3');
  await client.hdel(p('big-hash'), 'f7');
  await client.del(p('plain:0'), p('plain:1'));
  await client.mset(p('plain:2'), 'changed', p('live:m'), 'new');
  await client.expire(p('plain:3'), 5000);
  await client.rename(p('plain:4'), p('plain:renamed'));
  await client.multi().set(p('tx:a'), '1').incrby(p('tx:b'), 5).sadd(p('set'), 'tx').exec();
  await client.xadd(p('stream'), '100-0', 'late', '1');
  await client.xreadgroup('GROUP', 'g2', 'carol', 'COUNT', 1, 'STREAMS', p('stream'), '>');
  await client.sunionstore(p('union'), p('set'), p('intset'));
  await client.select(1);
  await client.set(p('db1:live'), 'x');
  await client.select(0);
  await client.eval("redis.call('SET', KEYS[1], ARGV[1]); redis.call('INCR', KEYS[2])", 2, p('lua:a'), p('lua:b'), 'v');
}
