import { RedisEventStore } from '@redis-events/event-store';
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_TEST_TIMEOUT, jsonLines, runCli, startCli, waitUntil } from './helpers.ts';

describe('redis-events events', { timeout: CLI_TEST_TIMEOUT }, () => {
  let server: SpawnedRedis;
  let store: RedisEventStore;
  beforeAll(async () => {
    server = await spawnRedis();
    store = new RedisEventStore(server.createClient(), { prefix: 'cli-test' });
    for (let i = 1; i <= 5; i++) await store.storeEvent({ name: 'order.paid', payload: { order: i } });
  });
  afterAll(async () => {
    await store.close();
    await server.stop();
  });

  it('prints the newest events first, as JSON lines', async () => {
    const { code, stdout } = await runCli([
      'events',
      'order.paid',
      '--limit',
      '3',
      '--prefix',
      'cli-test',
      '--url',
      server.url,
    ]);
    expect(code).toBe(0);
    const lines = jsonLines(stdout) as { name: string; payload: { order: number }; timestamp: string; id: string }[];
    expect(lines.map((l) => l.payload.order)).toEqual([5, 4, 3]);
    expect(lines[0]?.name).toBe('order.paid');
    expect(Date.parse(lines[0]?.timestamp ?? '')).toBeGreaterThan(0);
  });

  it('takes the URL from REDIS_URL, and says when a name has no events', async () => {
    const { code, stdout, stderr } = await runCli(['events', 'nothing.here', '--prefix', 'cli-test'], {
      REDIS_URL: server.url,
    });
    expect(code).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/no events named "nothing.here"/);
  });

  it('follows new events until Ctrl-C, then exits 130 cleanly', async () => {
    const cli = startCli([
      'events',
      'order.paid',
      '--follow',
      '--limit',
      '1',
      '--prefix',
      'cli-test',
      '--url',
      server.url,
    ]);
    const lines = () => cli.stdoutSoFar.split('\n').filter(Boolean);
    await waitUntil(() => lines().length >= 1); // the newest stored event, then the tail is live
    await store.storeEvent({ name: 'order.paid', payload: { order: 6 } });
    await store.storeEvent({ name: 'order.paid', payload: { order: 7 } });
    await waitUntil(() => lines().length >= 3);
    cli.kill('SIGINT');
    const { code, stderr } = await cli.output;
    expect(code).toBe(130);
    expect(stderr).toBe('events stopped by Ctrl-C: 2 new events printed\n');
    expect(lines().map((l) => (JSON.parse(l) as { payload: { order: number } }).payload.order)).toEqual([5, 6, 7]);
  });

  it('fails with exit code 1 when Redis is unreachable, 2 for a bad URL', async () => {
    const down = await runCli(['events', 'x', '--url', 'redis://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/redis-events events: .*(ECONNREFUSED|connect)/i);
    const bad = await runCli(['events', 'x', '--url', 'http://nope']);
    expect(bad.code).toBe(2);
  });
});
