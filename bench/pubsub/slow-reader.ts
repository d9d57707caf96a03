// A subscriber that is not read while large messages arrive: does the server keep it? Redis
// drops a Pub/Sub client whose output buffer passes `client-output-buffer-limit pubsub` (32 MiB
// hard, 8 MiB for 60 s by default). For each publish rate, a publisher process (with its own
// sampler of the subscriber's output buffer, CLIENT LIST omem) sends 1 MiB messages to one
// subscriber that nobody reads: a raw socket that only counts bytes (what any client must at
// least do), and ours with string and Buffer payloads (its default buffer policy drops).
//
//   node --conditions=@redis-events/source bench/pubsub/slow-reader.ts [megabytes] [runs] [rates...]
//   rates in MiB/s, 0 = as fast as one pipelined socket goes; REDIS_SERVER picks the server.
import { fork } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { createPubSubClient } from '@redis-events/pubsub';
import { spawnRedis } from '@redis-events/testkit';

const MiB = 1 << 20;

if (process.argv[2] === '--publisher') {
  // The publisher: `total` messages of 1 MiB at `rate` MiB/s, then reports the peak omem seen.
  const [port, total, rate] = process.argv.slice(3).map(Number) as [number, number, number];
  const payload = 'x'.repeat(MiB);
  const command = Buffer.from(`*3\r\n$7\r\nPUBLISH\r\n$3\r\nbig\r\n$${MiB}\r\n${payload}\r\n`);
  const open = () =>
    new Promise<Socket>((resolve) => {
      const socket: Socket = connect(port, '127.0.0.1', () => resolve(socket));
      socket.on('data', () => {});
    });
  const [pub, admin] = await Promise.all([open(), open()]);
  let peak = 0;
  let sampling = true;
  let pending = '';
  admin.removeAllListeners('data');
  const sample = () => admin.write('CLIENT LIST TYPE pubsub\r\n');
  admin.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const end = pending.lastIndexOf('\r\n');
    if (end < 0 || !/^\$\d+\r\n/.test(pending)) return;
    const length = Number(/^\$(\d+)/.exec(pending)?.[1]);
    if (pending.length < length + String(length).length + 5) return;
    for (const m of pending.matchAll(/ omem=(\d+)/g)) peak = Math.max(peak, Number(m[1]));
    pending = '';
    if (sampling) setImmediate(sample);
  });
  sample();
  const start = performance.now();
  for (let sent = 0; sent < total; ) {
    const due = rate === 0 ? total : Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate) + 1);
    if (due > sent) {
      const batch = Buffer.concat(Array.from({ length: due - sent }, () => command));
      sent = due;
      if (!pub.write(batch)) await new Promise((resolve) => pub.once('drain', resolve));
    } else await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  sampling = false;
  process.send?.({ peak, seconds: (performance.now() - start) / 1000 });
  pub.destroy();
  admin.destroy();
  process.exit(0);
}

const total = Number(process.argv[2] ?? 120);
const runs = Number(process.argv[3] ?? 3);
const rates = process.argv.slice(4).map(Number);
if (rates.length === 0) rates.push(0, 400, 200, 100);

interface Subject {
  received(): number;
  disconnected(): boolean;
  close(): Promise<void>;
}

async function raw(port: number): Promise<Subject> {
  const socket = connect(port, '127.0.0.1');
  let bytes = 0;
  let closed = false;
  socket.on('close', () => (closed = true)).on('error', () => {});
  socket.on('data', (chunk) => (bytes += chunk.length));
  socket.write('SUBSCRIBE big\r\n');
  while (bytes === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  bytes = 0;
  return {
    received: () => Math.floor(bytes / MiB),
    disconnected: () => closed,
    close: async () => void socket.destroy(),
  };
}

async function ours(port: number, payloads: 'string' | 'buffer'): Promise<Subject> {
  const client = createPubSubClient({ url: `redis://127.0.0.1:${port}`, payloads, reconnect: false });
  const subscription = await client.subscribe('big');
  let lost = false;
  subscription.on('disconnect', () => (lost = true));
  return {
    received: () => subscription.buffered + subscription.dropped,
    disconnected: () => lost,
    close: () => client.close(),
  };
}

const server = await spawnRedis();
console.log(`${server.version.text}: ${total} messages of 1 MiB to a subscriber nobody reads, ${runs} runs each`);
console.log('');
console.log('| publish rate | subscriber | kept by the server | peak server output buffer (MiB) |');
console.log('|---|---|---:|---:|');
const subjects: [string, (port: number) => Promise<Subject>][] = [
  ['raw socket', raw],
  ['ours, string payloads', (port) => ours(port, 'string')],
  ['ours, Buffer payloads', (port) => ours(port, 'buffer')],
];
for (const rate of rates) {
  for (const [name, open] of subjects) {
    let kept = 0;
    const peaks: number[] = [];
    for (let run = 0; run < runs; run++) {
      const subject = await open(server.port);
      const child = fork(import.meta.filename, ['--publisher', String(server.port), String(total), String(rate)], {
        execArgv: process.execArgv,
      });
      const report = await new Promise<{ peak: number }>((resolve) => child.once('message', resolve));
      await new Promise((resolve) => child.once('exit', resolve));
      const deadline = Date.now() + 5000;
      while (!subject.disconnected() && subject.received() < total && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 5));
      if (!subject.disconnected()) kept++;
      peaks.push(report.peak / MiB);
      await subject.close();
    }
    const label = rate === 0 ? 'burst (one pipelined write)' : `${rate} MiB/s`;
    console.log(`| ${label} | ${name} | ${kept} of ${runs} | ${peaks.map((p) => p.toFixed(0)).join(', ')} |`);
  }
}
await server.stop();
