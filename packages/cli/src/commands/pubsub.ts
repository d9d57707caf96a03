import { createInterface } from 'node:readline';
import { type Command, intOption } from '../command.ts';
import { stopName, usage } from '../errors.ts';
import { toJson } from '../json.ts';
import { connectTimeoutMs, probeRedis, redact, redisUrl, URL_OPTION } from '../redis-url.ts';
import { plural } from '../terminal.ts';
import { STDIN } from './stream.ts';

/** A channel name is a pattern when it holds a glob special (`*`, `?`, `[`). */
function isPattern(name: string): boolean {
  return /[*?[]/.test(name);
}

export const subCommand: Command = {
  name: 'sub',
  args: '<channel or pattern...>',
  summary: 'Subscribe to channels and patterns (@redis-events/pubsub) and print every message, until Ctrl-C.',
  options: {
    ...URL_OPTION,
    shard: { type: 'boolean', description: 'sharded channels (SSUBSCRIBE, Redis 7+): for a cluster' },
    cluster: { type: 'boolean', description: 'the URL is one node of a Redis Cluster' },
    count: { type: 'string', short: 'n', value: 'n', description: 'exit after n messages' },
    pretty: { type: 'boolean', description: 'one readable line per message instead of JSON' },
  },
  details: `
A name with *, ? or [ is a pattern (PSUBSCRIBE), others are channels. Pub/Sub is at most once:
after a reconnect (subscriptions are restored automatically) or when this reader falls behind,
a gap line says that messages may be missing, on stderr.

A payload that is not UTF-8 prints as {"base64":"..."}.

JSON lines: {"kind":"message","channel":"orders","payload":"..."}
            {"kind":"pmessage","channel":"audit:login","pattern":"audit:*","payload":"..."}

Examples:
  redis-events sub orders 'audit:*'
  redis-events sub --shard --cluster user:{42}:events --url redis://node1:7000`,
  async run({ positionals, options, terminal, signal, env }) {
    if (positionals.length === 0)
      throw usage('sub needs at least one channel or pattern (see redis-events sub --help)');
    const count =
      options.count === undefined ? Number.POSITIVE_INFINITY : intOption(options.count, 'count', { min: 1 });
    const url = redisUrl(options, env);
    const timeoutMs = connectTimeoutMs(options);
    await probeRedis(url, { timeoutMs, signal });
    const { createPubSubClient } = await import('@redis-events/pubsub');
    const client = createPubSubClient({
      url,
      name: 'redis-events-cli',
      // Payloads are bytes: printed as text when they are UTF-8, else as {"base64":...}, never mangled.
      payloads: 'buffer',
      connectTimeout: timeoutMs,
      ...(options.cluster === true ? { cluster: true } : {}),
    });
    let received = 0;
    try {
      const shard = options.shard === true;
      const channels = shard ? [] : positionals.filter((n) => !isPattern(n));
      const patterns = shard ? [] : positionals.filter(isPattern);
      const subscription = shard
        ? await client.ssubscribe(...positionals)
        : channels.length > 0
          ? await client.subscribe(...channels)
          : await client.psubscribe(...patterns);
      if (!shard && channels.length > 0 && patterns.length > 0) await subscription.psubscribe(...patterns);
      subscription.on('reconnecting', () => terminal.warn(`connection to ${redact(url)} lost; reconnecting`));
      terminal.status(`subscribed to ${positionals.join(', ')}; waiting for messages (Ctrl-C stops)`);
      const stop = () => void subscription.close();
      signal.addEventListener('abort', stop, { once: true });
      try {
        for await (const event of subscription) {
          if (event.kind === 'gap') {
            terminal.warn(
              `gap (${event.reason}): messages may be missing${event.dropped ? `, ${event.dropped} dropped` : ''}`,
            );
            continue;
          }
          const payload = toJson(event.payload);
          if (options.pretty === true) {
            const where = event.pattern ? `${event.channel} (${event.pattern})` : event.channel;
            await terminal.line(
              `${terminal.style(36, where)} ${typeof payload === 'string' ? payload : JSON.stringify(payload)}`,
            );
          } else {
            await terminal.line(
              JSON.stringify({
                kind: event.kind,
                channel: event.channel,
                ...(event.pattern ? { pattern: event.pattern } : {}),
                payload,
              }),
            );
          }
          if (++received >= count || terminal.closed) break;
        }
      } finally {
        signal.removeEventListener('abort', stop);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      await client.close();
    }
    if (signal.aborted)
      terminal.info(`sub stopped by ${stopName(signal.reason)}: ${plural(received, 'message')} received`);
    return undefined;
  },
};

export const pubCommand: Command = {
  name: 'pub',
  args: '<channel> [message...]',
  summary: 'Publish messages to a channel; without messages, one per line of stdin.',
  options: {
    ...URL_OPTION,
    shard: { type: 'boolean', description: 'publish to a sharded channel (SPUBLISH)' },
    cluster: { type: 'boolean', description: 'the URL is one node of a Redis Cluster' },
  },
  details: `
Prints, for each message, how many subscribers received it: {"receivers":2}.

Examples:
  redis-events pub orders '{"id":1}'
  tail -f app.log | redis-events pub logs`,
  async run({ positionals, options, terminal, signal, env }) {
    const [channel, ...messages] = positionals;
    if (!channel) throw usage('pub needs a channel (see redis-events pub --help)');
    const url = redisUrl(options, env);
    const timeoutMs = connectTimeoutMs(options);
    await probeRedis(url, { timeoutMs, signal });
    const { createPubSubClient } = await import('@redis-events/pubsub');
    const client = createPubSubClient({
      url,
      name: 'redis-events-cli',
      connectTimeout: timeoutMs,
      ...(options.cluster === true ? { cluster: true } : {}),
    });
    let published = 0;
    const publish = (message: string) =>
      options.shard === true ? client.spublish(channel, message) : client.publish(channel, message);
    try {
      if (messages.length > 0) {
        for (const message of messages) {
          await terminal.line(JSON.stringify({ receivers: await publish(message) }));
          published++;
        }
      } else {
        if (STDIN.stream.isTTY) terminal.info('reading messages from stdin, one per line (Ctrl-D ends)');
        const lines = createInterface({ input: STDIN.stream, crlfDelay: Number.POSITIVE_INFINITY });
        const closeLines = () => lines.close();
        signal.addEventListener('abort', closeLines, { once: true });
        try {
          for await (const line of lines) {
            if (signal.aborted || terminal.closed) break;
            await terminal.line(JSON.stringify({ receivers: await publish(line) }));
            published++;
          }
        } finally {
          signal.removeEventListener('abort', closeLines);
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      await client.close();
    }
    if (signal.aborted)
      terminal.info(`pub stopped by ${stopName(signal.reason)}: ${plural(published, 'message')} published`);
    return undefined;
  },
};
