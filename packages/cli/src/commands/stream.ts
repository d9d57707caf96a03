import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { Message } from '@redis-events/streams-driver';
import { type Command, intOption } from '../command.ts';
import { stopName, usage } from '../errors.ts';
import { toJson } from '../json.ts';
import { connectClient, connectTimeoutMs, redisUrl, URL_OPTION } from '../redis-url.ts';
import { plural, type Terminal } from '../terminal.ts';

/** `key=value` pairs from repeated `--metadata` options. */
function metadataOf(values: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of Array.isArray(values) ? (values as string[]) : []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw usage(`--metadata takes key=value, got "${pair}"`);
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
}

/** Where `stream send` reads messages when none are given as arguments. */
export const STDIN: { stream: Readable & { isTTY?: boolean | undefined } } = { stream: process.stdin };

export const streamSendCommand: Command = {
  name: 'stream send',
  args: '<topic> [message...]',
  summary: 'Send messages to a stream topic (@redis-events/streams-driver); without messages, one per line of stdin.',
  options: {
    ...URL_OPTION,
    metadata: {
      type: 'string',
      short: 'm',
      multiple: true,
      value: 'key=value',
      description: 'metadata for every message (repeat it)',
    },
    maxlen: { type: 'string', value: 'n', description: 'trim the stream to about n entries on every send' },
    'no-create': { type: 'boolean', description: 'fail when the stream does not exist instead of creating it' },
  },
  details: `
Prints the ID Redis gave each message, as JSON lines: {"id":"1715595630123-0"}. Messages read
from stdin are sent in batches as they come (pipelined XADDs).

Examples:
  redis-events stream send orders '{"id":1}' '{"id":2}' -m source=cli
  seq 1000 | redis-events stream send numbers`,
  async run({ positionals, options, terminal, signal, env }) {
    const [topicKey, ...messages] = positionals;
    if (!topicKey) throw usage('stream send needs a topic (see redis-events stream send --help)');
    const metadata = metadataOf(options.metadata);
    const maxLen = options.maxlen === undefined ? undefined : intOption(options.maxlen, 'maxlen', { min: 1 });
    const { Topic } = await import('@redis-events/streams-driver');
    const client = await connectClient(redisUrl(options, env), { timeoutMs: connectTimeoutMs(options), signal });
    const topic = new Topic(client, topicKey, {
      create: options['no-create'] !== true,
      ...(maxLen ? { retention: { maxLen } } : {}),
    });
    // Counts messages whose ID Redis returned: a message is "sent" only once it is confirmed.
    let sent = 0;
    const lines =
      messages.length === 0 ? createInterface({ input: STDIN.stream, crlfDelay: Number.POSITIVE_INFINITY }) : undefined;
    // Ctrl-C ends the wait for the next stdin line too.
    const closeLines = () => lines?.close();
    signal.addEventListener('abort', closeLines, { once: true });
    try {
      const sendAll = async (bodies: AsyncIterable<string> | Iterable<string>) => {
        // Keep a window of sends in flight: the topic batches them into pipelines.
        const window: Promise<string>[] = [];
        const confirm = async (pending: Promise<string>) => {
          const id = await pending;
          sent++;
          await terminal.line(JSON.stringify({ id }));
        };
        for await (const body of bodies) {
          if (signal.aborted || terminal.closed) break;
          window.push(topic.send({ body, metadata }, { signal }));
          if (window.length >= 256) await confirm(window.shift() as Promise<string>);
        }
        for (const pending of window) await confirm(pending);
      };
      if (!lines) {
        await sendAll(messages);
      } else {
        if (STDIN.stream.isTTY) terminal.info('reading messages from stdin, one per line (Ctrl-D ends)');
        await sendAll(lines);
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      signal.removeEventListener('abort', closeLines);
      await topic.shutdown().catch(() => {});
      client.disconnect();
    }
    terminal.info(
      signal.aborted
        ? `stream send stopped by ${stopName(signal.reason)}: ${plural(sent, 'message')} sent to ${topicKey}`
        : `sent ${plural(sent, 'message')} to ${topicKey}`,
    );
    return undefined;
  },
};

async function printMessage(terminal: Terminal, message: Message, pretty: boolean): Promise<void> {
  const body = toJson(message.body);
  if (!pretty) {
    await terminal.line(
      JSON.stringify({ id: message.id, body, metadata: message.metadata, deliveryAttempt: message.deliveryAttempt }),
    );
    return;
  }
  const meta = Object.entries(message.metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const attempt = message.deliveryAttempt > 1 ? terminal.style(33, ` (attempt ${message.deliveryAttempt})`) : '';
  await terminal.line(
    `${terminal.style(2, message.id)} ${typeof body === 'string' ? body : JSON.stringify(body)}${meta ? ` ${terminal.style(36, meta)}` : ''}${attempt}`,
  );
}

export const streamRecvCommand: Command = {
  name: 'stream recv',
  args: '<topic>',
  summary: 'Receive messages of a stream topic through a consumer group, and acknowledge them after printing.',
  options: {
    ...URL_OPTION,
    group: {
      type: 'string',
      short: 'g',
      value: 'group',
      default: 'redis-events-cli',
      description: 'the consumer group',
    },
    consumer: {
      type: 'string',
      short: 'c',
      value: 'name',
      description: "this consumer's name (default host:pid:random)",
    },
    from: {
      type: 'string',
      value: 'id',
      default: '$',
      description: 'where a new group starts: $ (new messages), 0 (all), or an ID',
    },
    count: { type: 'string', short: 'n', value: 'n', description: 'stop after n messages' },
    'no-ack': { type: 'boolean', description: 'print without acknowledging: the messages stay pending for the group' },
    pretty: { type: 'boolean', description: 'one readable line per message instead of JSON' },
  },
  details: `
Waits for messages until --count is reached or Ctrl-C. Each message is acknowledged once its line
is written (at-least-once: a crash between the two prints it again later).

JSON lines: {"id":"1715595630123-0","body":"...","metadata":{"k":"v"},"deliveryAttempt":1}

Examples:
  redis-events stream recv orders --group billing --from 0 --count 10
  redis-events stream recv orders --group audit --pretty`,
  async run({ positionals, options, terminal, signal, env }) {
    const [topicKey, ...extra] = positionals;
    if (!topicKey || extra.length > 0)
      throw usage('stream recv takes exactly one topic (see redis-events stream recv --help)');
    const count =
      options.count === undefined ? Number.POSITIVE_INFINITY : intOption(options.count, 'count', { min: 1 });
    const ack = options['no-ack'] !== true;
    const { Subscription } = await import('@redis-events/streams-driver');
    const client = await connectClient(redisUrl(options, env), {
      timeoutMs: connectTimeoutMs(options),
      signal,
      follow: true,
      onReconnect: (attempt, error) =>
        terminal.warn(`connection lost (${error || 'closed'}); reconnecting, attempt ${attempt}`),
    });
    const subscription = new Subscription(client, {
      topic: topicKey,
      group: String(options.group),
      ...(typeof options.consumer === 'string' ? { consumer: options.consumer } : {}),
      from: String(options.from),
      maxInFlight: Math.min(count, 1000),
      prefetch: Math.min(count, 200),
    });
    let received = 0;
    try {
      await subscription.ready();
      terminal.status(`waiting for messages of ${topicKey} as ${String(options.group)} (Ctrl-C stops)`);
      while (received < count && !signal.aborted && !terminal.closed) {
        const message = await subscription.receive({ signal });
        await printMessage(terminal, message, options.pretty === true);
        received++;
        if (ack) await message.ack();
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      // Acks in flight get a moment; Ctrl-C must end the command within 2 s.
      await subscription.shutdown({ timeoutMs: 1_000 }).catch(() => {});
      client.disconnect();
    }
    if (signal.aborted)
      terminal.info(
        `stream recv stopped by ${stopName(signal.reason)}: ${plural(received, 'message')} received${ack ? ' and acknowledged' : ' (left pending)'}`,
      );
    return undefined;
  },
};
