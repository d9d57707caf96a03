// Soak worker: a databroker writer and a waiting sync reader through the fault proxy. Every
// confirmed put must reach the reader exactly once and in version order.
import { DataBroker } from '@redis-events/databroker';
import { Redis } from 'ioredis';
import { runWorker } from './worker.ts';

await runWorker('databroker', async ({ proxyUrl, stopSignal, onStop, report }) => {
  const client = () => {
    const c = new Redis(proxyUrl, { maxRetriesPerRequest: null } as never);
    c.on('error', () => {});
    return c;
  };
  const writerClient = client();
  const readerClient = client();
  const writer = new DataBroker(writerClient, { name: 'soak' });
  const reader = new DataBroker(readerClient, { name: 'soak' });

  const confirmed = new Set<number>();
  const seen = new Map<number, number>();
  let putFailures = 0;
  let outOfOrder = 0;
  let lastSeen = 0;
  let restartsOfSync = 0;
  let n = 0;

  const { serverVersion, recordVersion } = await reader.syncLatest('soak');
  const reading = (async () => {
    let position = recordVersion;
    const drained = new AbortController();
    onStop(() => {
      const deadline = Date.now() + 60_000;
      const check = setInterval(() => {
        const missing = [...confirmed].some((v) => !seen.has(v));
        if (!missing || Date.now() > deadline) {
          clearInterval(check);
          drained.abort();
        }
      }, 200);
    });
    while (!drained.signal.aborted) {
      const stream = reader.sync('soak', serverVersion, position);
      const stopStream = () => void stream.close();
      drained.signal.addEventListener('abort', stopStream);
      try {
        for await (const record of stream) {
          if (record.version <= lastSeen) outOfOrder++;
          lastSeen = Math.max(lastSeen, record.version);
          seen.set(record.version, (seen.get(record.version) ?? 0) + 1);
        }
      } catch {
        restartsOfSync++; // a broken connection ends the stream; resume from its position
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        drained.signal.removeEventListener('abort', stopStream);
        position = Math.max(position, stream.recordVersion);
      }
    }
  })();

  const writing = (async () => {
    while (!stopSignal.aborted) {
      try {
        const { records } = await writer.put([{ type: 'soak', id: `r${n++ % 500}`, data: { n } }]);
        for (const record of records) confirmed.add(record.version);
      } catch {
        putFailures++;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();

  const stats = () => {
    let duplicates = 0;
    for (const count of seen.values()) duplicates += count - 1;
    return {
      puts: n,
      confirmed: confirmed.size,
      putFailures,
      seen: seen.size,
      duplicates,
      outOfOrder,
      lost: [...confirmed].filter((v) => !seen.has(v)).length,
      syncResumed: restartsOfSync,
    };
  };
  const ticker = setInterval(() => report(stats()), 2_000);
  await writing;
  await reading;
  clearInterval(ticker);
  await writer.close();
  await reader.close();
  writerClient.disconnect();
  readerClient.disconnect();
  return stats();
});
