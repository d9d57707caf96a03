import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { containerEngineAvailable } from '../src/container.ts';
import { ExternalRedis } from '../src/server.ts';
import { type SpawnedRedis, spawnRedis } from '../src/spawned.ts';
import { startRedis } from '../src/start.ts';

describe('startRedis resolution order', () => {
  let backing: SpawnedRedis;
  beforeAll(async () => {
    backing = await spawnRedis();
    return () => backing.stop();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('uses REDIS_URL as is, and refuses to flush it unless allowed', async () => {
    vi.stubEnv('REDIS_URL', `redis://127.0.0.1:${backing.port}/2`);
    vi.stubEnv('REDIS_TESTKIT_ALLOW_FLUSH', '');
    const server = await startRedis();
    try {
      expect(server).toBeInstanceOf(ExternalRedis);
      expect(server.kind).toBe('external');
      expect(server.port).toBe(backing.port);
      expect(server.version).toEqual(backing.version);
      const client = server.createClient();
      await client.set('in-db-2', '1');
      expect(await backing.command('SELECT', 2).then(() => backing.createClient({ db: 2 }).get('in-db-2'))).toBe('1');
      await expect(server.flushAll()).rejects.toMatchObject({ code: 'ERR_TESTKIT_FLUSH_REFUSED' });
      await expect(server.restart()).rejects.toMatchObject({ code: 'ERR_TESTKIT_UNSUPPORTED' });
      await expect(server.kill()).rejects.toMatchObject({ code: 'ERR_TESTKIT_UNSUPPORTED' });
    } finally {
      await server.stop();
    }
    expect(await backing.createClient({ db: 2 }).get('in-db-2')).toBe('1');
  });

  it('flushes a REDIS_URL server when REDIS_TESTKIT_ALLOW_FLUSH=1', async () => {
    vi.stubEnv('REDIS_URL', `redis://127.0.0.1:${backing.port}/3`);
    vi.stubEnv('REDIS_TESTKIT_ALLOW_FLUSH', '1');
    const server = await startRedis();
    try {
      await server.createClient().set('x', '1');
      await server.flushAll();
      expect(await server.createClient().dbsize()).toBe(0);
    } finally {
      await server.stop();
    }
  });

  it('reports an unreachable REDIS_URL and a malformed one', async () => {
    vi.stubEnv('REDIS_URL', 'redis://127.0.0.1:1');
    await expect(startRedis()).rejects.toMatchObject({
      code: 'ERR_TESTKIT_START',
      message: expect.stringMatching(/cannot reach/),
    });
    vi.stubEnv('REDIS_URL', 'http://example');
    await expect(startRedis()).rejects.toMatchObject({ code: 'ERR_TESTKIT_ARGUMENT' });
  });

  it('spawns a server when there is no URL and no container engine', async () => {
    vi.stubEnv('REDIS_URL', '');
    vi.stubEnv('DOCKER_HOST', '');
    const server = await startRedis({ mode: 'auto' });
    try {
      expect(server.kind).toBe((await containerEngineAvailable()) ? 'container' : 'spawned');
      expect(await server.createClient().ping()).toBe('PONG');
    } finally {
      await server.stop();
    }
  });

  it('fails loudly, listing the three ways to get a Redis, when nothing is available', async () => {
    vi.stubEnv('REDIS_URL', '');
    vi.stubEnv('REDIS_SERVER_BIN', '');
    vi.stubEnv('REDIS_SERVER', '');
    vi.stubEnv('PATH', '/nonexistent');
    const err = await startRedis({ mode: 'spawn' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_TESTKIT_NO_SERVER' });
    const message = (err as Error).message;
    expect(message).toMatch(/REDIS_URL=/);
    expect(message).toMatch(/Docker-compatible engine/);
    expect(message).toMatch(/REDIS_SERVER_BIN=/);
  });

  it('rejects an unknown REDIS_TESTKIT_MODE', async () => {
    vi.stubEnv('REDIS_TESTKIT_MODE', 'magic');
    await expect(startRedis()).rejects.toMatchObject({ code: 'ERR_TESTKIT_ARGUMENT' });
  });
});
