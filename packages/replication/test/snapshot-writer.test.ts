// The snapshot writer keeps each source's key in progress apart: a Cluster's shards send their
// snapshots interleaved, and one shard's new snapshot or keys must not break another's big key.
import { describe, expect, it } from 'vitest';
import type { RdbListEntry } from '../src/index.ts';
import type { WriteContext } from '../src/sink/context.ts';
import { compileFilter } from '../src/sink/filter.ts';
import { SnapshotWriter } from '../src/sink/snapshot-writes.ts';

function recorder(): { ctx: WriteContext; sent: string[] } {
  const sent: string[] = [];
  const ctx = {
    target: undefined as never,
    filter: compileFilter(undefined),
    mapDb: (db: number) => db,
    mergesDbs: false,
    send: (args: Parameters<WriteContext['send']>[0]) => {
      sent.push(args.map((a) => (typeof a === 'number' ? String(a) : a.toString('latin1'))).join(' '));
    },
    warn: () => {},
    targetAtLeast: () => true,
  } satisfies WriteContext;
  return { ctx, sent };
}

const part = (key: string, n: number, last: boolean, items: string[]): RdbListEntry => ({
  kind: 'entry',
  db: 0,
  key: Buffer.from(key),
  rdbType: 18,
  rdbTypeName: 'RDB_TYPE_LIST_QUICKLIST_2',
  type: 'list',
  value: items.map((i) => Buffer.from(i)),
  part: n,
  last,
  offset: 0,
});

describe('SnapshotWriter', () => {
  it('writes the parts of keys from two sources interleaved, each to its own key', () => {
    const { ctx, sent } = recorder();
    const writer = new SnapshotWriter(ctx, 'replace');
    expect(writer.entry(part('a:big', 0, false, ['1']), undefined, 'shard-a')).toBeUndefined(); // replace: never waits
    expect(writer.entry(part('b:big', 0, false, ['x']), undefined, 'shard-b')).toBeUndefined(); // replace: never waits
    writer.reset('shard-c'); // a third shard starts its snapshot
    expect(writer.entry(part('b:small', 0, true, ['only']), undefined, 'shard-c')).toBeUndefined(); // replace: never waits
    expect(writer.entry(part('a:big', 1, false, ['2']), undefined, 'shard-a')).toBeUndefined(); // replace: never waits
    expect(writer.entry(part('b:big', 1, true, ['y']), undefined, 'shard-b')).toBeUndefined(); // replace: never waits
    expect(writer.entry(part('a:big', 2, true, ['3']), undefined, 'shard-a')).toBeUndefined(); // replace: never waits
    // The first part restores the key (its payload holds the first elements), later parts append.
    const of = (key: string) => sent.filter((c) => c.split(' ')[1] === key).map((c) => c.split(' ')[0]);
    const pushed = (key: string) =>
      sent.filter((c) => c.startsWith(`RPUSH ${key} `)).flatMap((c) => c.split(' ').slice(2));
    expect(of('a:big')).toEqual(['RESTORE', 'RPUSH', 'RPUSH']);
    expect(pushed('a:big')).toEqual(['2', '3']);
    expect(of('b:big')).toEqual(['RESTORE', 'RPUSH']);
    expect(pushed('b:big')).toEqual(['y']);
    expect(of('b:small')).toEqual(['RESTORE']);
  });

  it("abandons only the restarted source's key in progress", () => {
    const { ctx } = recorder();
    const writer = new SnapshotWriter(ctx, 'replace');
    expect(writer.entry(part('a:big', 0, false, ['1']), undefined, 'shard-a')).toBeUndefined(); // replace: never waits
    writer.reset('shard-a');
    expect(() => writer.entry(part('a:big', 1, true, ['2']), undefined, 'shard-a')).toThrow(
      /part 1 of key a:big came without its first part/,
    );
  });
});
