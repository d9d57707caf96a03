// The bounded buffer: unit cases per policy, and a property over random sequences of pushes,
// gaps, reads and ends that checks the bounds and that every drop is reported where it happened.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageBuffer, type OpenGap, type OverflowPolicy, type PubSubGap } from '../src/message-buffer.ts';

const runs = Number(process.env.PUBSUB_FUZZ_RUNS ?? 300);

interface Msg {
  readonly kind: 'message';
  readonly id: number;
}

function msg(id: number): Msg {
  return { kind: 'message', id };
}

function buffer(overflow: OverflowPolicy, highWaterMark = 3, maxBytes = 1_000_000) {
  return new MessageBuffer<Msg>({ highWaterMark, maxBytes, overflow });
}

/** Everything readable now, without waiting. */
async function drain(b: MessageBuffer<Msg>): Promise<(Msg | PubSubGap)[]> {
  const out: (Msg | PubSubGap)[] = [];
  for (let result = b.take(); result !== undefined && !result.done; result = b.take()) out.push(result.value);
  return out;
}

function shape(items: (Msg | PubSubGap)[]): (number | string)[] {
  return items.map((i) => (i.kind === 'gap' ? `${i.reason}:${i.dropped}` : i.id));
}

describe('MessageBuffer', () => {
  it('drop-oldest keeps the newest messages and reports the drops first', async () => {
    const b = buffer('drop-oldest');
    for (let i = 0; i < 7; i++) expect(b.push(msg(i), 1)).toBe(true);
    expect(b.messages).toBe(3);
    expect(b.dropped).toBe(4);
    expect(shape(await drain(b))).toEqual(['overflow:4', 4, 5, 6]);
  });

  it('drop-newest keeps the oldest messages and reports the drops where they happened', async () => {
    const b = buffer('drop-newest');
    for (let i = 0; i < 5; i++) expect(b.push(msg(i), 1)).toBe(i < 3);
    expect(shape([(await b.next()).value as Msg])).toEqual([0]);
    b.push(msg(5), 1);
    b.push(msg(6), 1); // dropped: 1, 2, 5 are held
    expect(shape(await drain(b))).toEqual([1, 2, 'overflow:2', 5, 'overflow:1']);
    expect(b.dropped).toBe(3);
  });

  it('error reports the overflow to the caller, and the end error comes after the buffered messages', async () => {
    const b = buffer('error');
    for (let i = 0; i < 3; i++) b.push(msg(i), 1);
    expect(b.push(msg(3), 1)).toBe('overflow');
    b.end(new Error('too slow'));
    expect(b.push(msg(4), 1)).toBe(false);
    expect(shape(await drain(b))).toEqual([0, 1, 2]);
    await expect(b.next()).rejects.toThrow('too slow');
    expect(await b.next()).toEqual({ done: true, value: undefined });
  });

  it('bounds bytes as well as messages, and still takes one oversized message into an empty buffer', async () => {
    const b = buffer('drop-oldest', 100, 10);
    b.push(msg(0), 4);
    b.push(msg(1), 4);
    b.push(msg(2), 4); // 12 > 10: 0 goes
    expect([b.messages, b.bytes, b.dropped]).toEqual([2, 8, 1]);
    b.push(msg(3), 50); // alone over the limit: everything else goes, it stays
    expect([b.messages, b.bytes, b.dropped]).toEqual([1, 50, 3]);
    expect(shape(await drain(b))).toEqual(['overflow:3', 3]);
  });

  it('hands a message straight to a waiting reader', async () => {
    const b = buffer('drop-oldest');
    const waiting = b.next();
    b.push(msg(1), 1);
    expect(await waiting).toEqual({ done: false, value: msg(1) });
    expect(b.messages).toBe(0);
  });

  it('merges adjacent gaps of the same reason', async () => {
    const b = buffer('drop-newest', 1);
    b.push(msg(0), 1);
    b.gap({ reason: 'reconnect', channels: ['a'], since: 10, until: 20 });
    b.gap({ reason: 'reconnect', channels: ['b'], since: 5, until: 30 });
    b.push(msg(1), 1);
    b.push(msg(2), 1);
    const items = await drain(b);
    expect(shape(items)).toEqual([0, 'reconnect:0', 'overflow:2']);
    expect(items[1]).toMatchObject({ channels: ['a', 'b'], since: 5, until: 30 });
  });

  it('holds readers at an open gap until it closes, keeping what arrives behind it', async () => {
    const b = buffer('drop-oldest', 10);
    b.push(msg(0), 1);
    const open = b.openGap({ reason: 'reconnect', since: 1 });
    b.push(msg(1), 1);
    expect(shape(await drain(b))).toEqual([0]);
    const waiting = b.next();
    b.push(msg(2), 1);
    b.gap({ reason: 'reconnect', since: 2 }); // a closed gap never merges into an open one
    const closed = b.closeGap(open, { channels: ['x'], until: 99 });
    expect(closed).toMatchObject({ reason: 'reconnect', channels: ['x'], since: 1, until: 99 });
    expect((await waiting).value).toMatchObject({ kind: 'gap', reason: 'reconnect', channels: ['x'] });
    expect(shape(await drain(b))).toEqual([1, 2, 'reconnect:0']);
  });

  it('lets readers past open gaps once the buffer ends', async () => {
    const b = buffer('drop-oldest');
    b.openGap({ reason: 'moved' });
    b.push(msg(0), 1);
    const waiting = b.next();
    b.end(new Error('gone'));
    expect((await waiting).value).toMatchObject({ kind: 'gap', reason: 'moved' });
    expect((await b.next()).value).toEqual(msg(0));
    await expect(b.next()).rejects.toThrow('gone');
  });

  it('ends every waiting reader at close() and discards what is buffered', async () => {
    const b = buffer('drop-oldest');
    const readers = [b.next(), b.next()];
    b.close();
    expect(await Promise.all(readers)).toEqual([
      { done: true, value: undefined },
      { done: true, value: undefined },
    ]);
    expect(b.push(msg(1), 1)).toBe(false);
    expect(await b.next()).toEqual({ done: true, value: undefined });
  });

  const ops = fc.array(
    fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('push' as const), size: fc.integer({ min: 0, max: 40 }) }) },
      { weight: 3, arbitrary: fc.record({ op: fc.constant('read' as const) }) },
      {
        weight: 1,
        arbitrary: fc.record({
          op: fc.constant('gap' as const),
          reason: fc.constantFrom('reconnect' as const, 'moved' as const),
        }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('open' as const) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const) }) },
    ),
    { maxLength: 300 },
  );

  it('stays within its limits and reports every drop exactly where it happened (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<OverflowPolicy>('drop-oldest', 'drop-newest', 'error'),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 120 }),
        ops,
        async (overflow, highWaterMark, maxBytes, sequence) => {
          const b = new MessageBuffer<Msg>({ highWaterMark, maxBytes, overflow });
          const delivered: (Msg | PubSubGap)[] = [];
          const openAt = new Map<number, Set<OpenGap>>(); // message id -> gaps open when it was pushed
          const open = new Set<OpenGap>();
          const closed = new Set<OpenGap>();
          let pushed = 0;
          let overflowed = false;
          const read = async () => {
            const result =
              b.take() ?? (b.isEnded && b.messages === 0 ? await b.next().catch(() => undefined) : undefined);
            if (result === undefined || result.done) return false;
            const value = result.value;
            if (value.kind === 'message') {
              // Nothing pushed behind an open gap is read before that gap closed.
              for (const gap of openAt.get(value.id) ?? []) expect(closed.has(gap)).toBe(true);
            }
            delivered.push(value);
            return true;
          };
          for (const step of sequence) {
            if (step.op === 'push') {
              const id = pushed++;
              openAt.set(id, new Set(open));
              const kept = b.push(msg(id), step.size);
              if (kept === 'overflow') {
                expect(overflow).toBe('error');
                overflowed = true;
                b.end(new Error('overflow'));
                // Ending closes every open gap.
                for (const gap of open) closed.add(gap);
                open.clear();
              }
            } else if (step.op === 'read') await read();
            else if (step.op === 'gap') b.gap({ reason: step.reason });
            else if (step.op === 'open') {
              if (open.size < 2) open.add(b.openGap({ reason: 'reconnect' }));
            } else {
              const first = open.values().next().value;
              if (first !== undefined) {
                open.delete(first);
                closed.add(first);
                b.closeGap(first);
              }
            }
            // Bounds: the high-water mark, and the byte limit unless one message is alone.
            expect(b.messages).toBeLessThanOrEqual(highWaterMark);
            if (b.messages > 1) expect(b.bytes).toBeLessThanOrEqual(maxBytes);
          }
          for (const gap of open) {
            closed.add(gap);
            b.closeGap(gap);
          }
          while (await read()) {
            // drain
          }
          expect(b.messages).toBe(0);
          // Every message is delivered once and in order, or counted as dropped at its place.
          let last = -1;
          let droppedHere = 0;
          let deliveredCount = 0;
          for (const item of delivered) {
            if (item.kind === 'gap') {
              if (item.reason === 'overflow') droppedHere += item.dropped;
              continue;
            }
            expect(item.id).toBeGreaterThan(last);
            if (!overflowed) expect(droppedHere).toBe(item.id - last - 1);
            droppedHere = 0;
            last = item.id;
            deliveredCount++;
          }
          if (!overflowed) {
            expect(droppedHere).toBe(pushed - 1 - last);
            expect(deliveredCount + b.dropped).toBe(pushed);
          }
          if (overflow !== 'error') expect(overflowed).toBe(false);
          else expect(b.dropped).toBe(0);
        },
      ),
      { numRuns: runs },
    );
  });
});
