// The shared error base: what every package's errors inherit.
import { TestkitError } from '@redis-events/testkit';
import { describe, expect, it } from 'vitest';
import { RedisEventsError, ReplyError, RespError, RespProtocolError } from '../src/errors.ts';

// A package's base class, written as the packages write theirs.
type DemoCode = 'ERR_DEMO_ARGUMENT' | 'ERR_DEMO_ABORTED';
class DemoError extends RedisEventsError {
  static override readonly brand: symbol = Symbol.for('@redis-events/demo.error');
  static override readonly errorName: string = 'DemoError';
  declare readonly code: DemoCode;
  constructor(code: DemoCode, message: string, options?: ConstructorParameters<typeof RedisEventsError>[3]) {
    super('@redis-events/demo', code, message, options);
  }
}
class DemoChildError extends DemoError {
  static override readonly errorName: string = 'DemoChildError';
}

describe('RedisEventsError', () => {
  it('carries code, package, cause and the class name', () => {
    const cause = new Error('socket hang up');
    const err = new DemoError('ERR_DEMO_ARGUMENT', 'bad option', { cause });
    expect(err).toMatchObject({ name: 'DemoError', code: 'ERR_DEMO_ARGUMENT', package: '@redis-events/demo' });
    expect(err.cause).toBe(cause);
    expect(err.message).toBe('bad option');
    expect(err.abandoned).toBeUndefined();
    expect(err.stack).toMatch(/^DemoError: bad option/);
    expect(new DemoChildError('ERR_DEMO_ARGUMENT', 'x').name).toBe('DemoChildError');
  });

  it('has no cause property unless one is given', () => {
    expect('cause' in new DemoError('ERR_DEMO_ARGUMENT', 'x')).toBe(false);
    expect('cause' in new DemoError('ERR_DEMO_ARGUMENT', 'x', { cause: undefined })).toBe(true);
  });

  it("is named 'AbortError' when a signal ended the call, and stays an instance of its class", () => {
    const reason = new DOMException('stop', 'AbortError');
    const err = new DemoError('ERR_DEMO_ABORTED', 'aborted', { cause: reason, name: 'AbortError' });
    expect(err.name).toBe('AbortError');
    expect(err).toBeInstanceOf(DemoError);
    expect(err).toBeInstanceOf(RedisEventsError);
    expect(err.code).toBe('ERR_DEMO_ABORTED');
  });

  it('says what a close abandoned', () => {
    const err = new DemoError('ERR_DEMO_ARGUMENT', 'closed with 2 messages unsent', { abandoned: { messages: 2 } });
    expect(err.abandoned).toEqual({ messages: 2 });
  });

  it('tells the classes apart with instanceof', () => {
    const demo = new DemoError('ERR_DEMO_ARGUMENT', 'x');
    const child = new DemoChildError('ERR_DEMO_ARGUMENT', 'x');
    const resp = new RespError('ERR_RESP_ARGUMENT', 'x');
    const reply = new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value');
    for (const err of [demo, child, resp, reply]) expect(err).toBeInstanceOf(RedisEventsError);
    expect(resp).not.toBeInstanceOf(DemoError);
    expect(demo).not.toBeInstanceOf(RespError);
    expect(child).toBeInstanceOf(DemoError);
    // A subclass without a brand of its own is told apart by its prototype.
    expect(demo).not.toBeInstanceOf(DemoChildError);
    expect(reply).toBeInstanceOf(RespError);
    expect(reply).not.toBeInstanceOf(RespProtocolError);
    expect(resp).not.toBeInstanceOf(ReplyError);
    expect(new Error('x')).not.toBeInstanceOf(RedisEventsError);
    expect(null).not.toBeInstanceOf(RedisEventsError);
    expect({ name: 'RespError', code: 'ERR_RESP_ARGUMENT' }).not.toBeInstanceOf(RespError);
  });

  it('works across two copies of the package', async () => {
    // A second instance of the module, as a second install of the package would load.
    const path = '../src/errors.ts?copy';
    const copy = (await import(path)) as typeof import('../src/errors.ts');
    expect(copy.RespError).not.toBe(RespError);
    const theirs = new copy.ReplyError('NOPERM this user has no permissions');
    expect(theirs).toBeInstanceOf(RedisEventsError);
    expect(theirs).toBeInstanceOf(RespError);
    expect(theirs).toBeInstanceOf(ReplyError);
    expect(theirs).not.toBeInstanceOf(RespProtocolError);
    expect(new DemoError('ERR_DEMO_ARGUMENT', 'x')).toBeInstanceOf(copy.RedisEventsError);
    expect(new RespError('ERR_RESP_TIMEOUT', 'x')).toBeInstanceOf(copy.RespError);
  });

  it("holds for the testkit's errors, which carry the brand without depending on resp", () => {
    const err = new TestkitError('ERR_TESTKIT_TIMEOUT', 'waited too long');
    expect(err).toBeInstanceOf(RedisEventsError);
    expect(err).not.toBeInstanceOf(RespError);
    expect(err).toMatchObject({ package: '@redis-events/testkit', code: 'ERR_TESTKIT_TIMEOUT', abandoned: undefined });
  });

  it('keeps RespError as it was: name, code, package', () => {
    const err = new RespProtocolError('ERR_RESP_PROTOCOL', 'invalid digit', 3, ':12a');
    expect(err).toMatchObject({ name: 'RespProtocolError', code: 'ERR_RESP_PROTOCOL', package: '@redis-events/resp' });
    const reply = new ReplyError('NOGROUP No such key');
    expect(reply).toMatchObject({ name: 'ReplyError', prefix: 'NOGROUP', package: '@redis-events/resp' });
  });
});
