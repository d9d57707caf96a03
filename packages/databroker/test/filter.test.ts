import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileFilter, type FilterSubject, MAX_FILTER_DEPTH, parseFilter } from '../src/filter.ts';
import { thrownCode } from './helpers.ts';

function subject(type: string, id: string, data: unknown, indexable: readonly string[] = []): FilterSubject {
  return { type, id, view: () => data, indexable: (field) => indexable.includes(field) };
}

const filterCode = (expression: unknown) => thrownCode(() => compileFilter(expression));

describe('filter expressions', () => {
  it('parses the JSON forms into a tree, keys in sorted order', () => {
    expect(parseFilter(undefined)).toBeUndefined();
    expect(parseFilter({})).toBeUndefined();
    expect(parseFilter({ id: 'a' })).toEqual({ kind: 'equals', field: 'id', value: 'a' });
    expect(parseFilter({ id: { $eq: 'a' } })).toEqual({ kind: 'equals', field: 'id', value: 'a' });
    expect(parseFilter({ id: ['a', 'b'] })).toEqual({
      kind: 'or',
      children: [
        { kind: 'equals', field: 'id', value: 'a' },
        { kind: 'equals', field: 'id', value: 'b' },
      ],
    });
    expect(parseFilter({ user: { email: 'x', age: 3 }, id: 'a' })).toEqual({
      kind: 'and',
      children: [
        { kind: 'equals', field: 'id', value: 'a' },
        {
          kind: 'and',
          children: [
            { kind: 'equals', field: 'user.age', value: '3' },
            { kind: 'equals', field: 'user.email', value: 'x' },
          ],
        },
      ],
    });
    expect(parseFilter({ $or: [{ id: 'a' }, { $and: [{ type: 't' }, { flag: true }, { none: null }] }] })).toEqual({
      kind: 'or',
      children: [
        { kind: 'equals', field: 'id', value: 'a' },
        {
          kind: 'and',
          children: [
            { kind: 'equals', field: 'type', value: 't' },
            { kind: 'equals', field: 'flag', value: 'true' },
            { kind: 'equals', field: 'none', value: 'null' },
          ],
        },
      ],
    });
  });

  it('evaluates id, type, indexable fields, arrays and the empty groups as the original', () => {
    const s = subject('t', 'r1', { team: { name: 'ops', tags: ['a', 'b'] }, n: 1.5, ok: false }, [
      'team.name',
      'team.tags',
      'n',
    ]);
    const test = (e: unknown) => compileFilter(e).test(s);
    expect(test(undefined)).toBe(true);
    expect(test({ id: 'r1' })).toBe(true);
    expect(test({ id: 'r2' })).toBe(false);
    expect(test({ type: 't', id: ['r0', 'r1'] })).toBe(true);
    expect(test({ team: { name: 'ops' } })).toBe(true);
    expect(test({ 'team.name': 'ops' })).toBe(true);
    expect(test({ team: { tags: 'b' } })).toBe(true);
    expect(test({ n: 1.5 })).toBe(true);
    expect(test({ ok: false })).toBe(false); // not indexable: matches nothing
    expect(test({ $and: [] })).toBe(true);
    expect(test({ $or: [] })).toBe(true);
    expect(test({ $or: [{ id: 'x' }, { team: { name: 'ops' } }] })).toBe(true);
    expect(test({ $and: [{ id: 'r1' }, { team: { name: 'dev' } }] })).toBe(false);
  });

  it('matches $index by CIDR containment, for addresses and subnets, v4 and v6', () => {
    const v4 = subject('t', 'a', { $index: { cidr: '192.168.0.0/16' } });
    const v6 = subject('t', 'b', { $index: { cidr: '2001:db8::/32' } });
    const single = subject('t', 'c', { $index: { cidr: '10.0.0.1' } });
    const broken = subject('t', 'd', { $index: { cidr: 'not a cidr' } });
    const none = subject('t', 'e', 'plain string');
    const test = (value: string, s: FilterSubject) => compileFilter({ $index: value }).test(s);
    expect(test('192.168.0.1', v4)).toBe(true);
    expect(test('192.169.0.1', v4)).toBe(false);
    expect(test('192.168.4.0/24', v4)).toBe(true);
    expect(test('192.0.0.0/8', v4)).toBe(false); // wider than the record's subnet
    expect(test('2001:db8::1', v6)).toBe(true);
    expect(test('2001:db9::1', v6)).toBe(false);
    expect(test('2001:db8::1', v4)).toBe(false);
    expect(test('10.0.0.1', single)).toBe(true);
    expect(test('10.0.0.2', single)).toBe(false);
    expect(test('10.0.0.1', broken)).toBe(false);
    expect(test('10.0.0.1', none)).toBe(false);
  });

  it('pins ids and types for point lookups when the expression implies them', () => {
    expect(compileFilter({ id: 'a' }).ids).toEqual(new Set(['a']));
    expect(compileFilter({ id: ['a', 'b'] }).ids).toEqual(new Set(['a', 'b']));
    expect(compileFilter({ $and: [{ id: ['a', 'b'] }, { $index: '10.0.0.1' }] }).ids).toEqual(new Set(['a', 'b']));
    expect(compileFilter({ $and: [{ id: ['a', 'b'] }, { id: ['b', 'c'] }] }).ids).toEqual(new Set(['b']));
    expect(compileFilter({ $or: [{ id: 'a' }, { $index: '10.0.0.1' }] }).ids).toBeUndefined();
    expect(compileFilter({ type: 't', id: 'a' }).types).toEqual(new Set(['t']));
    expect(compileFilter({ id: 'a' }).needsData).toBe(false);
    expect(compileFilter({ $index: '10.0.0.1' }).needsData).toBe(true);
  });

  it('rejects what is not an expression with ERR_DATABROKER_FILTER', () => {
    for (const bad of [
      'id',
      [],
      { $and: {} },
      { $or: ['x'] },
      { $eq: 'x' },
      { $gt: 1 },
      { id: { $eq: {} } },
      { id: Number.NaN },
      { id: () => 1 },
      { $index: 'not-an-ip' },
      { $index: '10.0.0.0/33' },
      { '': 'x' },
      new Map(),
    ]) {
      expect(filterCode(bad)).toBe('ERR_DATABROKER_FILTER');
    }
  });

  it('limits depth and size without recursing', () => {
    let deep: unknown = { id: 'x' };
    for (let i = 0; i < MAX_FILTER_DEPTH; i++) deep = { $and: [deep] };
    expect(filterCode(deep)).toBe('ERR_DATABROKER_FILTER');
    let veryDeep: unknown = { id: 'x' };
    for (let i = 0; i < 100_000; i++) veryDeep = { a: veryDeep };
    expect(filterCode(veryDeep)).toBe('ERR_DATABROKER_FILTER');
    expect(filterCode({ id: Array.from({ length: 20_000 }, (_, i) => String(i)) })).toBe('ERR_DATABROKER_FILTER');
  });

  it('agrees with a direct evaluation on random expressions', () => {
    const ids = fc.constantFrom('a', 'b', 'c');
    const leaf = fc.oneof(
      ids.map((id) => ({ id })),
      fc.array(ids, { maxLength: 3 }).map((list) => ({ id: list })),
      fc.constantFrom('x', 'y').map((v) => ({ f: v })),
    );
    const expr = fc.letrec<{ e: Record<string, unknown> }>((tie) => ({
      e: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.array(tie('e'), { maxLength: 3 }).map((list) => ({ $and: list })),
        fc.array(tie('e'), { maxLength: 3 }).map((list) => ({ $or: list })),
      ),
    })).e;
    const direct = (e: Record<string, unknown>, id: string, f: string): boolean => {
      if ('$and' in e) return (e.$and as Record<string, unknown>[]).every((x) => direct(x, id, f));
      if ('$or' in e) {
        const list = e.$or as Record<string, unknown>[];
        return list.length === 0 || list.some((x) => direct(x, id, f));
      }
      if ('f' in e) return e.f === f;
      const want = e.id as string | string[];
      return Array.isArray(want) ? want.length === 0 || want.includes(id) : want === id;
    };
    fc.assert(
      fc.property(expr, ids, fc.constantFrom('x', 'y'), (e, id, f) => {
        const compiled = compileFilter(e);
        const s = subject('t', id, { f }, ['f']);
        // An empty id array is an empty OR: it matches everything, like an empty $or.
        expect(compiled.test(s)).toBe(direct(e, id, f));
        if (compiled.ids && compiled.test(s)) expect(compiled.ids.has(id)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
