// Where the keys of a replicated write command are, and how they relate: what a sync needs to
// filter a command by key, route it to a Cluster slot, and split it when only some of its keys
// go to the target. Covers the write commands of Redis 7.0 to 8.6 and Valkey 8 and 9; a command
// not listed here gets `undefined` (the caller asks the target's COMMAND INFO).

/**
 * How a command's keys relate:
 * - `keyless`: no key (FLUSHALL, SWAPDB, FUNCTION LOAD, PUBLISH, MULTI...);
 * - `single`: one key;
 * - `independent`: each key on its own (DEL, UNLINK): the command splits into one per subset;
 * - `pairs`: key-value pairs (MSET): splits by pairs;
 * - `linked`: keys that depend on each other (RENAME, SUNIONSTORE, SMOVE): it cannot be split,
 *   `written` says which of them it changes.
 */
export type KeyShape = 'keyless' | 'single' | 'independent' | 'pairs' | 'linked';

/** The keys of one command. */
export interface CommandKeys {
  readonly shape: KeyShape;
  /** Positions of the keys in the arguments (after the name). */
  readonly positions: readonly number[];
  /** For each key: whether the command changes it. */
  readonly written: readonly boolean[];
  /**
   * For each key: the database it lives in when not the command's own (MOVE's target, COPY ...
   * DB n), else undefined.
   */
  readonly dbs?: readonly (number | undefined)[] | undefined;
}

const KEYLESS: CommandKeys = { shape: 'keyless', positions: [], written: [] };
const FIRST: CommandKeys = { shape: 'single', positions: [0], written: [true] };

const SINGLE = new Set(
  `SET SETNX SETEX PSETEX GETSET GETDEL GETEX APPEND SETRANGE INCR DECR INCRBY DECRBY INCRBYFLOAT SETBIT BITFIELD
   DELEX DELIFEQ EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST RESTORE RESTORE-ASKING
   LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LINSERT LSET LREM LTRIM
   SADD SREM SPOP
   ZADD ZINCRBY ZREM ZREMRANGEBYSCORE ZREMRANGEBYRANK ZREMRANGEBYLEX ZPOPMIN ZPOPMAX
   HSET HSETNX HMSET HDEL HINCRBY HINCRBYFLOAT HEXPIRE HPEXPIRE HEXPIREAT HPEXPIREAT HPERSIST HGETDEL HGETEX HSETEX
   PFADD GEOADD
   XADD XDEL XTRIM XSETID XACK XCLAIM XAUTOCLAIM XACKDEL XDELEX XCFGSET`
    .split(/\s+/)
    .filter(Boolean),
);

const KEYLESS_NAMES = new Set(
  'FLUSHALL FLUSHDB SWAPDB SELECT PING REPLCONF MULTI EXEC DISCARD FUNCTION SCRIPT PUBLISH SPUBLISH WAIT WAITAOF'.split(
    ' ',
  ),
);

const INDEPENDENT = new Set(['DEL', 'UNLINK', 'TOUCH', 'EXISTS']);

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}

function int(arg: Buffer | undefined): number | undefined {
  if (arg === undefined) return undefined;
  const s = arg.toString('latin1');
  return /^\d{1,9}$/.test(s) ? Number(s) : undefined;
}

function upper(arg: Buffer | undefined): string {
  return arg === undefined ? '' : arg.toString('latin1').toUpperCase();
}

/** The destination written by the first key, the others only read. */
function storeShape(positions: number[]): CommandKeys {
  return { shape: 'linked', positions, written: positions.map((_, i) => i === 0) };
}

function linkedAllWritten(positions: number[]): CommandKeys {
  return { shape: 'linked', positions, written: positions.map(() => true) };
}

/** `STORE dst` / `STOREDIST dst` of SORT and GEORADIUS: the source, then the destination. */
function withStore(args: readonly Buffer[], from: number): CommandKeys | undefined {
  for (let i = args.length - 2; i >= from; i--) {
    const word = upper(args[i]);
    if (word === 'STORE' || word === 'STOREDIST')
      return { shape: 'linked', positions: [0, i + 1], written: [false, true] };
  }
  return undefined;
}

/**
 * The keys of a write command as it appears in a replication stream or an AOF, or undefined
 * for a command this table does not know (a module's, or a newer server's). Malformed
 * arguments give what can be read (a sync forwards the command and the target answers the error).
 *
 * @example
 * ```ts
 * commandKeys('RENAME', [Buffer.from('a'), Buffer.from('b')]); // { shape: 'linked', positions: [0, 1], written: [true, true] }
 * ```
 */
export function commandKeys(name: string, args: readonly Buffer[]): CommandKeys | undefined {
  const n = args.length;
  if (SINGLE.has(name)) return n >= 1 ? FIRST : KEYLESS;
  if (KEYLESS_NAMES.has(name)) return KEYLESS;
  if (INDEPENDENT.has(name)) return { shape: 'independent', positions: range(0, n - 1), written: args.map(() => true) };
  switch (name) {
    case 'MSET':
    case 'MSETNX': {
      const positions: number[] = [];
      for (let i = 0; i + 1 < n; i += 2) positions.push(i);
      return { shape: 'pairs', positions, written: positions.map(() => true) };
    }
    case 'MSETEX': {
      const count = int(args[0]) ?? 0;
      const positions: number[] = [];
      for (let i = 0; i < count && 1 + 2 * i < n; i++) positions.push(1 + 2 * i);
      return linkedAllWritten(positions);
    }
    case 'RENAME':
    case 'RENAMENX':
    case 'SMOVE':
    case 'LMOVE':
    case 'BLMOVE':
    case 'RPOPLPUSH':
    case 'BRPOPLPUSH':
      return n >= 2 ? linkedAllWritten([0, 1]) : KEYLESS;
    case 'COPY': {
      if (n < 2) return KEYLESS;
      let db: number | undefined;
      for (let i = 2; i < n; i++) if (upper(args[i]) === 'DB') db = int(args[++i]);
      return { shape: 'linked', positions: [0, 1], written: [false, true], dbs: [undefined, db] };
    }
    case 'MOVE': {
      if (n < 2) return KEYLESS;
      return { shape: 'linked', positions: [0, 0], written: [true, true], dbs: [undefined, int(args[1])] };
    }
    case 'SINTERSTORE':
    case 'SUNIONSTORE':
    case 'SDIFFSTORE':
    case 'PFMERGE':
      return n >= 1 ? storeShape(range(0, n - 1)) : KEYLESS;
    case 'ZUNIONSTORE':
    case 'ZINTERSTORE':
    case 'ZDIFFSTORE': {
      const count = int(args[1]) ?? 0;
      return n >= 1 ? storeShape([0, ...range(2, Math.min(n - 1, 1 + count))]) : KEYLESS;
    }
    case 'ZRANGESTORE':
    case 'GEOSEARCHSTORE':
      return n >= 2 ? storeShape([0, 1]) : KEYLESS;
    case 'BITOP':
      return n >= 2 ? storeShape(range(1, n - 1)) : KEYLESS;
    case 'SORT':
      return withStore(args, 1) ?? (n >= 1 ? { shape: 'single', positions: [0], written: [false] } : KEYLESS);
    case 'GEORADIUS':
    case 'GEORADIUSBYMEMBER':
      return withStore(args, 1) ?? (n >= 1 ? { shape: 'single', positions: [0], written: [false] } : KEYLESS);
    case 'LMPOP':
    case 'ZMPOP':
      return linkedAllWritten(range(1, Math.min(n - 1, int(args[0]) ?? 0)));
    case 'BLMPOP':
    case 'BZMPOP':
      return linkedAllWritten(range(2, Math.min(n - 1, 1 + (int(args[1]) ?? 0))));
    case 'BLPOP':
    case 'BRPOP':
    case 'BZPOPMIN':
    case 'BZPOPMAX':
      return linkedAllWritten(range(0, n - 2));
    case 'EVAL':
    case 'EVALSHA':
    case 'EVAL_RO':
    case 'EVALSHA_RO':
    case 'FCALL':
    case 'FCALL_RO':
      return linkedAllWritten(range(2, Math.min(n - 1, 1 + (int(args[1]) ?? 0))));
    case 'XGROUP':
      return n >= 2 && upper(args[0]) !== 'HELP' ? { shape: 'single', positions: [1], written: [true] } : KEYLESS;
    default:
      return undefined;
  }
}

/**
 * Keys from a legacy key specification (`COMMAND INFO`: first key, last key, step; positions
 * count the name as 0). A negative last key counts from the end.
 */
export function legacyKeys(first: number, last: number, step: number, args: readonly Buffer[]): CommandKeys {
  if (first <= 0 || step <= 0) return KEYLESS;
  const lastIndex = last < 0 ? args.length + last : last - 1;
  const positions: number[] = [];
  for (let i = first - 1; i <= lastIndex && i < args.length; i += step) positions.push(i);
  if (positions.length === 0) return KEYLESS;
  if (positions.length === 1) return { shape: 'single', positions, written: [true] };
  return linkedAllWritten(positions);
}
