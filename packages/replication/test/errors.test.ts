// Error classes: stable codes, context in the message, and instanceof that tells the classes
// apart, also for errors made by another copy of the package (registered symbols).
import { RedisEventsError } from '@redis-events/resp';
import { describe, expect, it } from 'vitest';
import { RdbError, ReplicationError, ReplicationLinkError } from '../src/index.ts';

describe('errors', () => {
  const base = new ReplicationError('ERR_REPLICATION_PROTOCOL', 'broken');
  const rdb = new RdbError('ERR_RDB_CORRUPT', 'bad length', { offset: 42, key: Buffer.from('k'), rdbType: 4 });
  const link = new ReplicationLinkError('ERR_REPLICATION_TIMEOUT', 'silence', '127.0.0.1:6379', 'stream');

  it('instanceof tells the classes apart', () => {
    expect([base, rdb, link].map((e) => e instanceof ReplicationError)).toEqual([true, true, true]);
    expect([base, rdb, link].map((e) => e instanceof RdbError)).toEqual([false, true, false]);
    expect([base, rdb, link].map((e) => e instanceof ReplicationLinkError)).toEqual([false, false, true]);
    expect(new Error('x') instanceof ReplicationError).toBe(false);
    expect((null as unknown as object) instanceof ReplicationError).toBe(false);
  });

  it('instanceof works for errors of another copy of the package', () => {
    const foreign = Object.assign(new Error('from a duplicate install'), { code: 'ERR_RDB_CORRUPT' });
    Object.defineProperty(foreign, Symbol.for('@redis-events/replication.error'), { value: true });
    Object.defineProperty(foreign, Symbol.for('@redis-events/replication.error.rdb'), { value: true });
    expect(foreign instanceof ReplicationError).toBe(true);
    expect(foreign instanceof RdbError).toBe(true);
    expect(foreign instanceof ReplicationLinkError).toBe(false);
  });

  it('is a RedisEventsError of this package, the one check for an error of any redis-events package', () => {
    for (const e of [base, rdb, link]) {
      expect(e).toBeInstanceOf(RedisEventsError);
      expect(e.package).toBe('@redis-events/replication');
      expect(e).toBeInstanceOf(Error);
    }
    expect([base, rdb, link].map((e) => e.name)).toEqual(['ReplicationError', 'RdbError', 'ReplicationLinkError']);
    const aborted = new ReplicationError('ERR_REPLICATION_ABORTED', 'stopped', { name: 'AbortError' });
    expect(aborted).toMatchObject({ name: 'AbortError', code: 'ERR_REPLICATION_ABORTED' });
    expect(aborted).toBeInstanceOf(ReplicationError);
  });

  it('carries its context in fields and in the message', () => {
    expect(rdb).toMatchObject({ name: 'RdbError', code: 'ERR_RDB_CORRUPT', offset: 42, rdbType: 4 });
    expect(rdb.message).toBe('bad length (at byte offset 42 in the value of key "k" (type byte 4))');
    expect(link).toMatchObject({ name: 'ReplicationLinkError', master: '127.0.0.1:6379', phase: 'stream' });
    expect(link.message).toBe('silence (master 127.0.0.1:6379, stream)');
  });
});
