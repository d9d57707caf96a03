// Soak worker: a streams-driver producer and consumer group through the fault proxy. Every
// confirmed send must be delivered (at least once); an acknowledged message must never come back.
import { Subscription, Topic } from '@redis-events/streams-driver';
import { Redis } from 'ioredis';
import { runWorker } from './worker.ts';

await runWorker('streams', async ({ proxyUrl, stopSignal, onStop, report }) => {
  const client = () => {
    const c = new Redis(proxyUrl, { maxRetriesPerRequest: null } as never);
    c.on('error', () => {});
    return c;
  };
  const producerClient = client();
  const consumerClient = client();
  const topic = new Topic(producerClient, 'soak:orders', { create: true, retention: { maxLen: 1_000_000 } });
  const subscription = new Subscription(consumerClient, {
    topic: 'soak:orders',
    group: 'soak',
    consumer: 'soak-consumer',
    ackDeadlineMs: 5_000,
    from: '0',
  });
  await subscription.ready();

  const confirmed = new Set<number>();
  const delivered = new Map<number, number>();
  const acked = new Set<number>();
  const ackedIds = new Set<string>();
  let sendFailures = 0;
  let ackedCameBack = 0;
  let seq = 0;

  const producing = (async () => {
    const inFlight = new Set<Promise<void>>();
    while (!stopSignal.aborted) {
      const n = seq++;
      const p = topic
        .send({ body: String(n) })
        .then(() => {
          confirmed.add(n);
        })
        .catch(() => {
          sendFailures++;
        })
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= 50) await Promise.race(inFlight);
      await new Promise((r) => setTimeout(r, 2));
    }
    await Promise.allSettled(inFlight);
  })();

  const consuming = (async () => {
    const drainSignal = new AbortController();
    onStop(() => {
      // After the producer stops, keep consuming until every confirmed message arrived (or 60 s).
      const deadline = Date.now() + 60_000;
      const check = setInterval(() => {
        const missing = [...confirmed].some((n) => !acked.has(n));
        if (!missing || Date.now() > deadline) {
          clearInterval(check);
          drainSignal.abort();
        }
      }, 200);
    });
    while (!drainSignal.signal.aborted) {
      try {
        const message = await subscription.receive({ signal: drainSignal.signal });
        // A retried send may store one body twice (at-least-once on the producer side): the
        // duplicates count bodies; an entry id seen again after its ack is a real violation.
        const n = Number(message.body.toString());
        if (ackedIds.has(message.id)) ackedCameBack++;
        delivered.set(n, (delivered.get(n) ?? 0) + 1);
        await message.ack();
        acked.add(n);
        ackedIds.add(message.id);
      } catch {
        if (drainSignal.signal.aborted) break;
      }
    }
  })();

  const stats = () => {
    let duplicates = 0;
    for (const count of delivered.values()) duplicates += count - 1;
    const lost = [...confirmed].filter((n) => !delivered.has(n)).length;
    return {
      sent: seq,
      confirmed: confirmed.size,
      sendFailures,
      delivered: delivered.size,
      duplicates,
      ackedCameBack,
      lost,
      retries: subscription.stats.retries,
      claimed: subscription.stats.claimed,
    };
  };
  const ticker = setInterval(() => report(stats()), 2_000);
  await producing;
  await consuming;
  clearInterval(ticker);
  await subscription.shutdown().catch(() => {});
  await topic.shutdown().catch(() => {});
  producerClient.disconnect();
  consumerClient.disconnect();
  return stats();
});
