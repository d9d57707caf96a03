// Soak worker: a Pub/Sub subscriber through the fault proxy, a publisher straight to the server.
// Pub/Sub is at most once: messages in a reconnect gap are lost and reported as gaps; what must
// hold is that the subscription is restored every time, nothing arrives twice or out of order.
import { createPubSubClient } from '@redis-events/pubsub';
import { runWorker } from './worker.ts';

await runWorker('pubsub', async ({ proxyUrl, directUrl, stopSignal, onStop, report }) => {
  const subscriber = createPubSubClient({ url: proxyUrl, healthCheckInterval: 1_000, healthCheckTimeout: 1_000 });
  const publisher = createPubSubClient({ url: directUrl });
  const subscription = await subscriber.subscribe('soak:chat');
  let restored = 0;
  subscription.on('reconnect', () => {
    restored++;
  });

  let published = 0;
  let publishFailures = 0;
  let received = 0;
  let gaps = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let last = -1;
  const seen = new Set<number>();

  const publishing = (async () => {
    while (!stopSignal.aborted) {
      try {
        await publisher.publish('soak:chat', String(published));
        published++;
      } catch {
        publishFailures++;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();

  const receiving = (async () => {
    const stop = () => void subscription.close();
    onStop(() => setTimeout(stop, 2_000)); // let the last messages arrive
    for await (const event of subscription) {
      if (event.kind === 'gap') {
        gaps++;
        continue;
      }
      const n = Number(event.payload);
      if (seen.has(n)) duplicates++;
      else if (n < last) outOfOrder++;
      seen.add(n);
      last = Math.max(last, n);
      received++;
    }
  })();

  const stats = () => ({
    published,
    publishFailures,
    received,
    missedInGaps: published - received,
    gaps,
    subscriptionsRestored: restored,
    duplicates,
    outOfOrder,
    dropped: subscription.dropped,
  });
  const ticker = setInterval(() => report(stats()), 2_000);
  await publishing;
  await receiving;
  clearInterval(ticker);
  await subscriber.close();
  await publisher.close();
  return stats();
});
