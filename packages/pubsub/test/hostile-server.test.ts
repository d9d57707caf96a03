// A server that breaks the protocol: a typed error, a reconnect, never a crash or a hang. The
// server here is a small scripted RESP3 speaker, since a real Redis never misbehaves this way.
import { createServer, type Server, type Socket } from 'node:net';
import { encodeValue, RespDecoder } from '@redis-events/resp';
import { afterEach, describe, expect, it } from 'vitest';
import { createPubSubClient } from '../src/client.ts';
import { PubSubError } from '../src/errors.ts';
import { nextEvent, readUntilGap } from './helpers.ts';

type Behaviour = (socket: Socket, command: string[], connection: number) => void;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

function push(...items: (string | number | null)[]): Buffer {
  const parts = items.map((item) =>
    item === null ? '_\r\n' : typeof item === 'number' ? `:${item}\r\n` : `$${Buffer.byteLength(item)}\r\n${item}\r\n`,
  );
  return Buffer.from(`>${items.length}\r\n${parts.join('')}`);
}

/** A RESP3 server: HELLO and PING answered, everything else left to `behaviour`. */
async function fakeServer(behaviour: Behaviour): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  let connections = 0;
  const server = createServer((socket) => {
    const connection = connections++;
    sockets.push(socket);
    socket.on('error', () => {});
    const decoder = new RespDecoder({
      onReply: (value) => {
        const command = (value as string[]).map(String);
        const name = command[0]?.toUpperCase();
        if (name === 'HELLO')
          socket.write(
            encodeValue(
              new Map<string, string | number>([
                ['server', 'fake'],
                ['proto', 3],
              ]),
            ),
          );
        else if (name === 'PING') socket.write('+PONG\r\n');
        else behaviour(socket, command, connection);
      },
    });
    // No encoding is set, so chunks are Buffers; @types/node 26 types them `string | Buffer`.
    socket.on('data', (chunk: Buffer | string) => decoder.feed(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, sockets };
}

/** Confirms SUBSCRIBE and UNSUBSCRIBE the way Redis does (counts aside). */
const confirm: Behaviour = (socket, command) => {
  const name = command[0]?.toLowerCase() ?? '';
  if (!['subscribe', 'unsubscribe', 'ssubscribe', 'sunsubscribe'].includes(name)) return;
  if (command.length === 1) socket.write(push(name, null, 0));
  for (const [i, channel] of command.slice(1).entries()) socket.write(push(name, channel, i + 1));
};

describe('a server that breaks the protocol', () => {
  it('answering SUBSCRIBE in-band: the first subscribe fails with ERR_PUBSUB_CONNECTION saying why', async () => {
    const { port } = await fakeServer((socket) => socket.write('+OK\r\n'));
    await using client = createPubSubClient({ port, connectTimeout: 2000 });
    const error = await client.subscribe('news').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PubSubError);
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_CONNECTION' });
    expect((error as Error).message).toMatch(/sent a reply while a subscription command still waited/);
  });

  it('sending garbage to an established subscriber: a protocol error, a reconnect, the gap, then messages again', async () => {
    const { port, sockets } = await fakeServer(confirm);
    await using client = createPubSubClient({ port, reconnect: { initialDelay: 10, maxDelay: 20 } });
    const subscription = await client.subscribe('news');
    const disconnects: Error[] = [];
    subscription.on('disconnect', ({ cause }) => disconnects.push(cause));
    sockets[0]?.write(push('message', 'news', 'fine'));
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'fine' });
    sockets[0]?.write('$x\r\n');
    const { gap } = await readUntilGap(subscription);
    expect(gap).toMatchObject({ reason: 'reconnect', channels: ['news'] });
    // The package's own error, wrapping the protocol error once (with its byte offset).
    expect(disconnects[0]).toMatchObject({ code: 'ERR_PUBSUB_PROTOCOL', cause: { code: 'ERR_RESP_PROTOCOL' } });
    expect(disconnects[0]).toBeInstanceOf(PubSubError);
    sockets[1]?.write(push('message', 'news', 'again'));
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'again' });
  });

  it('a push that is not a message, or a malformed message, is ignored; messages around it arrive', async () => {
    const { port, sockets } = await fakeServer(confirm);
    await using client = createPubSubClient({ port });
    const subscription = await client.subscribe('news');
    const socket = sockets[0] as Socket;
    socket.write(push('message', 'news', 'one'));
    socket.write(push('invalidate', 'key'));
    socket.write(push('message', 'news'));
    socket.write(push('message', 'news', 42));
    socket.write(push('message', 'news', 'two'));
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'one' });
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'two' });
  });

  it('never confirming: the subscribe times out with ERR_PUBSUB_TIMEOUT instead of hanging', async () => {
    const { port } = await fakeServer(() => {});
    await using client = createPubSubClient({ port, commandTimeout: 200 });
    const error = await client.subscribe('news').catch((err: unknown) => err);
    expect(error).toMatchObject({ code: 'ERR_PUBSUB_TIMEOUT' });
    expect((error as Error).message).toMatch(/within 200 ms/);
    expect(client.subscriptions).toEqual([]);
  });

  it('a payload beyond maxPayloadLength: a limit error, a reconnect, and the stream goes on', async () => {
    const { port, sockets } = await fakeServer(confirm);
    await using client = createPubSubClient({
      port,
      maxPayloadLength: 16,
      reconnect: { initialDelay: 10, maxDelay: 20 },
    });
    const subscription = await client.subscribe('news');
    const disconnects: Error[] = [];
    subscription.on('disconnect', ({ cause }) => disconnects.push(cause));
    sockets[0]?.write(push('message', 'news', 'x'.repeat(1000)));
    await readUntilGap(subscription);
    expect(disconnects[0]).toMatchObject({ code: 'ERR_PUBSUB_PROTOCOL', cause: { code: 'ERR_RESP_LIMIT' } });
    sockets[1]?.write(push('message', 'news', 'small'));
    expect((await nextEvent(subscription)).value).toMatchObject({ payload: 'small' });
  });

  it('unsubscribing a shard channel on its own: every channel of that slot is reported lost at once', async () => {
    const { port, sockets } = await fakeServer(confirm);
    await using client = createPubSubClient({ port });
    const subscription = await client.ssubscribe('{a}1', '{a}2', '{b}1');
    const lost: { names: readonly string[]; error: Error }[] = [];
    subscription.on('lost', (info) => lost.push(info));
    // The confirmations of a slot's channels may come in separate reads.
    sockets[0]?.write(push('sunsubscribe', '{a}1', 2));
    await new Promise((resolve) => setTimeout(resolve, 50));
    sockets[0]?.write(push('sunsubscribe', '{a}2', 1));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(lost).toHaveLength(1);
    expect([...(lost[0]?.names ?? [])].sort()).toEqual(['{a}1', '{a}2']);
    expect(lost[0]?.error.message).toMatch(/slot moved|cluster: true/);
    expect(subscription.shardChannels).toEqual(['{b}1']);
    expect(subscription.confirmed().shardChannels).toEqual(['{b}1']);
  });
});
