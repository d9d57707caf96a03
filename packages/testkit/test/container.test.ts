import { describe, expect, it } from 'vitest';
import { ContainerRedis, containerEngineAvailable, startContainerRedis } from '../src/container.ts';
import { startRedis } from '../src/start.ts';

// Runs where a Docker-compatible engine answers (scripts/container-engine.sh gives one with
// podman). When container mode is required (REDIS_TESTKIT_MODE=container) it never skips: a
// broken engine fails the run.
const required = process.env.REDIS_TESTKIT_MODE === 'container';
const available = required || (await containerEngineAvailable());

describe.runIf(available)('container mode', () => {
  it('starts Redis in a container that answers, and removes it at stop', async () => {
    const server = await startRedis({ mode: 'container' });
    try {
      expect(server).toBeInstanceOf(ContainerRedis);
      expect(server.kind).toBe('container');
      const client = server.createClient();
      await client.set('in-container', 'yes');
      expect(await client.get('in-container')).toBe('yes');
      expect(server.version.major).toBeGreaterThanOrEqual(7);
    } finally {
      await server.stop();
    }
  });

  it('restarts keeping data, and comes back after kill -9', async () => {
    const server = await startContainerRedis();
    try {
      const client = server.createClient({ maxRetriesPerRequest: null });
      client.on('error', () => {});
      await client.set('survives', '1');
      await server.restart();
      expect(await client.get('survives')).toBe('1');
      await server.kill();
      await server.start();
      expect(await server.command('PING')).toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('never pulls: a missing image is an error when offline', async () => {
    await expect(
      startContainerRedis({ image: 'localhost/redis-events/absent:0', offline: true }),
    ).rejects.toMatchObject({
      code: 'ERR_TESTKIT_CONTAINER',
      message: expect.stringMatching(/not present and pulls are forbidden/),
    });
  });
});
