import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LocalNotifier, MAX_PUSH_BYTES, pushMessage, readPush } from '../src/notifier.ts';

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

  it('publish only the version for a large commit', () => {
    const big = [Buffer.alloc(MAX_PUSH_BYTES)];
    expect(pushMessage(1, big, 42)).toBe('42');
    expect(readPush(Buffer.from('42'))).toBeUndefined();
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
          ) as Buffer;
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
    const behind = notifier.watch(4);
    const ahead = notifier.watch(9);
    const push = { serverVersion: 1, entries: [Buffer.from('x')] };
    notifier.notify(5, push);
    expect(await behind.changed).toBe(push);
    let woke = false;
    void ahead.changed.then(() => {
      woke = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(woke).toBe(false);
    ahead.dispose();
    notifier.notify(10);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(woke).toBe(false); // disposed
  });
});
