// Explicit management of topics (streams) and subscriptions (consumer groups): create them
// where they start, inspect lag and pending counts, trim, and read the dead letters.
import { type RedisClient, withTimeout } from './client.ts';
import { decodeEntry, type Metadata } from './codec.ts';
import { StreamsError, toStreamsError } from './errors.ts';
import { asCount, asText, parseEntry, toList, toRecord } from './replies.ts';
import { DEAD_LETTER_FIELDS } from './scripts.ts';
import { isStreamId } from './stream-id.ts';
import { checkName, checkRetention, type Retention, trimArguments } from './topic.ts';

const TIMEOUT_MS = 10_000;

function checkFrom(from: string): string {
  if (from !== '$' && !isStreamId(from)) {
    throw new StreamsError(
      'ERR_STREAMS_ARGUMENT',
      `from must be "$", "0" or an entry ID like 1700000000000-0, got "${from}"`,
    );
  }
  return from;
}

async function run<T>(what: string, topic: string, work: Promise<T>, group?: string): Promise<T> {
  try {
    return await withTimeout(work, TIMEOUT_MS, what);
  } catch (err) {
    throw toStreamsError(err, { what, topic, ...(group === undefined ? {} : { group }) });
  }
}

const CREATE_TOPIC = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return redis.error_reply('WRONGTYPE the key exists and is not a stream') end
  return 0
end
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '$', 'MKSTREAM')
redis.call('XGROUP', 'DESTROY', KEYS[1], ARGV[1])
return 1
`;

/**
 * Creates an empty topic (stream) if it does not exist. Resolves true when it was created.
 *
 * @example
 * ```ts
 * await createTopic(redis, 'orders');
 * const topic = new Topic(redis, 'orders'); // sends fail with ERR_STREAMS_NOT_FOUND on a missing topic
 * ```
 * @throws {StreamsError} `ERR_STREAMS_REDIS` when the key holds something else (WRONGTYPE).
 */
export async function createTopic(client: RedisClient, topic: string): Promise<boolean> {
  checkName(topic, 'the topic');
  const reply = await run(
    'creating the topic',
    topic,
    client.call('eval', CREATE_TOPIC, 1, topic, 'redis-events:create-topic'),
  );
  return Number(reply) === 1;
}

/** Options of {@link createGroup}. */
export interface CreateGroupOptions {
  /** Where the group starts: `$` (only messages sent after now, the default), `0` (the whole retained history) or an entry ID. */
  readonly from?: string | undefined;
  /** Create the stream too when it does not exist. Default true. */
  readonly createTopic?: boolean | undefined;
}

/**
 * Creates a consumer group (a subscription) on a topic. Resolves true when it was created, false
 * when it already existed (its position is left as it is).
 *
 * @example
 * ```ts
 * await createGroup(redis, 'orders', 'audit', { from: '0' }); // audit reads the whole history
 * ```
 * @throws {StreamsError} `ERR_STREAMS_NOT_FOUND` when the topic is missing and `createTopic` is false.
 */
export async function createGroup(
  client: RedisClient,
  topic: string,
  group: string,
  options: CreateGroupOptions = {},
): Promise<boolean> {
  checkName(topic, 'the topic');
  checkName(group, 'the group');
  const from = checkFrom(options.from ?? '$');
  const args = ['CREATE', topic, group, from, ...(options.createTopic === false ? [] : ['MKSTREAM'])];
  try {
    await withTimeout(client.call('xgroup', ...args), TIMEOUT_MS, 'XGROUP CREATE');
    return true;
  } catch (err) {
    if (err instanceof Error && err.message.startsWith('BUSYGROUP')) return false;
    if (err instanceof Error && /requires the key to exist/i.test(err.message)) {
      throw new StreamsError(
        'ERR_STREAMS_NOT_FOUND',
        `topic "${topic}" does not exist; create it first or call createGroup() with createTopic: true`,
        { topic, group, cause: err },
      );
    }
    throw toStreamsError(err, { what: 'creating the group', topic, group, command: 'XGROUP' });
  }
}

/**
 * Deletes a consumer group and its pending entries. Resolves false when there was none.
 *
 * @example
 * ```ts
 * await deleteGroup(redis, 'orders', 'old-service');
 * ```
 */
export async function deleteGroup(client: RedisClient, topic: string, group: string): Promise<boolean> {
  checkName(topic, 'the topic');
  checkName(group, 'the group');
  try {
    return (
      Number(await withTimeout(client.call('xgroup', 'DESTROY', topic, group), TIMEOUT_MS, 'XGROUP DESTROY')) === 1
    );
  } catch (err) {
    if (err instanceof Error && /requires the key to exist/i.test(err.message)) return false;
    throw toStreamsError(err, { what: 'deleting the group', topic, group, command: 'XGROUP' });
  }
}

/**
 * Deletes a topic with all its entries and groups (UNLINK). Resolves false when there was none.
 *
 * @example
 * ```ts
 * await deleteTopic(redis, 'orders');
 * ```
 */
export async function deleteTopic(client: RedisClient, topic: string): Promise<boolean> {
  checkName(topic, 'the topic');
  return Number(await run('deleting the topic', topic, client.call('unlink', topic))) === 1;
}

/** What {@link topicInfo} reports. */
export interface TopicInfo {
  readonly length: number;
  readonly firstId: string | undefined;
  readonly lastId: string;
  readonly groups: number;
}

/**
 * Length, first and last entry ID and group count of a topic, or `undefined` when it does not exist.
 *
 * @example
 * ```ts
 * const info = await topicInfo(redis, 'orders'); // { length: 120, firstId: '...', lastId: '...', groups: 2 }
 * ```
 */
export async function topicInfo(client: RedisClient, topic: string): Promise<TopicInfo | undefined> {
  checkName(topic, 'the topic');
  let reply: unknown;
  try {
    reply = await withTimeout(client.call('xinfo', 'STREAM', topic), TIMEOUT_MS, 'XINFO STREAM');
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return undefined;
    throw toStreamsError(err, { what: 'reading topic info', topic, command: 'XINFO' });
  }
  const info = toRecord(reply, 'XINFO STREAM');
  const first = info['first-entry'];
  return {
    length: asCount(info.length, 'the stream length'),
    firstId: Array.isArray(first) ? asText(first[0], 'the first entry ID') : undefined,
    lastId: asText(info['last-generated-id'], 'the last generated ID'),
    groups: asCount(info.groups, 'the group count'),
  };
}

/** One consumer group, as {@link groupInfo} reports it. */
export interface GroupInfo {
  readonly name: string;
  readonly consumers: number;
  /** Entries delivered and not acknowledged. */
  readonly pending: number;
  readonly lastDeliveredId: string;
  /** Entries not yet delivered to the group; `undefined` when the server cannot tell (after deletions). */
  readonly lag: number | undefined;
}

/**
 * The consumer groups of a topic with their pending count and lag. Empty when the topic does not exist.
 *
 * @example
 * ```ts
 * for (const g of await groupInfo(redis, 'orders')) console.log(g.name, g.pending, g.lag);
 * ```
 */
export async function groupInfo(client: RedisClient, topic: string): Promise<GroupInfo[]> {
  checkName(topic, 'the topic');
  let reply: unknown;
  try {
    reply = await withTimeout(client.call('xinfo', 'GROUPS', topic), TIMEOUT_MS, 'XINFO GROUPS');
  } catch (err) {
    if (err instanceof Error && /no such key/i.test(err.message)) return [];
    throw toStreamsError(err, { what: 'reading group info', topic, command: 'XINFO' });
  }
  return toList(reply, 'XINFO GROUPS').map((row) => {
    const g = toRecord(row, 'an XINFO GROUPS row');
    return {
      name: asText(g.name, 'the group name'),
      consumers: asCount(g.consumers, 'the consumer count'),
      pending: asCount(g.pending, 'the pending count'),
      lastDeliveredId: asText(g['last-delivered-id'], 'the last delivered ID'),
      lag: g.lag === null || g.lag === undefined ? undefined : asCount(g.lag, 'the lag'),
    };
  });
}

/**
 * Trims a topic now (XTRIM), by length and/or age. Resolves with the number of entries removed.
 * Pending entries that are trimmed are acknowledged by subscriptions when they meet them.
 *
 * @example
 * ```ts
 * await trimTopic(redis, 'orders', { maxAgeMs: 7 * 24 * 3600_000 }); // keep a week
 * ```
 */
export async function trimTopic(client: RedisClient, topic: string, retention: Retention): Promise<number> {
  checkName(topic, 'the topic');
  const checked = checkRetention(retention);
  if (!checked) throw new StreamsError('ERR_STREAMS_ARGUMENT', 'trimTopic() needs maxLen or maxAgeMs');
  const args = trimArguments(checked, Date.now());
  let removed = asCount(await run('trimming the topic', topic, client.call('xtrim', topic, ...args.add)), 'XTRIM');
  if (args.extraMinId) {
    const mode = checked.exact ? '=' : '~';
    removed += asCount(
      await run('trimming the topic', topic, client.call('xtrim', topic, 'MINID', mode, args.extraMinId)),
      'XTRIM',
    );
  }
  return removed;
}

/** An entry of a dead-letter stream. */
export interface DeadLetter {
  /** The entry ID in the dead-letter stream. */
  readonly id: string;
  /** The ID the message had in its topic. */
  readonly sourceId: string;
  readonly topic: string;
  readonly group: string;
  readonly consumer: string;
  readonly attempts: number;
  readonly reason: string;
  /** The original body and metadata, or `undefined` when the original entry was malformed. */
  readonly body: Buffer | undefined;
  readonly metadata: Metadata | undefined;
}

/** Options of {@link readDeadLetters}. */
export interface ReadDeadLettersOptions {
  /** Most entries to return. Default 100. */
  readonly count?: number | undefined;
  /** Return entries after this ID (exclusive), for paging. Default: from the start. */
  readonly after?: string | undefined;
}

/**
 * Reads a dead-letter stream, oldest first.
 *
 * @example
 * ```ts
 * for (const dead of await readDeadLetters(redis, subscription.deadLetterKey)) {
 *   console.log(dead.sourceId, dead.reason, dead.attempts);
 * }
 * ```
 */
export async function readDeadLetters(
  client: RedisClient,
  deadLetterKey: string,
  options: ReadDeadLettersOptions = {},
): Promise<DeadLetter[]> {
  checkName(deadLetterKey, 'the dead-letter key');
  const count = options.count ?? 100;
  if (!Number.isSafeInteger(count) || count < 1) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', `count must be a positive integer, got ${count}`);
  }
  if (options.after !== undefined && !isStreamId(options.after)) {
    throw new StreamsError('ERR_STREAMS_ARGUMENT', `after must be an entry ID, got "${options.after}"`);
  }
  const start = options.after === undefined ? '-' : `(${options.after}`;
  const reply = await run(
    'reading dead letters',
    deadLetterKey,
    client.callBuffer('xrange', deadLetterKey, start, '+', 'COUNT', count),
  );
  return toList(reply, 'XRANGE').map((item) => {
    const entry = parseEntry(item);
    const fields = entry.fields ?? [];
    const meta = new Map<string, string>();
    const original: unknown[] = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = asText(fields[i], 'a field name');
      if (name.startsWith('dead-letter-')) meta.set(name, asText(fields[i + 1], 'a dead-letter field'));
      else original.push(fields[i], fields[i + 1]);
    }
    let body: Buffer | undefined;
    let metadata: Metadata | undefined;
    try {
      ({ body, metadata } = decodeEntry(original));
    } catch {
      // a malformed original: the raw fields are still in the stream
    }
    return {
      id: entry.id,
      sourceId: meta.get(DEAD_LETTER_FIELDS.id) ?? '',
      topic: meta.get(DEAD_LETTER_FIELDS.stream) ?? '',
      group: meta.get(DEAD_LETTER_FIELDS.group) ?? '',
      consumer: meta.get(DEAD_LETTER_FIELDS.consumer) ?? '',
      attempts: Number(meta.get(DEAD_LETTER_FIELDS.attempts) ?? 0),
      reason: meta.get(DEAD_LETTER_FIELDS.reason) ?? '',
      body,
      metadata,
    };
  });
}
