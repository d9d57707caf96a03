import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { CommandEvent } from '@redis-events/replication';
import type { RedisServer } from '@redis-events/testkit';
import type { Redis } from 'ioredis';
import { type Command, intOption } from '../command.ts';
import { CliError, stopName } from '../errors.ts';
import { connectTimeoutMs, probeRedis, redact, redisUrl, URL_OPTION } from '../redis-url.ts';
import { formatDuration, plural, type Terminal } from '../terminal.ts';
import { viewKeys } from './tail.ts';

type Events = { 'order.created': { orderId: number; amount: number } };

/** The tag and colour of each subsystem's lines. */
const TAGS = {
  redis: ['redis', 2],
  events: ['events', 33],
  streams: ['streams', 32],
  pubsub: ['pubsub', 35],
  broker: ['broker', 34],
  replica: ['replica', 36],
} as const;

function logger(terminal: Terminal) {
  const width = Math.max(...Object.values(TAGS).map(([t]) => t.length));
  return (tag: keyof typeof TAGS, text: string) => {
    const [name, color] = TAGS[tag];
    return terminal.line(`${terminal.style(color, name.padEnd(width))}  ${text}`);
  };
}

function short(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Resolves with the promise's value, or with undefined as soon as `signal` fires. */
function unlessStopped<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.resolve(undefined);
  }
  return new Promise<T | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) resolve(undefined);
        else reject(err);
      },
    );
  });
}

/** Shutdown gets this long in all before what is left is cut: the demo must end within 2 s of Ctrl-C. */
const SHUTDOWN_MS = 1_200;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/** One replicated write, shortly: its name, its keys, and a published message's text. */
function describeWrite(event: CommandEvent): string {
  const view = event.view;
  if (view.type === 'publish') {
    const text = view.message.toString();
    // Binary payloads (databroker's change notices) are shown by size, not as mojibake.
    const printable = isUtf8(view.message) && !view.message.some((b) => b < 0x20 && b !== 0x09 && b !== 0x0a);
    return `${event.name} ${view.channel.toString()} ${printable ? JSON.stringify(short(text, 40)) : `<${view.message.length} bytes>`}`;
  }
  const keys = viewKeys(view).map((k) => short(k.toString(), 40));
  const rest = event.args.length - keys.length;
  return `${event.name} ${keys.join(' ')}${rest > 0 ? argsSuffix(rest) : ''}`;
}

function argsSuffix(n: number): string {
  return ` (+${n} arg${n === 1 ? '' : 's'})`;
}

/**
 * The embedded Redis: a spawned redis-server, else a container. `signal` ends a spawn at once
 * (the server is killed); undefined when it did.
 */
async function embeddedRedis(signal: AbortSignal): Promise<RedisServer | undefined> {
  const { findServer, spawnRedis, startContainerRedis, TestkitError } = await import('@redis-events/testkit');
  try {
    await findServer();
  } catch {
    try {
      return await startContainerRedis();
    } catch (err) {
      throw new CliError(
        'ERR_CLI_FAILURE',
        `no embedded Redis: install redis-server (apt-get install redis-server), start a Docker-compatible engine, or pass --url (${(err as Error).message})`,
      );
    }
  }
  try {
    return await spawnRedis({ signal });
  } catch (err) {
    if (err instanceof TestkitError && err.code === 'ERR_TESTKIT_ABORTED') return undefined;
    throw err;
  }
}

export const demoCommand: Command = {
  name: 'demo',
  args: '',
  summary:
    'Every subsystem live on one Redis for a while: events, streams, Pub/Sub, databroker, and a replica watching.',
  options: {
    ...URL_OPTION,
    duration: { type: 'string', short: 'd', value: 'seconds', default: '20', description: 'how long the demo runs' },
  },
  details: `
Without --url, the demo starts its own Redis (a spawned redis-server, else a container) and
stops it at the end. With --url, it works inside its own key namespace (demo:<random>:...) on
that Redis, never touching other keys, and deletes its keys at the end; the replica view needs
the PSYNC right there.

What runs, side by side:
  events   a Mediator publishes order events; a handler sees each; the Redis event store keeps them
  streams  each order goes to a stream topic; two consumers of one group share them and ack
  pubsub   a chat message every second, received by a subscriber
  broker   a databroker record put every 1.5 s, seen by a watcher through sync
  replica  a replication listener shows every write the others make, as Redis replicates it`,
  async run({ options, terminal, signal, env }) {
    const seconds = intOption(options.duration, 'duration', { min: 1 });
    const timeoutMs = connectTimeoutMs(options);
    const log = logger(terminal);
    const began = performance.now();
    const id = randomBytes(3).toString('hex');
    const ns = `demo:${id}`;
    const brokerName = `demo-${id}`;
    const counts = {
      events: 0,
      handled: 0,
      sent: 0,
      acked: [0, 0],
      chat: 0,
      heard: 0,
      puts: 0,
      synced: 0,
      replicated: 0,
    };

    // Every other command loads only what it uses; the demo uses every package, loaded while its
    // first lines are on the screen and the embedded Redis starts (a cold start reads them from disk).
    const libraries = Promise.all([
      import('@redis-events/databroker'),
      import('@redis-events/event-store'),
      import('@redis-events/pubsub'),
      import('@redis-events/replication'),
      import('@redis-events/streams-driver'),
      import('ioredis'),
    ]);
    libraries.catch(() => {}); // awaited below; a failure is reported there
    const external = typeof options.url === 'string' || Boolean(env.REDIS_URL && options.url !== undefined);
    let server: RedisServer | undefined;
    let url: string;
    if (typeof options.url === 'string') {
      url = redisUrl(options, env);
      await probeRedis(url, { timeoutMs, signal });
      await log('redis', `using ${redact(url)}; everything lives under ${ns}:* and {${brokerName}}:*`);
    } else {
      const started = performance.now();
      await log('redis', terminal.style(2, 'starting an embedded Redis...'));
      server = await embeddedRedis(signal);
      if (!server || signal.aborted) {
        await server?.stop();
        terminal.info(`demo stopped by ${stopName(signal.reason)} while starting; the embedded Redis is stopped`);
        return undefined;
      }
      url = server.url;
      await log(
        'redis',
        `embedded ${server.kind} ${server.version.text} at ${server.host}:${server.port} (${Math.round(performance.now() - started)} ms)`,
      );
    }

    const [
      { DataBroker },
      { Mediator, RedisEventStore },
      { createPubSubClient },
      { ReplicaListener },
      { Subscription, Topic },
      { Redis },
    ] = await libraries;
    const clients: Redis[] = [];
    const client = () => {
      const c = new Redis(url, { maxRetriesPerRequest: null, connectTimeout: timeoutMs } as never);
      c.on('error', () => {});
      clients.push(c);
      return c;
    };
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) stop.abort(); // a stop that came while the libraries loaded
    const background: Promise<unknown>[] = [];
    const closers: (() => Promise<unknown>)[] = [];
    const replica: { state: 'starting' | 'listening' | 'failed' } = { state: 'starting' };
    let newestText = '';

    try {
      // replica: a listener that sees every write the others make.
      const listener = new ReplicaListener({ url, discardRdb: true, name: 'redis-events-demo', reconnect: false });
      closers.push(() => listener.close());
      const mine = (event: CommandEvent) => {
        if (event.name === 'PING' || event.name === 'REPLCONF' || event.name === 'SELECT') return false;
        if (!external) return true;
        return viewKeys(event.view).some((k) => {
          const key = k.toString();
          return key.startsWith(`${ns}:`) || key.startsWith(`{${brokerName}}`);
        });
      };
      let transaction: string[] | undefined;
      const replicaReady = new Promise<void>((resolve) => {
        background.push(
          (async () => {
            try {
              for await (const event of listener) {
                if (event.kind === 'snapshot-done' || event.kind === 'continued') resolve();
                if (event.kind !== 'command') continue;
                // A transaction is shown as one line: MULTI { XADD key · PEXPIREAT key } EXEC.
                if (event.name === 'MULTI') {
                  transaction = [];
                  continue;
                }
                if (event.name === 'EXEC' && transaction) {
                  const body = transaction;
                  transaction = undefined;
                  if (body.length > 0)
                    await log('replica', terminal.style(2, `db${event.db} MULTI { ${body.join(' · ')} } EXEC`));
                  continue;
                }
                if (!mine(event)) continue;
                counts.replicated++;
                const text = describeWrite(event);
                if (transaction) transaction.push(text);
                else await log('replica', terminal.style(2, `db${event.db} ${text}`));
              }
            } catch (err) {
              replica.state = 'failed';
              resolve();
              if (!stop.signal.aborted)
                await log('replica', `cannot listen as a replica here: ${(err as Error).message}; going on without`);
            }
          })(),
        );
      });
      await Promise.race([replicaReady, sleep(10_000, stop.signal)]);
      if (!stop.signal.aborted && replica.state === 'starting') {
        replica.state = 'listening';
        await log('replica', 'listening as a replica: every write below is what Redis replicates');
      }

      // events: a mediator with a Redis event store.
      const store = new RedisEventStore(client(), { prefix: `${ns}:events`, eventTtl: 3_600_000 });
      closers.push(() => store.close());
      const mediator = new Mediator<Events>();
      mediator.registerEventStore(store);
      mediator.subscribe('order.created', async (event) => {
        counts.handled++;
        await log('events', `handler saw order #${event.payload.orderId} (${event.payload.amount.toFixed(2)} EUR)`);
      });

      // streams: a topic and two consumers of one group.
      const topic = new Topic(client(), `${ns}:orders`, { create: true, retention: { maxLen: 10_000 } });
      closers.push(() => topic.shutdown());
      for (const [i, name] of ['billing-a', 'billing-b'].entries()) {
        const subscription = new Subscription(client(), {
          topic: `${ns}:orders`,
          group: 'billing',
          consumer: name,
          prefetch: 1,
        });
        closers.push(() => subscription.shutdown({ timeoutMs: 500 }));
        await unlessStopped(subscription.ready(), stop.signal);
        background.push(
          (async () => {
            while (!stop.signal.aborted) {
              const message = await subscription.receive({ signal: stop.signal }).catch(() => undefined);
              if (!message) continue;
              await message.ack();
              counts.acked[i] = (counts.acked[i] ?? 0) + 1;
              await log('streams', `${name} acked ${message.id}: ${short(message.body.toString())}`);
            }
          })(),
        );
      }

      // pubsub: a subscriber and a publisher.
      const pubsub = createPubSubClient({ url, name: 'redis-events-demo' });
      closers.push(() => pubsub.close());
      const chat = await unlessStopped(pubsub.subscribe(`${ns}:chat`), stop.signal);
      if (chat)
        background.push(
          (async () => {
            for await (const event of chat) {
              if (event.kind === 'gap') continue;
              counts.heard++;
              await log(
                'pubsub',
                `subscriber heard on ${event.channel.slice(ns.length + 1)}: ${String(event.payload)}`,
              );
            }
          })(),
        );

      // broker: records with versions, followed by a watcher.
      const broker = new DataBroker(client(), { name: brokerName });
      closers.push(() => broker.close());
      const latest = await unlessStopped(broker.syncLatest('user'), stop.signal);
      const changes = latest ? broker.sync('user', latest.serverVersion, latest.recordVersion) : undefined;
      if (changes) closers.push(() => changes.close());
      background.push(
        (async () => {
          if (!changes) return;
          try {
            for await (const change of changes) {
              counts.synced++;
              await log(
                'broker',
                `watcher synced ${change.type}/${change.id} v${change.version}: ${JSON.stringify(change.data)}`,
              );
            }
          } catch (err) {
            if (!stop.signal.aborted) throw err;
          }
        })(),
      );

      // The producers, for the demo's duration.
      const end = Date.now() + seconds * 1000;
      const users = ['ada', 'grace', 'linus', 'margaret'];
      for (let tick = 0; Date.now() < end && !stop.signal.aborted; tick++) {
        if (tick % 2 === 0) {
          const order = {
            orderId: ++counts.events,
            amount: Math.round((5 + ((counts.events * 7.31) % 95)) * 100) / 100,
          };
          await unlessStopped(mediator.publish({ name: 'order.created', payload: order }), stop.signal);
          const sent = await unlessStopped(
            topic.send({ body: JSON.stringify(order), metadata: { type: 'order.created' } }, { signal: stop.signal }),
            stop.signal,
          );
          if (sent !== undefined) counts.sent++;
        }
        if (tick % 5 === 1 && !stop.signal.aborted) {
          counts.chat++;
          await unlessStopped(pubsub.publish(`${ns}:chat`, `hello #${counts.chat} from the demo`), stop.signal);
        }
        if (tick % 7 === 3 && !stop.signal.aborted) {
          const user = users[counts.puts % users.length] ?? 'ada';
          const put = await unlessStopped(
            broker.put([{ type: 'user', id: user, data: { name: user, visits: counts.puts + 1 } }]),
            stop.signal,
          );
          if (put !== undefined) counts.puts++;
        }
        await sleep(200, stop.signal);
      }

      // Let the consumers catch up, then read back from the store.
      const settle = Date.now() + 3_000;
      while (Date.now() < settle && !stop.signal.aborted) {
        if ((counts.acked[0] ?? 0) + (counts.acked[1] ?? 0) >= counts.sent && counts.synced >= counts.puts) break;
        await sleep(100, stop.signal);
      }
      if (!stop.signal.aborted) {
        const newest = await store.getEvents<Events['order.created']>('order.created', 3);
        newestText = `${newest.map((e) => `#${e.payload.orderId}`).join(', ')} (of ${await store.count('order.created')})`;
        await log('events', `the store's newest events: ${newestText}`);
      }
    } finally {
      stop.abort();
      signal.removeEventListener('abort', onAbort);
      // Everything closes at once, within a bound: after Ctrl-C a person waits for nothing.
      const cut = new AbortController();
      const bounded = (work: Promise<unknown>) => unlessStopped(work, cut.signal);
      const deadline = setTimeout(() => cut.abort(), SHUTDOWN_MS);
      await bounded(Promise.allSettled(closers.reverse().map((close) => close())));
      await bounded(Promise.allSettled(background));
      clearTimeout(deadline);
      for (const c of clients) c.disconnect();
      if (server) {
        await server.stop();
      } else {
        const cleaner = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: timeoutMs } as never);
        cleaner.on('error', () => {});
        try {
          for (const pattern of [`${ns}:*`, `{${brokerName}}*`]) {
            let cursor = '0';
            do {
              const [next, keys] = await cleaner.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
              cursor = next;
              if (keys.length > 0) await cleaner.unlink(...keys);
            } while (cursor !== '0');
          }
        } catch {
          terminal.warn(`could not delete the demo's keys (${ns}:*, {${brokerName}}*)`);
        } finally {
          cleaner.disconnect();
        }
      }
    }

    const ran = formatDuration(performance.now() - began);
    const [tag, bold] = [
      (name: keyof typeof TAGS) => terminal.style(TAGS[name][1], TAGS[name][0].padEnd(7)),
      (t: string) => terminal.style(1, t),
    ];
    await terminal.line('');
    await terminal.line(
      bold(signal.aborted ? `what happened in ${ran}, until ${stopName(signal.reason)}` : `what happened in ${ran}`),
    );
    await terminal.line(
      `  ${tag('events')}  ${plural(counts.events, 'order event')} published through the Mediator, ${counts.handled} handled, all kept in the Redis event store${newestText ? ` (newest ${newestText})` : ''}`,
    );
    await terminal.line(
      `  ${tag('streams')}  ${plural(counts.sent, 'message')} sent to a topic; the group's two consumers shared them: billing-a acked ${counts.acked[0]}, billing-b ${counts.acked[1]}`,
    );
    await terminal.line(
      `  ${tag('pubsub')}  ${plural(counts.chat, 'chat message')} published, ${counts.heard} heard by the subscriber`,
    );
    await terminal.line(
      `  ${tag('broker')}  ${plural(counts.puts, 'record')} put with versions, ${counts.synced} synced to the watcher`,
    );
    await terminal.line(
      replica.state === 'failed'
        ? `  ${tag('replica')}  could not listen as a replica on this server (see above)`
        : `  ${tag('replica')}  ${plural(counts.replicated, 'write')} seen as Redis replicated them`,
    );
    await terminal.line(
      server
        ? `  ${tag('redis')}  the embedded Redis is stopped; nothing is left running`
        : `  ${tag('redis')}  the demo's keys are deleted from ${redact(url)}`,
    );
    return undefined;
  },
};
