// The realistic mix of keys both replication benchmarks use: strings (some with TTLs), counters,
// listpack and hash-table hashes, lists, intsets and sets, sorted sets and streams.
import type { Redis } from 'ioredis';

/** Writes `keys` keys of the mix in pipelines of 1000; returns how many were written. */
export async function writeMix(client: Redis, keys: number, prefix = ''): Promise<number> {
  const value = (i: number, n: number) => `value-${i}-${'x'.repeat(n)}`;
  let written = 0;
  for (let start = 0; start < keys; start += 1000) {
    const p = client.pipeline();
    for (let i = start; i < Math.min(keys, start + 1000); i++) {
      const r = i % 100;
      if (r < 45) p.set(`${prefix}user:${i}:name`, value(i, 10 + (i % 60)));
      else if (r < 50) p.set(`${prefix}counter:${i}`, i * 7);
      else if (r < 53)
        p.set(`${prefix}page:${i}`, `<html>${'<p>lorem ipsum dolor sit amet</p>'.repeat(30)}</html>`, 'EX', 86400);
      else if (r < 66)
        p.hset(
          `${prefix}session:${i}`,
          'user',
          i,
          'ip',
          '10.0.0.1',
          'agent',
          'Mozilla/5.0',
          'ts',
          Date.now(),
          'flags',
          'a,b,c',
        );
      else if (r < 68)
        p.hset(`${prefix}profile:${i}`, ...Array.from({ length: 150 }, (_, f) => [`f${f}`, value(f, 5)]).flat());
      else if (r < 78)
        p.rpush(`${prefix}queue:${i}`, ...Array.from({ length: 5 + (i % 40) }, (_, e) => `job-${e}-${i}`));
      else if (r < 84) p.sadd(`${prefix}tags:${i}`, ...Array.from({ length: 8 }, (_, e) => e * i));
      else if (r < 88) p.sadd(`${prefix}members:${i}`, ...Array.from({ length: 20 + (i % 200) }, (_, e) => `m${e}`));
      else if (r < 95)
        p.zadd(`${prefix}rank:${i}`, ...Array.from({ length: 10 + (i % 150) }, (_, e) => [e * 1.5, `p${e}`]).flat());
      else p.xadd(`${prefix}events:${i}`, '*', 'type', 'click', 'user', String(i), 'path', '/home');
      written++;
    }
    await p.exec();
  }
  return written;
}
