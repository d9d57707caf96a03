// The project's main job, until the `redis-events` CLI lands with the full demo: start an
// embedded Redis and show each landed package doing its job against it.
import { startCluster, startProxy, startRedis, startReplicaSet } from '@redis-events/testkit';

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number, text: string) => (color ? `\x1b[${code}m${text}\x1b[0m` : text);
const ok = (text: string) => console.log(`  ${paint(32, '✓')} ${text}`);
const title = (text: string) => console.log(`\n${paint(1, text)}`);
const since = (start: number) => `${Math.round(performance.now() - start)} ms`;

title('redis-events demo');
let start = performance.now();
await using server = await startRedis();
ok(`embedded Redis: ${server.kind} ${server.version.text} at ${server.host}:${server.port} (${since(start)})`);

title('@redis-events/testkit: a real Redis for tests, with faults');
const client = server.createClient({ lazyConnect: true });
await client.connect();
await client.set('demo:greeting', 'hello from redis-events');
ok(`SET/GET on the embedded server: "${await client.get('demo:greeting')}"`);

await using proxy = await startProxy({ target: server });
const viaProxy = server.createClient({ port: proxy.port });
viaProxy.on('error', () => {});
await viaProxy.ping();
const reconnected = new Promise((resolve) => viaProxy.once('ready', resolve));
proxy.cut();
await reconnected;
ok(`TCP proxy cut the connection; the client reconnected and answers: ${await viaProxy.ping()}`);
viaProxy.disconnect();

start = performance.now();
await using set = await startReplicaSet({ replicas: 1 });
await set.master.createClient().set('demo:replicated', 'yes');
await set.waitForSync();
ok(
  `master + replica: a write on the master is read on the replica: ${await set.replicas[0]?.command('GET', 'demo:replicated')} (${since(start)})`,
);

start = performance.now();
await using cluster = await startCluster({ masters: 3 });
const clusterClient = cluster.createClient();
for (let i = 0; i < 30; i++) await clusterClient.set(`demo:${i}`, String(i));
const owners = new Set<number>();
for (let i = 0; i < 30; i++) owners.add((await cluster.ownerOf(await cluster.keySlot(`demo:${i}`))).port);
ok(`3-master cluster: cluster_state:ok, 30 keys spread over ${owners.size} masters (${since(start)})`);

title('shutting down');
clusterClient.disconnect();
ok('every server and proxy is stopped when this scope ends');
