// Turning replicated commands into target writes. A command whose keys all go to the target is
// sent as it came (with its database mapped). One whose keys only partly do is split when its
// keys are independent (DEL, UNLINK, MSET), and otherwise its kept, written keys are fetched
// again from the source (`refetch`): that takes the exact value the source has, and the
// commands on those keys up to the source's offset at that moment are then skipped, since the
// fetched value includes them. The same applies to commands whose keys span several slots of a
// Cluster target. `MULTI ... EXEC` is kept atomic when every command of it lands on one node.

import { type CommandKeys, commandKeys, legacyKeys } from './command-keys.ts';
import type { WriteContext } from './context.ts';
import { slotOf } from './slots.ts';
import type { TargetArg } from './target.ts';

/** One thing to do on the target for a replicated command. */
export type LiveAction =
  | {
      readonly kind: 'write';
      readonly args: TargetArg[];
      readonly db: number;
      /** Routes the write on a Cluster; undefined for keyless commands. */
      readonly key: Buffer | undefined;
      /** Keyless commands that must reach every master (FUNCTION LOAD, FLUSHALL). */
      readonly everyMaster?: boolean | undefined;
    }
  | {
      /** Take this key's value from the source again (its source database and the target's). */
      readonly kind: 'refetch';
      readonly sourceDb: number;
      readonly db: number;
      readonly key: Buffer;
    }
  | {
      /** Delete the target's keys of these databases that the filter keeps (or all of them). */
      readonly kind: 'flush';
      /** Source databases; undefined for every database (FLUSHALL). */
      readonly sourceDb: number | undefined;
      readonly async: boolean;
    }
  | { readonly kind: 'warn'; readonly code: string; readonly message: string };

/** What the live writer needs beyond the write context. */
export interface LiveOptions {
  /** Forward PUBLISH and SPUBLISH (they reach the target's subscribers again). Default false. */
  readonly publish: boolean;
  /** Forward FUNCTION and SCRIPT commands. Default true. */
  readonly functions: boolean;
  /** The source can be asked for a key's current value (a live master); files cannot. */
  readonly canRefetch: boolean;
  /** The key specification of a command the built-in table does not know (the target's COMMAND INFO). */
  keysOf(name: string): { first: number; last: number; step: number } | null | undefined;
}

/** Command name → the value type it writes, for type filters. */
const FAMILY: Record<string, string> = {};
for (const [type, names] of Object.entries({
  string:
    'SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT SETBIT BITFIELD BITOP MSET MSETNX MSETEX DELEX DELIFEQ PFADD PFMERGE PFCOUNT',
  list: 'LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LINSERT LSET LREM LTRIM RPOPLPUSH LMOVE BLMOVE BRPOPLPUSH LMPOP BLMPOP BLPOP BRPOP',
  set: 'SADD SREM SPOP SMOVE SINTERSTORE SUNIONSTORE SDIFFSTORE',
  zset: 'ZADD ZINCRBY ZREM ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ZPOPMIN ZPOPMAX ZUNIONSTORE ZINTERSTORE ZDIFFSTORE ZRANGESTORE ZMPOP BZMPOP BZPOPMIN BZPOPMAX GEOADD GEOSEARCHSTORE GEORADIUS GEORADIUSBYMEMBER',
  hash: 'HSET HSETNX HMSET HDEL HINCRBY HINCRBYFLOAT HEXPIRE HPEXPIRE HEXPIREAT HPEXPIREAT HPERSIST HGETDEL HGETEX HSETEX',
  stream: 'XADD XDEL XTRIM XSETID XACK XCLAIM XAUTOCLAIM XACKDEL XDELEX XCFGSET XGROUP',
})) {
  for (const name of names.split(' ')) FAMILY[name] = type;
}

/** String commands that replace a key of any type. */
const OVERWRITES = new Set(['SET', 'SETEX', 'PSETEX', 'GETSET', 'MSET', 'MSETEX']);

/** RDB type byte of a DUMP payload → value type. */
function payloadType(payload: Buffer | undefined): string | undefined {
  const t = payload?.[0];
  if (t === undefined) return undefined;
  if (t === 0) return 'string';
  if (t === 1 || t === 10 || t === 14 || t === 18) return 'list';
  if (t === 2 || t === 11 || t === 20) return 'set';
  if (t === 3 || t === 5 || t === 12 || t === 17) return 'zset';
  if (t === 4 || t === 9 || t === 13 || t === 16 || (t >= 22 && t <= 25)) return 'hash';
  if (t === 15 || t === 19 || t === 21 || t === 26 || t === 27) return 'stream';
  if (t === 6 || t === 7) return 'module';
  return undefined;
}

const DROPPED = new Set(['PING', 'REPLCONF', 'SELECT', 'MULTI', 'EXEC', 'DISCARD', 'WAIT', 'WAITAOF']);

/**
 * The target actions of one replicated command, or undefined when its keys are not known yet
 * (the caller looks the command up and asks again).
 */
export function liveActions(
  ctx: WriteContext,
  options: LiveOptions,
  name: string,
  args: readonly Buffer[],
  db: number,
): LiveAction[] | undefined {
  if (DROPPED.has(name)) return [];
  const filter = ctx.filter;
  switch (name) {
    case 'PUBLISH':
    case 'SPUBLISH':
      if (!options.publish || !filter.db(db)) return [];
      // SPUBLISH routes by its channel's slot, like a key.
      return [
        { kind: 'write', args: [name, ...args], db: ctx.mapDb(db), key: name === 'SPUBLISH' ? args[0] : undefined },
      ];
    case 'FLUSHALL':
      return [{ kind: 'flush', sourceDb: undefined, async: upperArg(args[0]) === 'ASYNC' }];
    case 'FLUSHDB':
      return filter.db(db) ? [{ kind: 'flush', sourceDb: db, async: upperArg(args[0]) === 'ASYNC' }] : [];
    case 'SWAPDB':
      return swapDb(ctx, args);
    case 'FUNCTION':
    case 'SCRIPT':
      if (!options.functions) return [];
      return [{ kind: 'write', args: [name, ...args], db: 0, key: undefined, everyMaster: true }];
    default:
      break;
  }
  let keys: CommandKeys | undefined = commandKeys(name, args);
  if (keys === undefined) {
    const spec = options.keysOf(name);
    if (spec === undefined) return undefined;
    keys =
      spec === null
        ? { shape: 'keyless', positions: [], written: [] }
        : legacyKeys(spec.first, spec.last, spec.step, args);
  }
  let outName = name;
  if (name === 'RESTORE-ASKING') outName = 'RESTORE'; // a slot migration on a Cluster source
  if (keys.shape === 'keyless') {
    if (!filter.db(db)) return [];
    return [{ kind: 'write', args: [outName, ...args], db: ctx.mapDb(db), key: undefined }];
  }
  const count = keys.positions.length;
  const keyAt = (i: number) => args[keys.positions[i] as number] as Buffer;
  const dbAt = (i: number) => keys.dbs?.[i] ?? db;

  // Type filters: the command's family says what type it writes.
  let typeGate: 'pass' | 'drop' | 'delete' | 'refetch' = 'pass';
  if (filter.byType) {
    const family = name === 'RESTORE' || name === 'RESTORE-ASKING' ? payloadType(args[2]) : FAMILY[name];
    if (family !== undefined) {
      if (!filter.type(family as never))
        typeGate = OVERWRITES.has(name) || name.startsWith('RESTORE') ? 'delete' : 'drop';
    } else if (keys.shape === 'linked') typeGate = 'refetch'; // RENAME, COPY, MOVE: the type is the value's
  }
  const pass: boolean[] = [];
  let passing = 0;
  for (let i = 0; i < count; i++) {
    const ok = filter.db(dbAt(i)) && filter.key(keyAt(i));
    pass.push(ok);
    if (ok) passing++;
  }
  if (passing === 0) return [];
  if (typeGate === 'drop') return [];
  if (typeGate === 'delete') {
    // A string write over a key of a kept type: the target's copy must go.
    const out: LiveAction[] = [];
    for (let i = 0; i < count; i++)
      if (pass[i] && keys.written[i])
        out.push({ kind: 'write', args: ['DEL', keyAt(i)], db: ctx.mapDb(dbAt(i)), key: keyAt(i) });
    return out;
  }
  if (typeGate === 'refetch') return refetchWritten(ctx, options, name, keys, pass, keyAt, dbAt);

  if (passing < count) {
    if (keys.shape === 'independent' || keys.shape === 'pairs') {
      const kept: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        if (!pass[i]) continue;
        const at = keys.positions[i] as number;
        kept.push(args[at] as Buffer);
        if (keys.shape === 'pairs') kept.push(args[at + 1] as Buffer);
      }
      return splitBySlot(ctx, name, kept, keys.shape === 'pairs' ? 2 : 1, ctx.mapDb(db));
    }
    if (name === 'MOVE') {
      // The key leaves a kept database for one that is not: it is gone from the target's view.
      if (pass[0]) return [{ kind: 'write', args: ['DEL', keyAt(0)], db: ctx.mapDb(db), key: keyAt(0) }];
    }
    return refetchWritten(ctx, options, name, keys, pass, keyAt, dbAt);
  }

  // Every key is kept.
  let out: TargetArg[];
  if (name === 'MOVE') {
    const to = dbAt(1);
    if (ctx.mapDb(to) === ctx.mapDb(db)) return []; // both databases land in one: nothing moves
    if (ctx.target.cluster) return refetchWritten(ctx, options, name, keys, pass, keyAt, dbAt);
    out = ['MOVE', keyAt(0), ctx.mapDb(to)];
  } else if (name === 'COPY' && keys.dbs?.[1] !== undefined) {
    const to = keys.dbs[1] as number;
    if (ctx.target.cluster && ctx.mapDb(to) !== ctx.mapDb(db))
      return refetchWritten(ctx, options, name, keys, pass, keyAt, dbAt);
    out = [
      outName,
      ...args.map((a, i) => (i > 0 && upperArg(args[i - 1]) === 'DB' ? Buffer.from(String(ctx.mapDb(to))) : a)),
    ];
  } else out = [outName, ...args];
  const targetDb = ctx.mapDb(db);
  if (count > 1 && ctx.target.cluster) {
    const slot = slotOf(keyAt(0));
    let same = true;
    for (let i = 1; i < count && same; i++) same = slotOf(keyAt(i)) === slot;
    if (!same) {
      if (keys.shape === 'independent' || keys.shape === 'pairs') {
        const kept: Buffer[] = [];
        for (let i = 0; i < count; i++) {
          const at = keys.positions[i] as number;
          kept.push(args[at] as Buffer);
          if (keys.shape === 'pairs') kept.push(args[at + 1] as Buffer);
        }
        return splitBySlot(ctx, name, kept, keys.shape === 'pairs' ? 2 : 1, targetDb);
      }
      return refetchWritten(ctx, options, name, keys, pass, keyAt, dbAt);
    }
  }
  return [{ kind: 'write', args: out, db: targetDb, key: keyAt(0) }];
}

function upperArg(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toUpperCase();
}

function refetchWritten(
  ctx: WriteContext,
  options: LiveOptions,
  name: string,
  keys: CommandKeys,
  pass: readonly boolean[],
  keyAt: (i: number) => Buffer,
  dbAt: (i: number) => number,
): LiveAction[] {
  const out: LiveAction[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < keys.positions.length; i++) {
    if (!pass[i] || !keys.written[i]) continue;
    const id = `${dbAt(i)}:${keyAt(i).toString('latin1')}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ kind: 'refetch', sourceDb: dbAt(i), db: ctx.mapDb(dbAt(i)), key: keyAt(i) });
  }
  if (out.length > 0 && !options.canRefetch)
    return [
      {
        kind: 'warn',
        code: 'not-applied',
        message: `${name} touches keys the filter or the target's slots keep apart, and this source cannot be asked for the result: it was not applied`,
      },
    ];
  return out;
}

/** Splits an independent-key command (DEL, MSET...) by the target's slots. */
function splitBySlot(ctx: WriteContext, name: string, items: Buffer[], stride: number, db: number): LiveAction[] {
  if (!ctx.target.cluster) return [{ kind: 'write', args: [name, ...items], db, key: items[0] }];
  const groups = new Map<number, Buffer[]>();
  for (let i = 0; i < items.length; i += stride) {
    const slot = slotOf(items[i] as Buffer);
    let group = groups.get(slot);
    if (!group) {
      group = [];
      groups.set(slot, group);
    }
    for (let k = 0; k < stride; k++) group.push(items[i + k] as Buffer);
  }
  return [...groups.values()].map((group) => ({ kind: 'write' as const, args: [name, ...group], db, key: group[0] }));
}

function swapDb(ctx: WriteContext, args: readonly Buffer[]): LiveAction[] {
  const a = Number(args[0]?.toString('latin1'));
  const b = Number(args[1]?.toString('latin1'));
  const filter = ctx.filter;
  const keepA = filter.db(a);
  const keepB = filter.db(b);
  if (!keepA && !keepB) return [];
  if (keepA && keepB && !filter.byKey && !filter.byType && !ctx.target.cluster && !ctx.mergesDbs) {
    const ta = ctx.mapDb(a);
    const tb = ctx.mapDb(b);
    return ta === tb ? [] : [{ kind: 'write', args: ['SWAPDB', ta, tb], db: 0, key: undefined }];
  }
  return [
    {
      kind: 'warn',
      code: 'not-applied',
      message: `SWAPDB ${a} ${b} cannot be applied with this filter, database mapping or target: the two databases now differ from the source (run a new full sync)`,
    },
  ];
}
