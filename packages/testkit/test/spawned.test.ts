import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { TestkitError } from '../src/errors.ts';
import { type SpawnedRedis, spawnRedis } from '../src/spawned.ts';
import { isRunning } from './helpers.ts';

const servers: SpawnedRedis[] = [];
async function spawn(options: Parameters<typeof spawnRedis>[0] = {}): Promise<SpawnedRedis> {
  const server = await spawnRedis(options);
  servers.push(server);
  return server;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

/** One inline command on a fresh socket; returns the first reply line. */
function rawCommand(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => socket.write(`${line}\r\n`));
    socket.setEncoding('utf8').once('data', (data: string) => {
      socket.destroy();
      resolve(data.split('\r\n')[0] ?? '');
    });
    socket.once('error', reject);
  });
}

describe('spawnRedis', () => {
  it('starts a server on a loopback port that answers commands', async () => {
    const server = await spawn();
    expect(server.kind).toBe('spawned');
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const client = server.createClient();
    expect(await client.ping()).toBe('PONG');
    await client.set('k', 'v');
    expect(await client.get('k')).toBe('v');
    const info = await server.info('server');
    expect(info.tcp_port).toBe(String(server.port));
  });

  it('stops: the process ends, its directory is removed, clients are closed', async () => {
    const server = await spawn();
    const pid = server.pid as number;
    const client = server.createClient();
    await client.ping();
    await server.stop();
    expect(isRunning(pid)).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
    expect(client.status).toBe('end');
  });

  it('restarts on the same port keeping data, even without persistence', async () => {
    const server = await spawn();
    const port = server.port;
    const oldPid = server.pid;
    const client = server.createClient();
    await client.set('survives', 'yes');
    await server.restart();
    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(oldPid);
    expect(await client.get('survives')).toBe('yes'); // the client reconnected by itself
  });

  it('restarts empty when asked to drop the data', async () => {
    const server = await spawn({ persistence: 'rdb' });
    const client = server.createClient();
    await client.set('gone', '1');
    await server.restart({ keepData: false });
    expect(await client.exists('gone')).toBe(0);
  });

  it('kill -9 loses unpersisted writes; AOF keeps every acknowledged one', async () => {
    const volatile = await spawn();
    const durable = await spawn({ persistence: 'aof' });
    for (const server of [volatile, durable]) {
      const client = server.createClient({ maxRetriesPerRequest: null });
      for (let i = 0; i < 50; i++) await client.set(`k${i}`, String(i));
      await server.kill();
      expect(server.pid).toBeUndefined();
      await server.start();
      expect(await client.dbsize()).toBe(server === durable ? 50 : 0);
    }
  });

  it('suspends and resumes the process', async () => {
    const server = await spawn();
    const client = server.createClient();
    await client.ping();
    server.suspend();
    let answered = false;
    const reply = client.ping().then((r) => {
      answered = true;
      return r;
    });
    await sleep(300);
    expect(answered).toBe(false);
    server.resume();
    expect(await reply).toBe('PONG');
  });

  it('fails with the server log when a fixed port is taken', async () => {
    const first = await spawn();
    await expect(spawnRedis({ port: first.port })).rejects.toMatchObject({
      code: 'ERR_TESTKIT_START',
      message: expect.stringMatching(/exited while starting[\s\S]*Address already in use/),
    });
  });

  it('reports a bad configuration with the server log', async () => {
    const err = await spawnRedis({ config: { 'no-such-directive': 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TestkitError);
    expect((err as TestkitError).code).toBe('ERR_TESTKIT_START');
    expect((err as Error).message).toMatch(/no-such-directive/i);
  });

  it('protects the default user with a password', async () => {
    const server = await spawn({ password: 'p@ss word' });
    expect(server.url).toBe(`redis://:p%40ss%20word@127.0.0.1:${server.port}`);
    expect(await server.createClient().ping()).toBe('PONG');
    expect(await rawCommand(server.port, 'PING')).toMatch(/^-NOAUTH/);
  });
});
