// temp: profile a live full sync
import { ReplicaListener } from '@redis-events/replication';
import { spawnRedis } from '@redis-events/testkit';
import { writeMix } from './mix.ts';
const diskless = process.argv.includes('--diskless');
const reps = Number(process.env.REPS ?? 3);
await using master = await spawnRedis({ config: { 'repl-diskless-sync': diskless ? 'yes' : 'no', 'repl-diskless-sync-delay': '0' } });
const client = master.createClient({ protocol: 2 });
await writeMix(client, 200_000);
await client.call('SAVE');
const keysExpected = await client.dbsize();
for (let r = 0; r < reps; r++) {
  const t0 = performance.now(); const c0 = process.threadCpuUsage();
  const listener = new ReplicaListener({ host: master.host, port: master.port, discardRdb: process.argv.includes('--discard') });
  let keys = 0; let firstByte = 0;
  for await (const event of listener) {
    if (event.kind === 'full-sync-start') firstByte = performance.now() - t0;
    if (event.kind === 'entry' && event.last) keys++;
    else if (event.kind === 'snapshot-done') break;
  }
  const c = process.threadCpuUsage(c0);
  console.log(`sync ${(performance.now() - t0).toFixed(0)} ms (snapshot starts at ${firstByte.toFixed(0)} ms), thread-cpu ${((c.user + c.system) / 1000).toFixed(0)} ms, keys ${keys}/${keysExpected}`);
}
client.disconnect();
