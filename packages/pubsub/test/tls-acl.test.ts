// TLS, and ACL users limited to some channels or commands.
import { setTimeout as sleep } from 'node:timers/promises';
import { type SpawnedRedis, spawnRedis, startProxy } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPubSubClient } from '../src/client.ts';
import { PubSubError } from '../src/errors.ts';
import type { PubSubClientOptions } from '../src/options.ts';
import { nextEvent, readUntilGap, trackedClients, until } from './helpers.ts';

describe('TLS', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ tls: true });
  });
  afterAll(() => server.stop());

  it.each([2, 3] as const)('subscribes, publishes and comes back after a cut over TLS (RESP%i)', async (protocol) => {
    const ca = server.tls?.ca as string;
    await using proxy = await startProxy({ target: server });
    await using client = createPubSubClient({
      url: `rediss://127.0.0.1:${proxy.port}`,
      tls: { ca, servername: 'localhost' },
      protocol,
      reconnect: { initialDelay: 10, maxDelay: 50 },
    });
    const subscription = await client.subscribe('tls:news');
    await subscription.ssubscribe('tls:{shard}');
    expect(await client.publish('tls:news', 'secure')).toBe(1);
    expect((await nextEvent(subscription)).value).toMatchObject({ channel: 'tls:news', payload: 'secure' });
    proxy.cut();
    const { gap } = await readUntilGap(subscription);
    expect(gap).toMatchObject({ reason: 'reconnect', channels: ['tls:news'], shardChannels: ['tls:{shard}'] });
    await client.spublish('tls:{shard}', 'still secure');
    expect((await nextEvent(subscription)).value).toMatchObject({ kind: 'smessage', payload: 'still secure' });
  });

  it('fails the first subscribe with ERR_PUBSUB_CONNECTION when the certificate is not trusted', async () => {
    await using client = createPubSubClient({
      url: server.url.replace(/^rediss:\/\/[^@]*@/, 'rediss://'),
      connectTimeout: 3000,
    });
    const error = await client.subscribe('x').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PubSubError);
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
    expect((error as Error).message).toMatch(/certificate/i);
  });
});

describe.each([2, 3] as const)('ACL users (RESP%i)', (protocol) => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());
  const clients = trackedClients(() => ({ protocol }));
  const client = (url: string, options: PubSubClientOptions = {}) => clients.client({ url, ...options });

  it('gets a clear NOPERM error for channels the user may not use, and keeps what it may', async () => {
    const user = await server.createUser({
      username: `limited${protocol}`,
      password: 'pw',
      rules: ['~*', '&allowed:*', '+@all'],
    });
    const c = client(user.url, { name: 'acl-test' });
    const refused = await c.subscribe('secret').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(PubSubError);
    expect(refused).toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
    expect((refused as Error).message).toMatch(/SUBSCRIBE channel "secret" was refused: the ACL user may not use it/);
    expect((refused as Error).message).toMatch(/ACL SETUSER/);
    expect((refused as PubSubError).cause).toMatchObject({ prefix: 'NOPERM' });
    expect(c.subscriptions).toEqual([]);

    const subscription = await c.subscribe('allowed:1');
    await expect(subscription.subscribe('allowed:2', 'secret')).rejects.toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
    await expect(subscription.psubscribe('secret*')).rejects.toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
    await expect(subscription.ssubscribe('secret')).rejects.toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
    await subscription.psubscribe('allowed:*');
    // A refused command subscribed nothing: what is asked is what the server has.
    expect(subscription.channels).toEqual(['allowed:1']);
    expect(subscription.confirmed()).toEqual({ channels: ['allowed:1'], patterns: ['allowed:*'], shardChannels: [] });
    await expect(c.publish('secret', 'x')).rejects.toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
    // One channel and one pattern subscription match: two deliveries.
    expect(await c.publish('allowed:1', 'hello')).toBe(2);
    expect((await nextEvent(subscription)).value).toMatchObject({ kind: 'message', channel: 'allowed:1' });
    expect((await nextEvent(subscription)).value).toMatchObject({ kind: 'pmessage', pattern: 'allowed:*' });
  });

  it('reports channels it may no longer use after an ACL change as lost, and keeps the rest', async () => {
    const username = `changing${protocol}`;
    const user = await server.createUser({ username, password: 'pw', rules: ['~*', '&a:*', '&b:*', '+@all'] });
    const c = client(user.url, { reconnect: { initialDelay: 10, maxDelay: 50 } });
    const subscription = await c.subscribe('a:1', 'b:1');
    const lost = new Promise<{ names: readonly string[]; error: Error }>((resolve) =>
      subscription.once('lost', resolve),
    );
    // The server disconnects clients subscribed to channels their user may no longer use.
    await server.command('ACL', 'SETUSER', username, 'resetchannels', '&b:*');
    const info = await lost;
    // The server refuses the whole SUBSCRIBE a:1 b:1; only the name it may not have is lost.
    expect(info.names).toEqual(['a:1']);
    expect(info.error).toMatchObject({ code: 'ERR_PUBSUB_NOPERM' });
    expect(subscription.channels).toEqual(['b:1']);
    expect(subscription.closed).toBe(false);
    await until(() => subscription.confirmed().channels.includes('b:1'), 'b:1 to be subscribed again');
    await server.createClient().publish('b:1', 'after');
    for (;;) {
      const event = (await nextEvent(subscription)).value;
      if (event?.kind === 'message') {
        expect(event).toMatchObject({ channel: 'b:1', payload: 'after' });
        break;
      }
    }
  });

  it('settles an unsubscribe that waited for a reconnect even when a later subscribe of the same name is refused', async () => {
    const user = await server.createUser({
      username: `waiting${protocol}`,
      password: 'pw',
      rules: ['~*', '&ok:*', '+@all'],
    });
    await using proxy = await startProxy({ target: server });
    const c = client(user.url.replace(`:${server.port}`, `:${proxy.port}`), {
      reconnect: { initialDelay: 10, maxDelay: 50 },
    });
    const subscription = await c.subscribe('ok:1');
    const down = new Promise((resolve) => subscription.once('disconnect', resolve));
    proxy.refuse();
    proxy.cut();
    await down;
    // Both wait for the next connection: the unsubscribe did what it was asked whatever the
    // subscribe after it gets.
    const unsubscribed = subscription.unsubscribe('no:1');
    const subscribed = subscription.subscribe('no:1');
    const outcomes = Promise.allSettled([unsubscribed, subscribed]);
    proxy.refuse(false);
    const [un, sub] = await outcomes;
    expect(un).toEqual({ status: 'fulfilled', value: undefined });
    expect(sub).toMatchObject({ status: 'rejected', reason: { code: 'ERR_PUBSUB_NOPERM' } });
    expect(subscription.channels).toEqual(['ok:1']);
    expect(subscription.confirmed().channels).toEqual(['ok:1']);
  });

  it('treats a NOPERM answer to the health-check PING as a sign of life', async () => {
    const user = await server.createUser({
      username: `noping${protocol}`,
      password: 'pw',
      rules: ['~*', '&*', '-@all', '+subscribe', '+unsubscribe', '+hello', '+client'],
    });
    const c = client(user.url, { healthCheckInterval: 30, healthCheckTimeout: 500 });
    const subscription = await c.subscribe('quiet');
    let disconnects = 0;
    subscription.on('disconnect', () => disconnects++);
    await sleep(400);
    expect(disconnects).toBe(0);
    await server.createClient().publish('quiet', 'alive');
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'alive' });
  });
});
