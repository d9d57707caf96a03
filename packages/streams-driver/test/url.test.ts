import { describe, expect, it } from 'vitest';
import { parseDuration, parseSubscriptionURL, parseTopicURL, StreamsError, URLOpener } from '../src/index.ts';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof StreamsError) return err.code;
    throw err;
  }
  return undefined;
}

describe('URLs', () => {
  it('reads durations as ms or Go-style units', () => {
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration('300ms')).toBe(300);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    for (const bad of ['', 'soon', '5d', '1m 30s', '-5s', 'x'.repeat(100)]) {
      expect(code(() => parseDuration(bad))).toBe('ERR_STREAMS_ARGUMENT');
    }
  });

  it('reads topic URLs the way the Go driver does: host and path are the stream key', () => {
    expect(parseTopicURL('redis://topics/1')).toEqual({ key: 'topics/1', options: { create: true } });
    expect(parseTopicURL('redis://Orders%20EU?maxlen=1000&exact=true&create=false')).toEqual({
      key: 'Orders EU',
      options: { create: false, retention: { maxLen: 1000, exact: true } },
    });
    expect(parseTopicURL('redis://%7Bshop%7D:orders?maxage=24h&maxbatch=50&sendtimeout=5s').options).toEqual({
      create: true,
      retention: { maxAgeMs: 86_400_000 },
      maxBatchSize: 50,
      sendTimeoutMs: 5000,
    });
    expect(parseTopicURL('redis://%7Bshop%7D:orders').key).toBe('{shop}:orders');
  });

  it('rejects unknown, repeated and malformed topic options', () => {
    for (const bad of [
      'http://topics/1',
      'redis://',
      'redis://topics/1?maxlen=ten',
      'redis://topics/1?maxlen=1&maxlen=2',
      'redis://topics/1?color=blue',
      'redis://user:pass@host/topic',
      'redis://%zz',
      'redis://t?exact=perhaps',
    ]) {
      expect(
        code(() => parseTopicURL(bad)),
        bad,
      ).toBe('ERR_STREAMS_ARGUMENT');
    }
  });

  it('reads subscription URLs: group from host and path, options from the query', () => {
    expect(parseSubscriptionURL('redis://group1?consumer=cons1&topic=topics/1')).toEqual({
      topic: 'topics/1',
      group: 'group1',
      consumer: 'cons1',
    });
    expect(
      parseSubscriptionURL(
        'redis://g?topic=t&from=0&autoclaim=30m&noack&maxinflight=10&prefetch=5&block=250ms&maxdeliveries=inf&deadletter=dl&deadlettermaxlen=100&onmalformed=ack&deleteacked=true&create=false&claiminterval=2s',
      ),
    ).toEqual({
      topic: 't',
      group: 'g',
      from: '0',
      ackDeadlineMs: 1_800_000,
      noAck: true,
      maxInFlight: 10,
      prefetch: 5,
      blockMs: 250,
      maxDeliveries: Number.POSITIVE_INFINITY,
      deadLetterKey: 'dl',
      deadLetterMaxLen: 100,
      onMalformed: 'ack',
      deleteAcked: true,
      create: false,
      claimIntervalMs: 2000,
    });
    expect(parseSubscriptionURL('redis://g?topic=t&ackdeadline=45s').ackDeadlineMs).toBe(45_000);
  });

  it('rejects subscription URLs without a topic or group, and contradictory options', () => {
    for (const bad of [
      'redis://g',
      'redis://?topic=t',
      'redis://g?topic=t&autoclaim=1s&ackdeadline=2s',
      'redis://g?topic=t&onmalformed=explode',
      'redis://g?topic=t&offset=oldest',
    ]) {
      expect(
        code(() => parseSubscriptionURL(bad)),
        bad,
      ).toBe('ERR_STREAMS_ARGUMENT');
    }
  });

  it('never lets one URL change the defaults of the next open', () => {
    const defaults = { ackDeadlineMs: 1234, prefetch: 7 };
    const opener = new URLOpener({ subscriptionOptions: defaults, redisUrl: 'redis://127.0.0.1:1' });
    expect(code(() => opener.openSubscription('redis://g?topic=t&ackdeadline=5s&from=oops'))).toBe(
      'ERR_STREAMS_ARGUMENT',
    );
    expect(defaults).toEqual({ ackDeadlineMs: 1234, prefetch: 7 });
  });

  it('says how to connect when REDIS_URL is missing or not a Redis URL', () => {
    const saved = process.env.REDIS_URL;
    try {
      delete process.env.REDIS_URL;
      expect(() => new URLOpener().openTopic('redis://t')).toThrow(/set REDIS_URL/);
      expect(code(() => new URLOpener({ redisUrl: 'http://x' }).openTopic('redis://t'))).toBe('ERR_STREAMS_ARGUMENT');
    } finally {
      if (saved !== undefined) process.env.REDIS_URL = saved;
    }
  });
});
