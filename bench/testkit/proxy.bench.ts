// What the testkit's fault-injection proxy costs: the same pipelined traffic straight to the
// server and through the proxy. Fault tests must not measure the proxy instead of the client.
import { startProxy, type TcpProxy } from '@redis-events/testkit';
import { Redis } from 'ioredis';
import { type BenchCase, benchRedisUrl, runSuite } from '../lib/harness.ts';

interface Context {
  client: Redis;
  proxy?: TcpProxy;
}

const PIPELINE = 2000;

function setup(viaProxy: boolean, valueSize: number) {
  return async (): Promise<Context> => {
    const url = new URL(benchRedisUrl());
    const target = { host: url.hostname, port: Number(url.port) };
    const proxy = viaProxy ? await startProxy({ target }) : undefined;
    const client = new Redis({ host: target.host, port: proxy?.port ?? target.port, protocol: 2 });
    await client.set(`bench:proxy:${valueSize}`, Buffer.alloc(valueSize, 7));
    return proxy ? { client, proxy } : { client };
  };
}

function pipelinedGets(valueSize: number) {
  return async ({ client }: Context) => {
    const pipeline = client.pipeline();
    for (let i = 0; i < PIPELINE; i++) pipeline.getBuffer(`bench:proxy:${valueSize}`);
    const replies = (await pipeline.exec()) ?? [];
    const last = replies[replies.length - 1]?.[1] as Buffer | undefined;
    if (replies.length !== PIPELINE || last?.length !== valueSize) throw new Error('wrong reply');
    return { ops: PIPELINE, bytes: PIPELINE * valueSize };
  };
}

async function teardown({ client, proxy }: Context): Promise<void> {
  client.disconnect();
  await proxy?.close();
}

const cases: BenchCase<Context>[] = [];
for (const size of [64, 16 * 1024]) {
  const group = `${PIPELINE} pipelined GETs of ${size} B`;
  cases.push({ group, subject: 'ours', setup: setup(true, size), run: pipelinedGets(size), teardown });
  cases.push({ group, subject: 'direct (no proxy)', setup: setup(false, size), run: pipelinedGets(size), teardown });
}

await runSuite(import.meta.url, 'testkit: TCP proxy overhead', cases, { redis: true });
