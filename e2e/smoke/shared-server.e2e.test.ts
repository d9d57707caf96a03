import { connectRedis } from '@redis-events/testkit';
import { describe, expect, inject, it } from 'vitest';

// The suite's shared server, as every e2e file sees it: one Redis for the run, reachable from
// the test workers, with per-test key prefixes keeping files apart.
describe('the shared e2e server', () => {
  it('is reachable from a test worker and reports the version the setup saw', async () => {
    const server = await connectRedis(inject('redisUrl'));
    try {
      expect(server.version.text).toBe(inject('redisVersion'));
      expect(['spawned', 'container', 'external']).toContain(inject('redisKind'));
      expect(await server.createClient().ping()).toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('keeps tests apart with key prefixes', async () => {
    const server = await connectRedis(inject('redisUrl'));
    try {
      const a = server.keyPrefix();
      const b = server.keyPrefix();
      expect(a).not.toBe(b);
      const client = server.createClient();
      await client.set(`${a}k`, 'a');
      await client.set(`${b}k`, 'b');
      expect(await client.keys(`${a}*`)).toEqual([`${a}k`]);
      await client.del(`${a}k`, `${b}k`);
    } finally {
      await server.stop();
    }
  });
});
