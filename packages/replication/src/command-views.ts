// Typed views of replicated write commands: a pure function from a command name and its
// arguments (as the master sent them) to a discriminated union. It never throws on bad
// arguments: a replica must not stop on a command it cannot read, so it gets a `malformed` view
// with the reason, and the raw arguments stay available on the command event.

/** An expiry carried by a command: relative (`EX`/`PX`, `EXPIRE`...) or absolute Unix time. */
export type ExpireSpec =
  | { readonly kind: 'relative'; readonly ms: number }
  | { readonly kind: 'absolute'; readonly atMs: number };

/** `NX` / `XX` / `GT` / `LT` conditions of the expire family. */
export type ExpireCondition = 'NX' | 'XX' | 'GT' | 'LT';

/** `SET`, `SETNX`, `SETEX`, `PSETEX`, `GETSET`. */
export interface SetView {
  readonly type: 'set';
  readonly name: string;
  readonly key: Buffer;
  readonly value: Buffer;
  readonly expire?: ExpireSpec | undefined;
  readonly keepTtl: boolean;
  readonly condition?: 'NX' | 'XX' | undefined;
  /** `SET ... IFEQ <value>` (Redis 8.4+): set only when the current value equals this. */
  readonly ifEqual?: Buffer | undefined;
  readonly get: boolean;
}

/** `MSET`, `MSETNX`. */
export interface MSetView {
  readonly type: 'mset';
  readonly name: string;
  readonly pairs: readonly (readonly [key: Buffer, value: Buffer])[];
  readonly onlyIfNoneExists: boolean;
}

/** `INCR`, `DECR`, `INCRBY`, `DECRBY`, `INCRBYFLOAT`: `by` is the signed amount added. */
export interface IncrView {
  readonly type: 'incr';
  readonly name: string;
  readonly key: Buffer;
  readonly by: number;
}

/** `APPEND`, `SETRANGE`, `GETDEL`, `GETEX`, `SETBIT`, `BITFIELD`, `BITOP`... a write to keys, not decoded further. */
export interface KeyWriteView {
  readonly type: 'key-write';
  readonly name: string;
  readonly keys: readonly Buffer[];
  readonly args: readonly Buffer[];
}

/** `DEL`, `UNLINK`. */
export interface DelView {
  readonly type: 'del';
  readonly name: string;
  readonly keys: readonly Buffer[];
}

/** `EXPIRE`, `PEXPIRE`, `EXPIREAT`, `PEXPIREAT`. */
export interface ExpireView {
  readonly type: 'expire';
  readonly name: string;
  readonly key: Buffer;
  readonly expire: ExpireSpec;
  readonly condition?: ExpireCondition | undefined;
}

/** `PERSIST`. */
export interface PersistView {
  readonly type: 'persist';
  readonly name: string;
  readonly key: Buffer;
}

/** `RENAME`, `RENAMENX`, `MOVE` (to another db), `COPY`. */
export interface RenameView {
  readonly type: 'rename';
  readonly name: string;
  readonly from: Buffer;
  readonly to: Buffer;
  /** RENAMENX, COPY without REPLACE: only when the target does not exist. */
  readonly onlyIfAbsent: boolean;
  /** MOVE's target database, COPY ... DB n. */
  readonly db?: number | undefined;
  /** COPY keeps the source. */
  readonly keepSource: boolean;
}

/** `RESTORE key ttl payload [REPLACE] [ABSTTL] ...`. */
export interface RestoreView {
  readonly type: 'restore';
  readonly name: string;
  readonly key: Buffer;
  /** 0 means no expiry. */
  readonly ttl: number;
  readonly absoluteTtl: boolean;
  readonly replace: boolean;
  /** The DUMP payload (an RDB-encoded value). */
  readonly payload: Buffer;
}

/** `HSET`, `HMSET`, `HSETNX`. */
export interface HSetView {
  readonly type: 'hset';
  readonly name: string;
  readonly key: Buffer;
  readonly fields: readonly (readonly [field: Buffer, value: Buffer])[];
  readonly onlyIfAbsent: boolean;
}

/** `HDEL`. */
export interface HDelView {
  readonly type: 'hdel';
  readonly name: string;
  readonly key: Buffer;
  readonly fields: readonly Buffer[];
}

/** `HINCRBY`, `HINCRBYFLOAT`. */
export interface HIncrView {
  readonly type: 'hincr';
  readonly name: string;
  readonly key: Buffer;
  readonly field: Buffer;
  readonly by: number;
}

/** `HEXPIRE`, `HPEXPIRE`, `HEXPIREAT`, `HPEXPIREAT`, `HPERSIST` (Redis 7.4+, Valkey 9). */
export interface HExpireView {
  readonly type: 'hexpire';
  readonly name: string;
  readonly key: Buffer;
  /** Absent for HPERSIST. */
  readonly expire?: ExpireSpec | undefined;
  readonly condition?: ExpireCondition | undefined;
  readonly fields: readonly Buffer[];
}

/** `LPUSH`, `RPUSH`, `LPUSHX`, `RPUSHX`. */
export interface ListPushView {
  readonly type: 'list-push';
  readonly name: string;
  readonly key: Buffer;
  readonly end: 'left' | 'right';
  readonly elements: readonly Buffer[];
  readonly onlyIfExists: boolean;
}

/** `LPOP`, `RPOP`. */
export interface ListPopView {
  readonly type: 'list-pop';
  readonly name: string;
  readonly key: Buffer;
  readonly end: 'left' | 'right';
  readonly count: number;
}

/** `LMOVE`, `RPOPLPUSH`, `BLMOVE`, `BRPOPLPUSH`. */
export interface ListMoveView {
  readonly type: 'list-move';
  readonly name: string;
  readonly from: Buffer;
  readonly to: Buffer;
  readonly fromEnd: 'left' | 'right';
  readonly toEnd: 'left' | 'right';
}

/** `SADD`, `SREM`. */
export interface SetMembersView {
  readonly type: 'set-add' | 'set-remove';
  readonly name: string;
  readonly key: Buffer;
  readonly members: readonly Buffer[];
}

/** `SMOVE`. */
export interface SMoveView {
  readonly type: 'set-move';
  readonly name: string;
  readonly from: Buffer;
  readonly to: Buffer;
  readonly member: Buffer;
}

/** `ZADD`. */
export interface ZAddView {
  readonly type: 'zadd';
  readonly name: string;
  readonly key: Buffer;
  readonly condition?: 'NX' | 'XX' | undefined;
  readonly compare?: 'GT' | 'LT' | undefined;
  readonly changed: boolean;
  readonly increment: boolean;
  readonly members: readonly { readonly score: number; readonly member: Buffer }[];
}

/** `ZREM`. */
export interface ZRemView {
  readonly type: 'zrem';
  readonly name: string;
  readonly key: Buffer;
  readonly members: readonly Buffer[];
}

/** `ZINCRBY`. */
export interface ZIncrByView {
  readonly type: 'zincrby';
  readonly name: string;
  readonly key: Buffer;
  readonly by: number;
  readonly member: Buffer;
}

/** `ZREMRANGEBYSCORE`, `ZREMRANGEBYRANK`, `ZREMRANGEBYLEX`, `LTRIM`, `LREM`, `LSET`, `LINSERT`... a ranged write kept as text bounds. */
export interface RangeWriteView {
  readonly type: 'range-write';
  readonly name: string;
  readonly key: Buffer;
  readonly args: readonly Buffer[];
}

/** `SINTERSTORE`, `SUNIONSTORE`, `SDIFFSTORE`, `ZUNIONSTORE`, `ZINTERSTORE`, `ZDIFFSTORE`, `ZRANGESTORE`, `GEOSEARCHSTORE`, `PFMERGE`... */
export interface StoreView {
  readonly type: 'store';
  readonly name: string;
  readonly destination: Buffer;
  readonly sources: readonly Buffer[];
  readonly args: readonly Buffer[];
}

/** `XADD`. */
export interface XAddView {
  readonly type: 'xadd';
  readonly name: string;
  readonly key: Buffer;
  /** The ID argument (`*`, `<ms>-*` or explicit; replicated XADDs carry the generated ID). */
  readonly id: string;
  readonly noMkStream: boolean;
  readonly trim?:
    | {
        readonly strategy: 'MAXLEN' | 'MINID';
        readonly approximate: boolean;
        readonly threshold: string;
        readonly limit?: number | undefined;
      }
    | undefined;
  readonly fields: readonly (readonly [field: Buffer, value: Buffer])[];
}

/** `XDEL`, `XACK`, `XACKDEL`, `XDELEX`. */
export interface XIdsView {
  readonly type: 'xdel' | 'xack';
  readonly name: string;
  readonly key: Buffer;
  readonly group?: Buffer | undefined;
  readonly ids: readonly string[];
}

/** `XTRIM`. */
export interface XTrimView {
  readonly type: 'xtrim';
  readonly name: string;
  readonly key: Buffer;
  readonly strategy: 'MAXLEN' | 'MINID';
  readonly approximate: boolean;
  readonly threshold: string;
}

/** `XGROUP CREATE|SETID|DESTROY|CREATECONSUMER|DELCONSUMER`, `XSETID`, `XCLAIM`, `XAUTOCLAIM`: stream group bookkeeping. */
export interface XGroupView {
  readonly type: 'xgroup';
  readonly name: string;
  /** `CREATE`, `SETID`... for XGROUP; the command name otherwise. */
  readonly action: string;
  readonly key: Buffer;
  readonly group?: Buffer | undefined;
  readonly args: readonly Buffer[];
}

/** `MULTI` and `EXEC`: the boundaries of a transaction replicated atomically. */
export interface TransactionView {
  readonly type: 'multi' | 'exec';
  readonly name: string;
}

/** `SELECT`: later commands apply to this database. */
export interface SelectView {
  readonly type: 'select';
  readonly name: string;
  readonly db: number;
}

/** `FLUSHDB`, `FLUSHALL`. */
export interface FlushView {
  readonly type: 'flush';
  readonly name: string;
  readonly scope: 'db' | 'all';
  readonly async: boolean;
}

/** `SWAPDB`. */
export interface SwapDbView {
  readonly type: 'swapdb';
  readonly name: string;
  readonly a: number;
  readonly b: number;
}

/** `EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `FCALL`, `FCALL_RO` (replicated as a whole when scripts are not effects-replicated). */
export interface ScriptCallView {
  readonly type: 'eval' | 'fcall';
  readonly name: string;
  /** The script body (EVAL), its SHA1 (EVALSHA), or the function name (FCALL). */
  readonly target: Buffer;
  readonly keys: readonly Buffer[];
  readonly args: readonly Buffer[];
}

/** `FUNCTION LOAD|DELETE|FLUSH|RESTORE`, `SCRIPT LOAD|FLUSH`. */
export interface ScriptAdminView {
  readonly type: 'function' | 'script';
  readonly name: string;
  readonly action: string;
  readonly args: readonly Buffer[];
}

/** `PUBLISH`, `SPUBLISH` (propagated to replicas). */
export interface PublishView {
  readonly type: 'publish';
  readonly name: string;
  readonly channel: Buffer;
  readonly message: Buffer;
  readonly sharded: boolean;
}

/** `PING` (the master's keep-alive) and `REPLCONF` (`GETACK`): replication plumbing, not data. */
export interface ControlView {
  readonly type: 'ping' | 'replconf';
  readonly name: string;
  readonly args: readonly Buffer[];
}

/** A command without a typed view: name and raw arguments. */
export interface OtherView {
  readonly type: 'other';
  readonly name: string;
  readonly args: readonly Buffer[];
}

/** A known command whose arguments do not fit its syntax. */
export interface MalformedView {
  readonly type: 'malformed';
  readonly name: string;
  readonly reason: string;
  readonly args: readonly Buffer[];
}

/** Every typed view. Narrow on `type`. */
export type CommandView =
  | SetView
  | MSetView
  | IncrView
  | KeyWriteView
  | DelView
  | ExpireView
  | PersistView
  | RenameView
  | RestoreView
  | HSetView
  | HDelView
  | HIncrView
  | HExpireView
  | ListPushView
  | ListPopView
  | ListMoveView
  | SetMembersView
  | SMoveView
  | ZAddView
  | ZRemView
  | ZIncrByView
  | RangeWriteView
  | StoreView
  | XAddView
  | XIdsView
  | XTrimView
  | XGroupView
  | TransactionView
  | SelectView
  | FlushView
  | SwapDbView
  | ScriptCallView
  | ScriptAdminView
  | PublishView
  | ControlView
  | OtherView
  | MalformedView;

class Malformed extends Error {}

function fail(reason: string): never {
  throw new Malformed(reason);
}

function text(b: Buffer): string {
  return b.toString('latin1');
}

function upper(b: Buffer | undefined): string {
  return b ? b.toString('latin1').toUpperCase() : '';
}

function int(b: Buffer | undefined, what: string): number {
  if (!b) fail(`${what} is missing`);
  const s = text(b);
  if (!/^[+-]?\d{1,19}$/.test(s)) fail(`${what} "${s.slice(0, 40)}" is not an integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) fail(`${what} ${s} is out of range`);
  return n;
}

function float(b: Buffer | undefined, what: string): number {
  if (!b) fail(`${what} is missing`);
  const s = text(b).toLowerCase();
  if (s === 'inf' || s === '+inf') return Number.POSITIVE_INFINITY;
  if (s === '-inf') return Number.NEGATIVE_INFINITY;
  const n = Number(s);
  if (s.trim() === '' || Number.isNaN(n)) fail(`${what} "${s.slice(0, 40)}" is not a number`);
  return n;
}

function need(args: readonly Buffer[], n: number, usage: string): void {
  if (args.length < n) fail(`needs at least ${n} arguments: ${usage}`);
}

function arg(args: readonly Buffer[], i: number): Buffer {
  const a = args[i];
  if (!a) fail(`argument ${i + 1} is missing`);
  return a;
}

function pairs(args: readonly Buffer[], from: number, what: string): [Buffer, Buffer][] {
  const rest = args.length - from;
  if (rest <= 0 || rest % 2 !== 0) fail(`needs ${what} in pairs`);
  const out: [Buffer, Buffer][] = [];
  for (let i = from; i < args.length; i += 2) out.push([args[i] as Buffer, args[i + 1] as Buffer]);
  return out;
}

function expireCondition(b: Buffer | undefined): ExpireCondition | undefined {
  const s = upper(b);
  if (!s) return undefined;
  if (s === 'NX' || s === 'XX' || s === 'GT' || s === 'LT') return s;
  fail(`unknown condition "${s}"`);
}

const LEFT_RIGHT: Record<string, 'left' | 'right'> = { LEFT: 'left', RIGHT: 'right' };

function parseSet(name: string, args: readonly Buffer[]): SetView {
  need(args, 2, 'SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL]');
  const view: { -readonly [K in keyof SetView]: SetView[K] } = {
    type: 'set',
    name,
    key: arg(args, 0),
    value: arg(args, 1),
    keepTtl: false,
    get: false,
  };
  for (let i = 2; i < args.length; i++) {
    const opt = upper(args[i]);
    switch (opt) {
      case 'NX':
      case 'XX':
        if (view.condition || view.ifEqual) fail('more than one of NX, XX, IFEQ');
        view.condition = opt;
        break;
      case 'GET':
        view.get = true;
        break;
      case 'KEEPTTL':
        view.keepTtl = true;
        break;
      case 'IFEQ':
        if (view.condition) fail('more than one of NX, XX, IFEQ');
        view.ifEqual = arg(args, ++i);
        break;
      case 'EX':
      case 'PX':
      case 'EXAT':
      case 'PXAT': {
        if (view.expire) fail('more than one expiry option');
        const n = int(args[++i], opt);
        const scale = opt === 'EX' || opt === 'EXAT' ? 1000 : 1;
        view.expire = opt.endsWith('AT') ? { kind: 'absolute', atMs: n * scale } : { kind: 'relative', ms: n * scale };
        break;
      }
      default:
        fail(`unknown SET option "${opt}"`);
    }
  }
  if (view.keepTtl && view.expire) fail('KEEPTTL with an expiry');
  return view;
}

function trimOptions(
  args: readonly Buffer[],
  i: number,
): {
  next: number;
  trim: { strategy: 'MAXLEN' | 'MINID'; approximate: boolean; threshold: string; limit?: number | undefined };
} {
  const strategy = upper(args[i]) as 'MAXLEN' | 'MINID';
  let j = i + 1;
  let approximate = false;
  const mod = text(arg(args, j));
  if (mod === '~' || mod === '=') {
    approximate = mod === '~';
    j++;
  }
  const threshold = text(arg(args, j));
  j++;
  let limit: number | undefined;
  if (upper(args[j]) === 'LIMIT') {
    limit = int(args[j + 1], 'LIMIT');
    j += 2;
  }
  return {
    next: j,
    trim: limit === undefined ? { strategy, approximate, threshold } : { strategy, approximate, threshold, limit },
  };
}

function parseXAdd(name: string, args: readonly Buffer[]): XAddView {
  need(args, 4, 'XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]] id field value ...');
  const key = arg(args, 0);
  let i = 1;
  let noMkStream = false;
  let trim: XAddView['trim'];
  for (;;) {
    const opt = upper(args[i]);
    if (opt === 'NOMKSTREAM') {
      noMkStream = true;
      i++;
    } else if (opt === 'MAXLEN' || opt === 'MINID') {
      const t = trimOptions(args, i);
      trim = t.trim;
      i = t.next;
    } else if (opt === 'IDMP') {
      i += 3; // IDMP producer iid (Redis 8.6)
    } else if (opt === 'IDMPAUTO') {
      i += 2;
    } else if (opt === 'KEEPREF' || opt === 'DELREF' || opt === 'ACKED') {
      i++; // Redis 8.2 reference policies
    } else break;
  }
  const id = text(arg(args, i));
  const fields = pairs(args, i + 1, 'field value');
  return trim
    ? { type: 'xadd', name, key, id, noMkStream, trim, fields }
    : { type: 'xadd', name, key, id, noMkStream, fields };
}

function scriptCall(type: 'eval' | 'fcall', name: string, args: readonly Buffer[]): ScriptCallView {
  need(args, 2, `${name} script|sha|function numkeys [key ...] [arg ...]`);
  const numkeys = int(args[1], 'numkeys');
  if (numkeys < 0 || numkeys > args.length - 2)
    fail(`numkeys ${numkeys} does not fit the ${args.length - 2} arguments`);
  return { type, name, target: arg(args, 0), keys: args.slice(2, 2 + numkeys), args: args.slice(2 + numkeys) };
}

function keysOf(name: string, args: readonly Buffer[]): Buffer[] {
  switch (name) {
    case 'MSET':
    case 'MSETNX':
      return args.filter((_, i) => i % 2 === 0);
    case 'BITOP':
      return args.slice(1);
    case 'PFMERGE':
      return args.slice();
    default:
      return args.length > 0 ? [args[0] as Buffer] : [];
  }
}

const KEY_WRITES = new Set([
  'APPEND',
  'SETRANGE',
  'GETDEL',
  'GETEX',
  'SETBIT',
  'BITFIELD',
  'BITOP',
  'PFADD',
  'PFMERGE',
  'GEOADD',
  'HGETDEL',
  'HGETEX',
  'HSETEX',
  'SPOP',
  'ZPOPMIN',
  'ZPOPMAX',
  'LMPOP',
  'ZMPOP',
  'SORT',
  'JSON.SET',
]);

const RANGE_WRITES = new Set([
  'ZREMRANGEBYSCORE',
  'ZREMRANGEBYRANK',
  'ZREMRANGEBYLEX',
  'LTRIM',
  'LREM',
  'LSET',
  'LINSERT',
]);

const STORES = new Set(['SINTERSTORE', 'SUNIONSTORE', 'SDIFFSTORE', 'ZRANGESTORE', 'GEOSEARCHSTORE']);
const NUMKEYS_STORES = new Set(['ZUNIONSTORE', 'ZINTERSTORE', 'ZDIFFSTORE']);

function view(name: string, args: readonly Buffer[]): CommandView {
  switch (name) {
    case 'SET':
      return parseSet(name, args);
    case 'SETNX':
      need(args, 2, 'SETNX key value');
      return { type: 'set', name, key: arg(args, 0), value: arg(args, 1), keepTtl: false, condition: 'NX', get: false };
    case 'SETEX':
    case 'PSETEX': {
      need(args, 3, `${name} key ttl value`);
      const ttl = int(args[1], 'ttl') * (name === 'SETEX' ? 1000 : 1);
      return {
        type: 'set',
        name,
        key: arg(args, 0),
        value: arg(args, 2),
        expire: { kind: 'relative', ms: ttl },
        keepTtl: false,
        get: false,
      };
    }
    case 'GETSET':
      need(args, 2, 'GETSET key value');
      return { type: 'set', name, key: arg(args, 0), value: arg(args, 1), keepTtl: false, get: true };
    case 'MSET':
    case 'MSETNX':
      return { type: 'mset', name, pairs: pairs(args, 0, 'key value'), onlyIfNoneExists: name === 'MSETNX' };
    case 'INCR':
    case 'DECR':
      need(args, 1, `${name} key`);
      return { type: 'incr', name, key: arg(args, 0), by: name === 'INCR' ? 1 : -1 };
    case 'INCRBY':
    case 'DECRBY': {
      need(args, 2, `${name} key amount`);
      const n = int(args[1], 'amount');
      return { type: 'incr', name, key: arg(args, 0), by: name === 'INCRBY' ? n : -n };
    }
    case 'INCRBYFLOAT':
      need(args, 2, 'INCRBYFLOAT key amount');
      return { type: 'incr', name, key: arg(args, 0), by: float(args[1], 'amount') };
    case 'DEL':
    case 'UNLINK':
      need(args, 1, `${name} key [key ...]`);
      return { type: 'del', name, keys: args.slice() };
    case 'EXPIRE':
    case 'PEXPIRE':
    case 'EXPIREAT':
    case 'PEXPIREAT': {
      need(args, 2, `${name} key time [NX|XX|GT|LT]`);
      if (args.length > 3) fail('too many arguments');
      const n = int(args[1], 'time');
      const scale = name.startsWith('P') ? 1 : 1000;
      const expire: ExpireSpec = name.endsWith('AT')
        ? { kind: 'absolute', atMs: n * scale }
        : { kind: 'relative', ms: n * scale };
      const condition = expireCondition(args[2]);
      return condition
        ? { type: 'expire', name, key: arg(args, 0), expire, condition }
        : { type: 'expire', name, key: arg(args, 0), expire };
    }
    case 'PERSIST':
      need(args, 1, 'PERSIST key');
      return { type: 'persist', name, key: arg(args, 0) };
    case 'RENAME':
    case 'RENAMENX':
      need(args, 2, `${name} key newkey`);
      return {
        type: 'rename',
        name,
        from: arg(args, 0),
        to: arg(args, 1),
        onlyIfAbsent: name === 'RENAMENX',
        keepSource: false,
      };
    case 'MOVE':
      need(args, 2, 'MOVE key db');
      return {
        type: 'rename',
        name,
        from: arg(args, 0),
        to: arg(args, 0),
        onlyIfAbsent: true,
        db: int(args[1], 'db'),
        keepSource: false,
      };
    case 'COPY': {
      need(args, 2, 'COPY source destination [DB db] [REPLACE]');
      let db: number | undefined;
      let replace = false;
      for (let i = 2; i < args.length; i++) {
        const opt = upper(args[i]);
        if (opt === 'REPLACE') replace = true;
        else if (opt === 'DB') db = int(args[++i], 'db');
        else fail(`unknown COPY option "${opt}"`);
      }
      const base = {
        type: 'rename' as const,
        name,
        from: arg(args, 0),
        to: arg(args, 1),
        onlyIfAbsent: !replace,
        keepSource: true,
      };
      return db === undefined ? base : { ...base, db };
    }
    case 'RESTORE': {
      need(args, 3, 'RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]');
      let replace = false;
      let absoluteTtl = false;
      for (let i = 3; i < args.length; i++) {
        const opt = upper(args[i]);
        if (opt === 'REPLACE') replace = true;
        else if (opt === 'ABSTTL') absoluteTtl = true;
        else if (opt === 'IDLETIME' || opt === 'FREQ') i++;
        else fail(`unknown RESTORE option "${opt}"`);
      }
      return {
        type: 'restore',
        name,
        key: arg(args, 0),
        ttl: int(args[1], 'ttl'),
        absoluteTtl,
        replace,
        payload: arg(args, 2),
      };
    }
    case 'HSET':
    case 'HMSET':
      need(args, 3, `${name} key field value [field value ...]`);
      return { type: 'hset', name, key: arg(args, 0), fields: pairs(args, 1, 'field value'), onlyIfAbsent: false };
    case 'HSETNX':
      need(args, 3, 'HSETNX key field value');
      if (args.length !== 3) fail('HSETNX takes exactly one field and value');
      return { type: 'hset', name, key: arg(args, 0), fields: pairs(args, 1, 'field value'), onlyIfAbsent: true };
    case 'HDEL':
      need(args, 2, 'HDEL key field [field ...]');
      return { type: 'hdel', name, key: arg(args, 0), fields: args.slice(1) };
    case 'HINCRBY':
    case 'HINCRBYFLOAT':
      need(args, 3, `${name} key field amount`);
      return {
        type: 'hincr',
        name,
        key: arg(args, 0),
        field: arg(args, 1),
        by: name === 'HINCRBY' ? int(args[2], 'amount') : float(args[2], 'amount'),
      };
    case 'HEXPIRE':
    case 'HPEXPIRE':
    case 'HEXPIREAT':
    case 'HPEXPIREAT':
    case 'HPERSIST': {
      const persist = name === 'HPERSIST';
      need(args, persist ? 3 : 4, `${name} key ${persist ? '' : 'time [NX|XX|GT|LT] '}FIELDS n field ...`);
      let i = 1;
      let expire: ExpireSpec | undefined;
      let condition: ExpireCondition | undefined;
      if (!persist) {
        const n = int(args[1], 'time');
        const scale = name.startsWith('HP') ? 1 : 1000;
        expire = name.endsWith('AT') ? { kind: 'absolute', atMs: n * scale } : { kind: 'relative', ms: n * scale };
        i = 2;
        if (upper(args[i]) !== 'FIELDS') condition = expireCondition(args[i++]);
      }
      if (upper(args[i]) !== 'FIELDS') fail('FIELDS is missing');
      const count = int(args[i + 1], 'numfields');
      const fields = args.slice(i + 2);
      if (count !== fields.length) fail(`numfields ${count} does not match the ${fields.length} fields given`);
      const base = { type: 'hexpire' as const, name, key: arg(args, 0), fields };
      return { ...base, ...(expire ? { expire } : {}), ...(condition ? { condition } : {}) };
    }
    case 'LPUSH':
    case 'RPUSH':
    case 'LPUSHX':
    case 'RPUSHX':
      need(args, 2, `${name} key element [element ...]`);
      return {
        type: 'list-push',
        name,
        key: arg(args, 0),
        end: name.startsWith('L') ? 'left' : 'right',
        elements: args.slice(1),
        onlyIfExists: name.endsWith('X'),
      };
    case 'LPOP':
    case 'RPOP':
      need(args, 1, `${name} key [count]`);
      return {
        type: 'list-pop',
        name,
        key: arg(args, 0),
        end: name === 'LPOP' ? 'left' : 'right',
        count: args[1] ? int(args[1], 'count') : 1,
      };
    case 'RPOPLPUSH':
    case 'BRPOPLPUSH':
      need(args, 2, `${name} source destination`);
      return { type: 'list-move', name, from: arg(args, 0), to: arg(args, 1), fromEnd: 'right', toEnd: 'left' };
    case 'LMOVE':
    case 'BLMOVE': {
      need(args, 4, `${name} source destination LEFT|RIGHT LEFT|RIGHT`);
      const fromEnd = LEFT_RIGHT[upper(args[2])];
      const toEnd = LEFT_RIGHT[upper(args[3])];
      if (!fromEnd || !toEnd) fail('ends must be LEFT or RIGHT');
      return { type: 'list-move', name, from: arg(args, 0), to: arg(args, 1), fromEnd, toEnd };
    }
    case 'SADD':
    case 'SREM':
      need(args, 2, `${name} key member [member ...]`);
      return { type: name === 'SADD' ? 'set-add' : 'set-remove', name, key: arg(args, 0), members: args.slice(1) };
    case 'SMOVE':
      need(args, 3, 'SMOVE source destination member');
      return { type: 'set-move', name, from: arg(args, 0), to: arg(args, 1), member: arg(args, 2) };
    case 'ZADD': {
      need(args, 3, 'ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member ...');
      let i = 1;
      let condition: 'NX' | 'XX' | undefined;
      let compare: 'GT' | 'LT' | undefined;
      let changed = false;
      let increment = false;
      for (;;) {
        const opt = upper(args[i]);
        if (opt === 'NX' || opt === 'XX') condition = opt;
        else if (opt === 'GT' || opt === 'LT') compare = opt;
        else if (opt === 'CH') changed = true;
        else if (opt === 'INCR') increment = true;
        else break;
        i++;
      }
      const members = pairs(args, i, 'score member').map(([score, member]) => ({
        score: float(score, 'score'),
        member,
      }));
      const base = { type: 'zadd' as const, name, key: arg(args, 0), changed, increment, members };
      return { ...base, ...(condition ? { condition } : {}), ...(compare ? { compare } : {}) };
    }
    case 'ZREM':
      need(args, 2, 'ZREM key member [member ...]');
      return { type: 'zrem', name, key: arg(args, 0), members: args.slice(1) };
    case 'ZINCRBY':
      need(args, 3, 'ZINCRBY key increment member');
      return { type: 'zincrby', name, key: arg(args, 0), by: float(args[1], 'increment'), member: arg(args, 2) };
    case 'XADD':
      return parseXAdd(name, args);
    case 'XDEL':
      need(args, 2, 'XDEL key id [id ...]');
      return { type: 'xdel', name, key: arg(args, 0), ids: args.slice(1).map(text) };
    case 'XACK':
      need(args, 3, 'XACK key group id [id ...]');
      return { type: 'xack', name, key: arg(args, 0), group: arg(args, 1), ids: args.slice(2).map(text) };
    case 'XTRIM': {
      need(args, 3, 'XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]');
      const strategy = upper(args[1]);
      if (strategy !== 'MAXLEN' && strategy !== 'MINID') fail('strategy must be MAXLEN or MINID');
      const { trim } = trimOptions(args, 1);
      return {
        type: 'xtrim',
        name,
        key: arg(args, 0),
        strategy: trim.strategy,
        approximate: trim.approximate,
        threshold: trim.threshold,
      };
    }
    case 'XGROUP': {
      need(args, 2, 'XGROUP subcommand key ...');
      const action = upper(args[0]);
      const rest = args.slice(1);
      return rest.length > 1
        ? { type: 'xgroup', name, action, key: arg(rest, 0), group: arg(rest, 1), args: rest.slice(2) }
        : { type: 'xgroup', name, action, key: arg(rest, 0), args: [] };
    }
    case 'XSETID':
      need(args, 2, 'XSETID key last-id');
      return { type: 'xgroup', name, action: name, key: arg(args, 0), args: args.slice(1) };
    case 'XCLAIM':
    case 'XAUTOCLAIM':
      need(args, 3, `${name} key group consumer ...`);
      return { type: 'xgroup', name, action: name, key: arg(args, 0), group: arg(args, 1), args: args.slice(2) };
    case 'MULTI':
      return { type: 'multi', name };
    case 'EXEC':
      return { type: 'exec', name };
    case 'SELECT':
      need(args, 1, 'SELECT db');
      return { type: 'select', name, db: int(args[0], 'db') };
    case 'FLUSHDB':
    case 'FLUSHALL': {
      const mode = upper(args[0]);
      if (mode && mode !== 'ASYNC' && mode !== 'SYNC') fail(`unknown flush mode "${mode}"`);
      return { type: 'flush', name, scope: name === 'FLUSHDB' ? 'db' : 'all', async: mode === 'ASYNC' };
    }
    case 'SWAPDB':
      need(args, 2, 'SWAPDB index1 index2');
      return { type: 'swapdb', name, a: int(args[0], 'index1'), b: int(args[1], 'index2') };
    case 'EVAL':
    case 'EVALSHA':
    case 'EVAL_RO':
    case 'EVALSHA_RO':
      return scriptCall('eval', name, args);
    case 'FCALL':
    case 'FCALL_RO':
      return scriptCall('fcall', name, args);
    case 'FUNCTION':
    case 'SCRIPT':
      need(args, 1, `${name} subcommand ...`);
      return { type: name === 'FUNCTION' ? 'function' : 'script', name, action: upper(args[0]), args: args.slice(1) };
    case 'PUBLISH':
    case 'SPUBLISH':
      need(args, 2, `${name} channel message`);
      return { type: 'publish', name, channel: arg(args, 0), message: arg(args, 1), sharded: name === 'SPUBLISH' };
    case 'PING':
      return { type: 'ping', name, args: args.slice() };
    case 'REPLCONF':
      return { type: 'replconf', name, args: args.slice() };
  }
  if (RANGE_WRITES.has(name)) {
    need(args, 1, `${name} key ...`);
    return { type: 'range-write', name, key: arg(args, 0), args: args.slice(1) };
  }
  if (STORES.has(name)) {
    need(args, 2, `${name} destination key ...`);
    return { type: 'store', name, destination: arg(args, 0), sources: args.slice(1), args: [] };
  }
  if (NUMKEYS_STORES.has(name)) {
    need(args, 3, `${name} destination numkeys key ...`);
    const n = int(args[1], 'numkeys');
    if (n < 1 || n > args.length - 2) fail(`numkeys ${n} does not fit the arguments`);
    return { type: 'store', name, destination: arg(args, 0), sources: args.slice(2, 2 + n), args: args.slice(2 + n) };
  }
  if (KEY_WRITES.has(name)) {
    need(args, 1, `${name} key ...`);
    return { type: 'key-write', name, keys: keysOf(name, args), args: args.slice() };
  }
  return { type: 'other', name, args: args.slice() };
}

/**
 * The typed view of one replicated command, from its name and arguments as the master sent
 * them (any case). Pure and total: it never throws; arguments that do not fit the command's
 * syntax give `{ type: 'malformed', reason }`, and commands without a view give `other`.
 *
 * @example
 * ```ts
 * const v = commandView('SET', [Buffer.from('k'), Buffer.from('v'), Buffer.from('PXAT'), Buffer.from('1700000000000')]);
 * if (v.type === 'set') console.log(v.key.toString(), v.expire); // k { kind: 'absolute', atMs: 1700000000000 }
 * ```
 */
export function commandView(name: string | Buffer, args: readonly Buffer[]): CommandView {
  const upperName = (typeof name === 'string' ? name : name.toString('latin1')).toUpperCase();
  try {
    return view(upperName, args);
  } catch (err) {
    if (err instanceof Malformed)
      return { type: 'malformed', name: upperName, reason: err.message, args: args.slice() };
    throw err;
  }
}
