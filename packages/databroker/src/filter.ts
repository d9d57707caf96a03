// Filter expressions for syncLatest, in the JSON form Pomerium's databroker takes:
//
//   { id: 'r1' }                                  equals on the record id
//   { type: 'session' }                           equals on the record type
//   { $index: '10.1.2.3' }                        the record's $index.cidr contains this IP (or subnet)
//   { user: { email: 'ada@example.com' } }        equals on an indexable data field (user.email)
//   { id: ['a', 'b'] }                            an array is an OR of equals
//   { id: { $eq: 'a' } }                          $eq compares at the current path
//   { $and: [ ... ] }, { $or: [ ... ] }           combinations; several keys in one object are ANDed
//
// Parsing and compiling walk the expression with explicit stacks (no recursion on caller input),
// with a limit on depth and on the number of nodes.
import { BlockList, isIP } from 'node:net';
import { DataBrokerError } from './errors.ts';

/**
 * A value an expression compares with. Numbers, booleans and null compare by their text (`1`, `true`, `null`).
 *
 * @example
 * ```ts
 * const active: FilterScalar = true; // matches data whose field holds true (or "true")
 * ```
 */
export type FilterScalar = string | number | boolean | null;

/**
 * A value in a {@link FilterExpression}: a scalar, an array (OR), or a nested expression.
 *
 * @example
 * ```ts
 * const value: FilterValue = ['r1', 'r2']; // { id: value } matches either id
 * ```
 */
export type FilterValue = FilterScalar | readonly FilterValue[] | FilterExpression;

/**
 * A filter for `syncLatest`: `id`, `type`, `$index` (CIDR match) and the type's indexable fields,
 * combined with `$and`, `$or`, arrays and nesting.
 *
 * @example
 * ```ts
 * const filter: FilterExpression = {
 *   $or: [{ id: 'admin' }, { $and: [{ $index: '10.0.0.7' }, { team: { name: 'ops' } }] }],
 * };
 * const { stream } = await broker.syncLatest('route', filter);
 * ```
 */
export interface FilterExpression {
  readonly [field: string]: FilterValue;
}

/** The compiled tree. */
export type FilterNode =
  | { readonly kind: 'and'; readonly children: readonly FilterNode[] }
  | { readonly kind: 'or'; readonly children: readonly FilterNode[] }
  | { readonly kind: 'equals'; readonly field: string; readonly value: string };

/** What a predicate sees of a record. `view()` decodes the data lazily. */
export interface FilterSubject {
  readonly type: string;
  readonly id: string;
  /** The record's data as the filter sees it (the `index` option's view), or undefined for none. */
  view(): unknown;
  /** Whether `field` is an indexable field of the record's type. */
  indexable(field: string): boolean;
}

/** A compiled filter. */
export interface CompiledFilter {
  readonly node: FilterNode | undefined;
  readonly test: (subject: FilterSubject) => boolean;
  /** Ids every match must have, when the expression pins them down (point lookups instead of a scan). */
  readonly ids: ReadonlySet<string> | undefined;
  /** Types every match must have, when the expression pins them down. */
  readonly types: ReadonlySet<string> | undefined;
  /** Whether the predicate needs the record's data (so a scan must decode it). */
  readonly needsData: boolean;
  /** The data fields the filter compares (neither id, type nor $index): each must be indexable. */
  readonly dataFields: ReadonlySet<string>;
}

/** Deepest nesting of a filter expression. */
export const MAX_FILTER_DEPTH = 32;
/** Most nodes in a filter expression. */
export const MAX_FILTER_NODES = 10_000;

function filterError(message: string): DataBrokerError {
  return new DataBrokerError('ERR_DATABROKER_FILTER', message);
}

function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function scalarText(value: unknown, where: string): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw filterError(`${where}: ${value} is not a value a filter can compare`);
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      if (value === null) return 'null';
      throw filterError(`${where}: a ${typeof value} is not a value a filter can compare`);
  }
}

interface MutableGroup {
  kind: 'and' | 'or';
  children: FilterNode[];
}

type Task =
  /** Fill `into` with the keys of `value`, an object. */
  | {
      readonly what: 'object';
      readonly path: string;
      readonly value: object;
      readonly into: MutableGroup;
      readonly depth: number;
    }
  /** Place one value at `path` in `into`: an array becomes an OR, an object an AND, a scalar an equals. */
  | {
      readonly what: 'value';
      readonly path: string;
      readonly value: unknown;
      readonly into: MutableGroup;
      readonly depth: number;
    }
  /** One key of an object. */
  | {
      readonly what: 'key';
      readonly path: string;
      readonly key: string;
      readonly value: unknown;
      readonly into: MutableGroup;
      readonly depth: number;
    };

/**
 * Parses a filter expression into a tree. `undefined`, `null` and `{}` match everything.
 * Throws `ERR_DATABROKER_FILTER` for anything else that is not an expression.
 *
 * Every task appends its node when it runs, and siblings are pushed in reverse, so that children
 * keep the written order (object keys in sorted order, as the original).
 */
export function parseFilter(expression: unknown): FilterNode | undefined {
  if (expression === undefined || expression === null) return undefined;
  if (!isPlainObject(expression)) throw filterError('a filter expression must be a plain object, like { id: "r1" }');
  const root: MutableGroup = { kind: 'and', children: [] };
  const stack: Task[] = [{ what: 'object', path: '', value: expression, into: root, depth: 1 }];
  let nodes = 0;
  while (stack.length > 0) {
    const task = stack.pop() as Task;
    if (++nodes > MAX_FILTER_NODES) throw filterError(`a filter expression may hold at most ${MAX_FILTER_NODES} nodes`);
    if (task.depth > MAX_FILTER_DEPTH)
      throw filterError(`a filter expression may nest at most ${MAX_FILTER_DEPTH} deep`);
    const where = task.path || 'the filter';
    // Depth counts the objects and arrays entered, the nesting a reader sees.
    const { depth } = task;
    if (task.what === 'object') {
      const object = task.value as Readonly<Record<string, unknown>>;
      const keys = Object.keys(object).sort();
      for (let k = keys.length - 1; k >= 0; k--) {
        const key = keys[k] as string;
        stack.push({ what: 'key', path: task.path, key, value: object[key], into: task.into, depth });
      }
    } else if (task.what === 'key') {
      const { key, value } = task;
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(value)) throw filterError(`${where}: ${key} takes an array of expressions`);
        const group: MutableGroup = { kind: key === '$and' ? 'and' : 'or', children: [] };
        task.into.children.push(group);
        for (let i = value.length - 1; i >= 0; i--) {
          const item: unknown = value[i];
          if (!isPlainObject(item)) throw filterError(`${where}: every element of ${key} must be an expression object`);
          stack.push({ what: 'value', path: task.path, value: item, into: group, depth: depth + 1 });
        }
      } else if (key === '$eq') {
        if (!task.path) throw filterError('$eq needs a field to compare with, like { id: { $eq: "r1" } }');
        task.into.children.push({ kind: 'equals', field: task.path, value: scalarText(value, where) });
      } else if (key.startsWith('$') && key !== '$index') {
        throw filterError(`${where}: unknown operator ${key}; the operators are $and, $or and $eq`);
      } else {
        if (key === '') throw filterError(`${where}: a field name cannot be empty`);
        stack.push({ what: 'value', path: task.path ? `${task.path}.${key}` : key, value, into: task.into, depth });
      }
    } else {
      const { value } = task;
      if (Array.isArray(value)) {
        const group: MutableGroup = { kind: 'or', children: [] };
        task.into.children.push(group);
        for (let i = value.length - 1; i >= 0; i--) {
          stack.push({ what: 'value', path: task.path, value: value[i], into: group, depth: depth + 1 });
        }
      } else if (isPlainObject(value)) {
        const group: MutableGroup = { kind: 'and', children: [] };
        task.into.children.push(group);
        stack.push({ what: 'object', path: task.path, value, into: group, depth: depth + 1 });
      } else {
        if (!task.path) throw filterError('a value needs a field to compare with, like { id: "r1" }');
        task.into.children.push({ kind: 'equals', field: task.path, value: scalarText(value, where) });
      }
    }
  }
  return simplify(root);
}

/** Unwraps groups of one child, bottom-up without recursion. */
function simplify(root: MutableGroup): FilterNode | undefined {
  const order: MutableGroup[] = [];
  const stack: MutableGroup[] = [root];
  while (stack.length > 0) {
    const group = stack.pop() as MutableGroup;
    order.push(group);
    for (const child of group.children) if (child.kind !== 'equals') stack.push(child as MutableGroup);
  }
  const replaced = new Map<FilterNode, FilterNode>();
  for (let i = order.length - 1; i >= 0; i--) {
    const group = order[i] as MutableGroup;
    group.children = group.children.map((c) => replaced.get(c) ?? c);
    if (group.children.length === 1) replaced.set(group as FilterNode, group.children[0] as FilterNode);
  }
  const top = replaced.get(root as FilterNode) ?? (root as FilterNode);
  if (top.kind === 'and' && top.children.length === 0) return undefined;
  return top;
}

/** A parsed CIDR (or a single address) as a block list, cached because records repeat their CIDRs. */
const cidrCache = new Map<string, { list: BlockList; prefix: number } | null>();
const CIDR_CACHE_LIMIT = 4096;

function parseCidr(text: string): { address: string; family: 'ipv4' | 'ipv6'; prefix: number } | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const digits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(digits)) return undefined;
    prefix = Number(digits);
    if (prefix > max) return undefined;
  }
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix };
}

function subnetOf(text: string): { list: BlockList; prefix: number } | null {
  const cached = cidrCache.get(text);
  if (cached !== undefined) return cached;
  const cidr = parseCidr(text);
  let entry: { list: BlockList; prefix: number } | null = null;
  if (cidr) {
    const list = new BlockList();
    list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    entry = { list, prefix: cidr.prefix };
  }
  if (cidrCache.size >= CIDR_CACHE_LIMIT) cidrCache.clear();
  cidrCache.set(text, entry);
  return entry;
}

/** Walks a dotted path through plain objects. */
function lookup(view: unknown, path: readonly string[]): unknown {
  let at: unknown = view;
  for (const part of path) {
    if (!isPlainObject(at) || !Object.hasOwn(at, part)) return undefined;
    at = at[part];
  }
  return at;
}

function valueMatches(found: unknown, expected: string): boolean {
  if (Array.isArray(found)) return found.some((item) => !Array.isArray(item) && valueMatches(item, expected));
  switch (typeof found) {
    case 'string':
      return found === expected;
    case 'number':
      return String(found) === expected;
    case 'boolean':
      return (found ? 'true' : 'false') === expected;
    default:
      return found === null && expected === 'null';
  }
}

type Predicate = (subject: FilterSubject) => boolean;

function equalsPredicate(field: string, value: string): Predicate {
  if (field === 'id') return (s) => s.id === value;
  if (field === 'type') return (s) => s.type === value;
  if (field === '$index') {
    const query = parseCidr(value);
    if (!query) throw filterError(`$index takes an IP address or a CIDR, not "${value}"`);
    return (s) => {
      const cidr = lookup(s.view(), ['$index', 'cidr']);
      if (typeof cidr !== 'string') return false;
      const subnet = subnetOf(cidr);
      return subnet !== null && query.prefix >= subnet.prefix && subnet.list.check(query.address, query.family);
    };
  }
  const path = field.split('.');
  return (s) => s.indexable(field) && valueMatches(lookup(s.view(), path), value);
}

/** Compiles a parsed filter into a predicate, bottom-up without recursion. */
export function compileFilter(expression: unknown): CompiledFilter {
  const node = parseFilter(expression);
  if (!node)
    return { node, test: () => true, ids: undefined, types: undefined, needsData: false, dataFields: new Set() };
  const order: FilterNode[] = [];
  const stack: FilterNode[] = [node];
  while (stack.length > 0) {
    const at = stack.pop() as FilterNode;
    order.push(at);
    if (at.kind !== 'equals') for (const child of at.children) stack.push(child);
  }
  const predicates = new Map<FilterNode, Predicate>();
  const ids = new Map<FilterNode, Set<string> | undefined>();
  const types = new Map<FilterNode, Set<string> | undefined>();
  let needsData = false;
  const dataFields = new Set<string>();
  for (let i = order.length - 1; i >= 0; i--) {
    const at = order[i] as FilterNode;
    if (at.kind === 'equals') {
      predicates.set(at, equalsPredicate(at.field, at.value));
      ids.set(at, at.field === 'id' ? new Set([at.value]) : undefined);
      types.set(at, at.field === 'type' ? new Set([at.value]) : undefined);
      if (at.field !== 'id' && at.field !== 'type') needsData = true;
      if (at.field !== 'id' && at.field !== 'type' && at.field !== '$index') dataFields.add(at.field);
      continue;
    }
    const children = at.children.map((c) => predicates.get(c) as Predicate);
    if (at.kind === 'and') {
      predicates.set(at, (s) => children.every((p) => p(s)));
    } else {
      // An empty $or matches everything, as in the original.
      predicates.set(at, children.length === 0 ? () => true : (s) => children.some((p) => p(s)));
    }
    ids.set(at, combine(at, ids));
    types.set(at, combine(at, types));
  }
  return {
    node,
    test: predicates.get(node) as Predicate,
    ids: ids.get(node),
    types: types.get(node),
    needsData,
    dataFields,
  };
}

/** The set of values every match must take: an AND narrows to the intersection, an OR needs all branches pinned. */
function combine(
  node: Extract<FilterNode, { kind: 'and' | 'or' }>,
  sets: Map<FilterNode, Set<string> | undefined>,
): Set<string> | undefined {
  const known = node.children.map((c) => sets.get(c));
  if (node.kind === 'and') {
    let out: Set<string> | undefined;
    for (const set of known) {
      if (!set) continue;
      out = out ? new Set([...out].filter((v) => set.has(v))) : new Set(set);
    }
    return out;
  }
  if (known.length === 0 || known.some((s) => s === undefined)) return undefined;
  const out = new Set<string>();
  for (const set of known) for (const v of set as Set<string>) out.add(v);
  return out;
}
