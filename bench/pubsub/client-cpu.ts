// The subscriber's own cost, without a server in the way: a local socket answers the handshake
// and SUBSCRIBE like Redis 7 would, then writes 200k prebuilt RESP3 message pushes (64 B
// payloads) in one go. Each subscriber library counts them; what is reported is the CPU time
// of this process per message (user + system, min and median of the runs), which a busy machine
// disturbs far less than throughput. Rounds alternate the subjects.
//
//   node --conditions=@redis-events/source bench/pubsub/client-cpu.ts [rounds] [runs]
import { subscribe as listen, tracingChannel } from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { CHANNELS, createPubSubClient } from '@redis-events/pubsub';
import { Redis } from 'ioredis';

const require = createRequire(import.meta.url);
const rounds = Number(process.argv[2] ?? 3);
const runs = Number(process.argv[3] ?? 15);
const COUNT = 200_000;
const channel = 'client-cpu';
const pushes = Buffer.concat(
  Array.from({ length: COUNT }, (_, i) => {
    const payload = String(i).padEnd(64, 'x');
    return Buffer.from(`>3\r\n$7\r\nmessage\r\n$${channel.length}\r\n${channel}\r\n$64\r\n${payload}\r\n`);
  }),
);

/** Reads RESP command arrays from a client and answers them the way Redis 7 would, minimally. */
function answer(socket: Socket, onSubscriber: (socket: Socket) => void): void {
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const args: string[] = [];
      let pos = 0;
      const text = pending.toString('latin1');
      const head = /^\*(\d+)\r\n/.exec(text);
      if (!head) return;
      pos = head[0].length;
      for (let i = 0; i < Number(head[1]); i++) {
        const bulk = /^\$(\d+)\r\n/.exec(text.slice(pos));
        if (!bulk) return;
        const start = pos + bulk[0].length;
        const end = start + Number(bulk[1]);
        if (text.length < end + 2) return;
        args.push(text.slice(start, end));
        pos = end + 2;
      }
      pending = pending.subarray(pos);
      const command = args[0]?.toUpperCase();
      if (command === 'HELLO') socket.write('%3\r\n+server\r\n+redis\r\n+version\r\n+7.0.15\r\n+proto\r\n:3\r\n');
      else if (command === 'SUBSCRIBE') {
        socket.write(`>3\r\n$9\r\nsubscribe\r\n$${channel.length}\r\n${channel}\r\n:1\r\n`);
        onSubscriber(socket);
      } else if (command === 'INFO') {
        const info = '# Server\r\nloading:0\r\n';
        socket.write(`$${info.length}\r\n${info}\r\n`);
      } else socket.write('+OK\r\n');
    }
  });
}

let subscriber: Socket | undefined;
const server = createServer((socket) =>
  answer(socket, (s) => {
    subscriber = s;
  }),
);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `redis://127.0.0.1:${(server.address() as { port: number }).port}`;

interface Subject {
  /** Resolves once `COUNT` more messages arrived. */
  wait(): Promise<void>;
  close(): Promise<void>;
}

function counter() {
  let left = 0;
  let done = () => {};
  return {
    tick() {
      if (--left === 0) done();
    },
    wait() {
      left = COUNT;
      return new Promise<void>((resolve) => {
        done = resolve;
      });
    },
  };
}

async function ours(): Promise<Subject> {
  const client = createPubSubClient({ url, healthCheckInterval: 0 });
  const subscription = await client.subscribe(channel);
  const count = counter();
  void (async () => {
    for await (const event of subscription) if (event.kind !== 'gap') count.tick();
  })();
  return { wait: () => count.wait(), close: () => client.close() };
}

const noop = (): void => {};
const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
/** Ours with a listener on every diagnostics channel of the package. */
async function observed(): Promise<Subject> {
  tracingChannel(CHANNELS.subscribe).subscribe(handlers);
  tracingChannel(CHANNELS.publish).subscribe(handlers);
  for (const name of [CHANNELS.message, CHANNELS.drop, CHANNELS.gap]) listen(name, noop);
  return ours();
}

async function nodeRedis(): Promise<Subject> {
  const { createClient } = require('@redis/client');
  const client = createClient({ url });
  client.on('error', noop);
  await client.connect();
  const count = counter();
  await client.subscribe(channel, () => count.tick());
  return { wait: () => count.wait(), close: async () => client.destroy() };
}

async function ioredis(): Promise<Subject> {
  const client = new Redis(url);
  const count = counter();
  client.on('message', () => count.tick());
  await client.subscribe(channel);
  return { wait: () => count.wait(), close: async () => void client.disconnect() };
}

/** CPU µs per message over `runs` runs of one subject (after one warm-up run). */
async function measure(open: () => Promise<Subject>): Promise<number[]> {
  const subject = await open();
  const samples: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const before = process.cpuUsage();
    const arrived = subject.wait();
    subscriber?.write(pushes);
    await arrived;
    const used = process.cpuUsage(before);
    if (i > 0) samples.push((used.user + used.system) / COUNT);
  }
  await subject.close();
  return samples.sort((a, b) => a - b);
}

const subjects: [string, () => Promise<Subject>][] = [
  ['ours', ours],
  ['@redis/client', nodeRedis],
  ['ioredis 6', ioredis],
];
const results = new Map<string, number[]>();
for (let round = 0; round < rounds; round++) {
  for (const [name, open] of subjects) results.set(name, [...(results.get(name) ?? []), ...(await measure(open))]);
}
// Last: once a listener subscribed, it stays for the rest of the process.
results.set('ours, observed', await measure(observed));
console.log(`CPU time of the subscriber's process per message (µs), ${COUNT} pushes of 64 B per run:`);
console.log('');
console.log('| subscriber | min | median |');
console.log('|---|---:|---:|');
for (const [name, samples] of results) {
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)] as number;
  console.log(`| ${name} | ${(samples[0] as number).toFixed(3)} | ${median.toFixed(3)} |`);
}
server.close();
process.exit(0);
