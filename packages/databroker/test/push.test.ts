import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LocalNotifier, MAX_PUSH_BYTES, pushMessage, readMessage, readPush, versionMessage } from '../src/notifier.ts';

describe('change pushes', () => {
  it('round-trip the changes of a small commit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 20 }),
        (serverVersion, raw) => {
          const entries = raw.map((e) => Buffer.from(e));
          const message = pushMessage(serverVersion, entries, 7);
          expect(Buffer.isBuffer(message)).toBe(true);
          const push = readPush(message as Buffer);
          expect(push?.serverVersion).toBe(serverVersion);
          expect(push?.entries.map((e) => e.toString('hex'))).toEqual(entries.map((e) => e.toString('hex')));
        },
      ),
    );
  });

  it('publish only the server version and the last version for a large commit', () => {
    const big = [Buffer.alloc(MAX_PUSH_BYTES)];
    const message = pushMessage(2 ** 40 + 3, big, 2 ** 33 + 42);
    expect(message.equals(versionMessage(2 ** 40 + 3, 2 ** 33 + 42))).toBe(true);
    expect(readMessage(message)).toEqual({ kind: 'version', serverVersion: 2 ** 40 + 3, version: 2 ** 33 + 42 });
    expect(readPush(message)).toBeUndefined();
    expect(readMessage(Buffer.from('42'))).toBeUndefined();
  });

  it('ignore any truncation or extension instead of misreading it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        (raw, cut) => {
          const message = pushMessage(
            5,
            raw.map((e) => Buffer.from(e)),
            1,
          );
          const end = cut % message.length;
          expect(readPush(message.subarray(0, end))).toBeUndefined();
          expect(readPush(Buffer.concat([message, Buffer.from([1])]))).toBeUndefined();
        },
      ),
    );
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), (random) => void readPush(Buffer.from(random))));
  });

  it('wake only the waiters behind the signalled version, with the push', async () => {
    const notifier = new LocalNotifier();
    const behind = notifier.watch(4, 1);
    const ahead = notifier.watch(9, 1);
    const push = { serverVersion: 1, entries: [Buffer.from('x')] };
    notifier.notify(5, 1, push);
    expect((await behind.changed).push).toBe(push);
    let woke = false;
    void ahead.changed.then(() => {
      woke = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(woke).toBe(false);
    ahead.dispose();
    notifier.notify(10, 1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(woke).toBe(false); // disposed
  });
});

describe('wake-ups across a server-version reset', () => {
  it('wake a waiter at or past the signalled version when the server version differs', async () => {
    const notifier = new LocalNotifier();
    const waiter = notifier.watch(1, 111); // blocked at version 1 of server version 111
    notifier.notify(1, 222); // Redis was flushed: another writer is at version 1 of 222
    expect(await waiter.changed).toMatchObject({ reason: 'server-version', version: 1 });
  });

  it('keep a waiter of the same server version waiting for a newer version', async () => {
    const notifier = new LocalNotifier();
    const waiter = notifier.watch(3, 111);
    let woke = false;
    void waiter.changed.then(() => {
      woke = true;
    });
    notifier.notify(3, 111);
    notifier.notify(2, 111);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(woke).toBe(false);
    notifier.notify(4, 111);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(woke).toBe(true);
  });
});
