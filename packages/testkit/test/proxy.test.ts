import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type TcpProxy } from '../src/proxy.ts';
import { type SpawnedRedis, spawnRedis } from '../src/spawned.ts';

describe('TcpProxy', () => {
  let server: SpawnedRedis;
  let proxy: TcpProxy;
  const clients: Redis[] = [];
  const through = (options: Parameters<SpawnedRedis['createClient']>[0] = {}) => {
    const client = server.createClient({ port: proxy.port, ...options });
    client.on('error', () => {});
    clients.push(client);
    return client;
  };
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await proxy.close();
  });

  it('forwards both ways and counts bytes and connections', async () => {
    proxy = await startProxy({ target: server });
    expect(proxy.url).toBe(`redis://127.0.0.1:${proxy.port}`);
    const client = through();
    await client.set('via-proxy', 'x'.repeat(1000));
    expect(await client.get('via-proxy')).toHaveLength(1000);
    expect(proxy.stats.open).toBe(1);
    expect(proxy.stats.bytesUpstream).toBeGreaterThan(1000);
    expect(proxy.stats.bytesDownstream).toBeGreaterThan(1000);
  });

  it('cuts open connections; the client sees the loss and reconnects', async () => {
    proxy = await startProxy({ target: server });
    const client = through();
    await client.ping();
    const closed = new Promise((resolve) => client.once('close', resolve));
    proxy.cut();
    await closed;
    expect(proxy.stats.cut).toBe(1);
    expect(await client.ping()).toBe('PONG');
    expect(proxy.stats.accepted).toBe(2);
  });

  it('pauses traffic without closing, then resumes it', async () => {
    proxy = await startProxy({ target: server });
    const client = through();
    await client.ping();
    proxy.pause();
    let answered = false;
    const reply = client.echo('held').then((r) => {
      answered = true;
      return r;
    });
    await sleep(300);
    expect(answered).toBe(false);
    expect(proxy.stats.open).toBe(1);
    proxy.resume();
    expect(await reply).toBe('held');
  });

  it('refuses new connections while refusing is on', async () => {
    proxy = await startProxy({ target: server });
    proxy.refuse();
    const client = through({ retryStrategy: () => null, lazyConnect: true, maxRetriesPerRequest: 0 });
    await expect(client.connect().then(() => client.ping())).rejects.toThrow();
    proxy.refuse(false);
    const again = through();
    expect(await again.ping()).toBe('PONG');
  });

  it('cuts a connection in the middle of a large reply', async () => {
    proxy = await startProxy({ target: server });
    const client = through({ retryStrategy: () => null, maxRetriesPerRequest: 0 });
    await client.set('big', Buffer.alloc(1 << 20, 1));
    const before = proxy.stats.bytesDownstream;
    proxy.cutAfter(before + 200_000, 'downstream');
    await expect(client.getBuffer('big')).rejects.toThrow();
    expect(proxy.stats.cut).toBe(1);
    expect(proxy.stats.bytesDownstream - before).toBe(200_000); // the client got part of the reply
  });

  it('retargets to another server and resets open connections, as in a failover', async () => {
    const other = await spawnRedis();
    try {
      proxy = await startProxy({ target: server });
      const client = through();
      await client.set('where', 'first');
      await other.createClient().set('where', 'second');
      proxy.retarget(other);
      expect(proxy.target.port).toBe(other.port);
      expect(await client.get('where')).toBe('second'); // reconnected through the proxy to the new target
      expect(proxy.stats.cut).toBe(1);
    } finally {
      await other.stop();
    }
  });

  it('adds latency to every exchange, in order', async () => {
    proxy = await startProxy({ target: server });
    const client = through();
    await client.ping();
    proxy.setLatency(150);
    const started = performance.now();
    const replies = await Promise.all([client.echo('a'), client.echo('b'), client.echo('c')]);
    expect(replies).toEqual(['a', 'b', 'c']);
    // Latency applies upstream and downstream: a round trip takes at least twice the setting.
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(() => proxy.setLatency(-1)).toThrow(/latency/);
  });
});
