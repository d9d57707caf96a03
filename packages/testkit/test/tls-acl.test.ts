import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedRedis, spawnRedis } from '../src/spawned.ts';

describe('TLS', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ tls: true });
  });
  afterAll(() => server.stop());

  it('serves TLS only, with a rediss:// URL and certificates for clients', async () => {
    expect(server.url).toBe(`rediss://127.0.0.1:${server.port}`);
    const tls = server.tls;
    expect(tls?.ca).toMatch(/BEGIN CERTIFICATE/);
    const client = server.createClient();
    expect(await client.ping()).toBe('PONG');
  });

  it('verifies the server certificate against the CA for 127.0.0.1 and localhost', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const socket = tlsConnect({
        host,
        port: server.port,
        ca: server.tls?.ca,
        servername: host === 'localhost' ? host : '',
      });
      await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
      expect(socket.authorized).toBe(true);
      socket.destroy();
    }
  });

  it('rejects a client that does not trust the CA, and plain TCP', async () => {
    const untrusting = tlsConnect({ host: '127.0.0.1', port: server.port });
    await expect(
      new Promise((resolve, reject) => untrusting.once('secureConnect', resolve).once('error', reject)),
    ).rejects.toThrow(/self.signed|unable to (verify|get local issuer)/i);
    const plain = tcpConnect({ host: '127.0.0.1', port: server.port }, () => plain.write('PING\r\n'));
    const outcome = await new Promise<string>((resolve) => {
      plain.once('data', (d) => resolve(`data:${d.toString()}`));
      plain.once('close', () => resolve('closed'));
      plain.once('error', () => resolve('closed'));
    });
    expect(outcome).not.toMatch(/PONG/);
  });

  it('can require client certificates', async () => {
    const strict = await spawnRedis({ tls: true, tlsAuthClients: 'yes' });
    try {
      const withCert = strict.createClient();
      expect(await withCert.ping()).toBe('PONG');
      const noCert = new Redis({
        host: '127.0.0.1',
        port: strict.port,
        tls: { ca: strict.tls?.ca },
        lazyConnect: true,
        retryStrategy: () => null,
        maxRetriesPerRequest: 0,
      });
      noCert.on('error', () => {});
      await expect(noCert.connect().then(() => noCert.ping())).rejects.toThrow();
      noCert.disconnect();
    } finally {
      await strict.stop();
    }
  });
});

describe('ACL users', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  it('creates a user limited to some keys and channels; other access gets NOPERM', async () => {
    const user = await server.createUser({
      username: 'app',
      password: 'secret',
      rules: ['~app:*', '&app:*', '+@all', '-@dangerous'],
    });
    expect(user.url).toBe(`redis://app:secret@127.0.0.1:${server.port}`);
    const client = new Redis(user.url, { maxRetriesPerRequest: 0, enableReadyCheck: false });
    try {
      await client.set('app:1', 'ok');
      expect(await client.get('app:1')).toBe('ok');
      await expect(client.get('other:1')).rejects.toThrow(/NOPERM/);
      await expect(client.publish('elsewhere', 'x')).rejects.toThrow(/NOPERM/);
      expect(await client.publish('app:events', 'x')).toBe(0);
      await expect(client.flushall()).rejects.toThrow(/NOPERM/);
    } finally {
      client.disconnect();
    }
  });

  it('rejects a wrong password and a malformed user name', async () => {
    await server.createUser({ username: 'reader', password: 'right', rules: ['~*', '+get'] });
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = tcpConnect({ host: '127.0.0.1', port: server.port }, () => socket.write('AUTH reader wrong\r\n'));
      socket.setEncoding('utf8').once('data', (d: string) => {
        socket.destroy();
        resolve(d);
      });
      socket.once('error', reject);
    });
    expect(reply).toMatch(/^-WRONGPASS/);
    await expect(server.createUser({ username: 'bad name', password: 'x', rules: [] })).rejects.toMatchObject({
      code: 'ERR_TESTKIT_ARGUMENT',
    });
  });
});
