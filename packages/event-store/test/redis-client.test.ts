// Which failures a live tail waits out rather than ending with.
import { describe, expect, it } from 'vitest';
import { EventStoreError } from '../src/errors.ts';
import { isTransient, redisError } from '../src/redis-client.ts';

describe('isTransient', () => {
  it('waits out lost connections, loading servers, failovers and slot moves', () => {
    for (const message of [
      'Connection is closed.',
      'connect ECONNREFUSED 127.0.0.1:6379',
      'LOADING Redis is loading the dataset in memory',
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'CLUSTERDOWN The cluster is down',
      'READONLY You can not write against a read only replica.',
      // An ioredis Cluster gives up following MOVED while nodes disagree about a moving slot.
      'Too many Cluster redirections. Last error: ReplyError: MOVED 7346 127.0.0.1:45979',
    ]) {
      expect(isTransient(new Error(message)), message).toBe(true);
      expect(isTransient(redisError(new Error(message), 'tailing events "x"', 'k')), message).toBe(true);
    }
  });

  it('ends the tail on anything else', () => {
    for (const message of ['WRONGTYPE Operation against a key', 'NOPERM no permissions', 'ERR syntax error']) {
      expect(isTransient(new Error(message)), message).toBe(false);
    }
    expect(isTransient(new EventStoreError('ERR_EVENT_STORE_DECODE', 'bad entry'))).toBe(false);
  });
});
