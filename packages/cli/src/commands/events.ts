import { type Command, choiceOption, intOption } from '../command.ts';
import { stopName, usage } from '../errors.ts';
import { toJson } from '../json.ts';
import { connectClient, connectTimeoutMs, redisUrl, URL_OPTION } from '../redis-url.ts';
import { plural, type Terminal } from '../terminal.ts';

interface StoredEvent {
  readonly name: string;
  readonly id: string;
  readonly timestamp: Date | number | string;
  readonly payload: unknown;
}

async function print(terminal: Terminal, event: StoredEvent, pretty: boolean): Promise<void> {
  const time = new Date(event.timestamp).toISOString();
  if (!pretty) {
    await terminal.line(
      JSON.stringify({ name: event.name, id: event.id, timestamp: time, payload: toJson(event.payload) }),
    );
    return;
  }
  await terminal.line(
    `${terminal.style(2, time)} ${terminal.style(36, event.name)} ${terminal.style(2, event.id)} ${JSON.stringify(toJson(event.payload))}`,
  );
}

export const eventsCommand: Command = {
  name: 'events',
  args: '<name>',
  summary: 'Read the newest events of a name from an event store (@redis-events/event-store), or follow new ones.',
  options: {
    ...URL_OPTION,
    limit: { type: 'string', value: 'n', default: '20', description: 'how many of the newest events' },
    prefix: { type: 'string', value: 'prefix', default: 'mediator:events', description: "the store's key prefix" },
    layout: {
      type: 'string',
      value: 'layout',
      default: 'stream',
      description: "the store's layout: stream or timeline",
    },
    since: { type: 'string', value: 'time', description: 'only events from this time on (ISO date or Unix ms)' },
    follow: {
      type: 'boolean',
      short: 'f',
      description: 'after the newest events, print new ones as they are stored (Ctrl-C stops)',
    },
    pretty: { type: 'boolean', description: 'one readable line per event instead of JSON' },
  },
  details: `
Without --follow, prints the newest events first and exits. With --follow, prints them oldest
first, then every new event as it is stored.

JSON lines: {"name":"order.paid","id":"1715595630123-0","timestamp":"2026-...Z","payload":{...}}

Examples:
  redis-events events order.paid --limit 5
  redis-events events order.paid --follow --pretty --url redis://cache:6379`,
  async run({ positionals, options, terminal, signal, env }) {
    const [name, ...extra] = positionals;
    if (!name || extra.length > 0) throw usage('events takes exactly one event name (see redis-events events --help)');
    const limit = intOption(options.limit, 'limit', { min: 1 });
    const layout = choiceOption(options.layout, 'layout', ['stream', 'timeline'] as const);
    let since: number | undefined;
    if (typeof options.since === 'string') {
      since = /^\d+$/.test(options.since) ? Number(options.since) : Date.parse(options.since);
      if (!Number.isFinite(since))
        throw usage(`--since must be an ISO date or Unix milliseconds, got "${options.since}"`);
    }
    const pretty = options.pretty === true;
    const follow = options.follow === true;
    const { RedisEventStore } = await import('@redis-events/event-store');
    const client = await connectClient(redisUrl(options, env), {
      timeoutMs: connectTimeoutMs(options),
      signal,
      follow,
      onReconnect: (attempt, error) =>
        terminal.warn(`connection lost (${error || 'closed'}); reconnecting, attempt ${attempt}`),
    });
    const store = new RedisEventStore(client, { prefix: String(options.prefix), layout });
    let followed = 0;
    try {
      const newest = (await store.read(name, {
        limit,
        order: 'newest',
        ...(since !== undefined ? { since } : {}),
      })) as StoredEvent[];
      if (!follow) {
        for (const event of newest) await print(terminal, event, pretty);
        if (newest.length === 0) terminal.info(`no events named "${name}" under prefix ${String(options.prefix)}`);
        return undefined;
      }
      const backlog = [...newest].reverse();
      for (const event of backlog) await print(terminal, event, pretty);
      const after = backlog.at(-1)?.id;
      terminal.status(`following ${name}: new events print as they are stored (Ctrl-C stops)`);
      for await (const event of store.tail(name, {
        signal,
        ...(after ? { after } : {}),
      }) as AsyncIterable<StoredEvent>) {
        await print(terminal, event, pretty);
        followed++;
        if (terminal.closed) break;
      }
      return undefined;
    } catch (err) {
      if (signal.aborted) return undefined;
      throw err;
    } finally {
      if (signal.aborted)
        terminal.info(`events stopped by ${stopName(signal.reason)}: ${plural(followed, 'new event')} printed`);
      await store.close();
      client.disconnect();
    }
  },
};
