import { describe, expect, it, vi } from 'vitest';
import { listServers, selectedServers } from '../src/binaries.ts';
import { spawnRedis } from '../src/spawned.ts';

const dir = process.env.REDIS_SERVERS_DIR;
const servers = dir ? await listServers(dir) : [];

describe('server selection', () => {
  it('finds redis-server on PATH or through REDIS_SERVER_BIN', async () => {
    const [onPath] = await selectedServers({ PATH: process.env.PATH });
    expect(onPath?.path).toMatch(/(redis|valkey)-server$/);
    vi.stubEnv('REDIS_SERVER_BIN', '/nonexistent/redis-server');
    await expect(selectedServers()).rejects.toMatchObject({ code: 'ERR_TESTKIT_SELECTION' });
    vi.unstubAllEnvs();
  });

  it.runIf(servers.length > 0)('selects by name, by version prefix, by flavour, and all', async () => {
    const env = (wanted: string) => ({ REDIS_SERVERS_DIR: dir, REDIS_SERVER: wanted });
    expect(await selectedServers(env('all'))).toHaveLength(servers.length);
    const first = servers[0];
    if (!first) throw new Error('no servers');
    expect((await selectedServers(env(first.name))).map((s) => s.name)).toEqual([first.name]);
    const { major, minor } = first.version;
    const byVersion = await selectedServers(env(`${first.version.flavor}-${major}.${minor}`));
    expect(byVersion.every((s) => s.version.major === major && s.version.minor === minor)).toBe(true);
    await expect(selectedServers(env('redis-1.0'))).rejects.toMatchObject({
      code: 'ERR_TESTKIT_SELECTION',
      message: expect.stringContaining(first.name),
    });
  });

  // Each server of the matrix directory starts and answers; Valkey folders whose redis-server is a
  // non-executable link stub are served by valkey-server.
  describe.runIf(servers.length > 0)('every server in REDIS_SERVERS_DIR', () => {
    it.each(servers.map((s) => [s.name, s] as const))('%s starts and reports its version', async (_name, binary) => {
      const server = await spawnRedis({ binary });
      try {
        const info = await server.info('server');
        const reported = binary.version.flavor === 'valkey' ? info.valkey_version : info.redis_version;
        expect(reported).toBe(`${binary.version.major}.${binary.version.minor}.${binary.version.patch}`);
      } finally {
        await server.stop();
      }
    });
  });
});
