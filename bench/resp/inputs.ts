// The prebuilt inputs of the RESP decoder benchmark, shared by every parser: the same bytes, cut
// into the same chunks (subarray views) before anything is timed.

/** A workload: the bytes, how many top-level replies they hold, and a check of the last reply. */
export interface Workload {
  readonly name: string;
  readonly bytes: Buffer;
  readonly replies: number;
  /** Throws unless `last` is the last reply of this workload, in the given mode. */
  readonly check: (last: unknown, mode: Mode) => void;
}

export type Mode = 'string' | 'buffer';
export type Chunking = 'whole' | '64 KiB' | '1 KiB';

export const CHUNKINGS: readonly Chunking[] = ['whole', '64 KiB', '1 KiB'];

function fail(what: string, got: unknown): never {
  throw new Error(`wrong last reply for ${what}: ${String(got).slice(0, 80)}`);
}

function text(value: unknown): string {
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
}

/** 1M small replies: `:12345` and `+OK` alternating (integers and status replies). */
function smallReplies(): Workload {
  const pair = Buffer.from(':12345\r\n+OK\r\n');
  const count = 1_000_000;
  const bytes = Buffer.alloc((pair.length * count) / 2);
  for (let i = 0; i < count / 2; i++) pair.copy(bytes, i * pair.length);
  return {
    name: '1M small replies (:12345 and +OK)',
    bytes,
    replies: count,
    check: (last) => {
      if (text(last) !== 'OK') fail('small replies', last);
    },
  };
}

/** 10k arrays of 100 bulk strings of 10 bytes each, all different. */
function arrays(): Workload {
  const count = 10_000;
  const parts: Buffer[] = [];
  let n = 0;
  for (let i = 0; i < count; i++) {
    let s = '*100\r\n';
    for (let j = 0; j < 100; j++) s += `$10\r\nv:${(n++).toString(36).padStart(8, '0')}\r\n`;
    parts.push(Buffer.from(s, 'latin1'));
  }
  const last = `v:${(n - 1).toString(36).padStart(8, '0')}`;
  return {
    name: '10k arrays of 100 bulk strings (10 B)',
    bytes: Buffer.concat(parts),
    replies: count,
    check: (reply) => {
      if (!Array.isArray(reply) || reply.length !== 100 || text(reply[99]) !== last) fail('arrays', reply);
    },
  };
}

/** One bulk string of 64 MiB. */
function bulk(): Workload {
  const size = 64 * 1024 * 1024;
  const header = Buffer.from(`$${size}\r\n`);
  const bytes = Buffer.allocUnsafe(header.length + size + 2);
  header.copy(bytes, 0);
  // Printable ASCII with a pattern, so that the string mode decodes real text.
  for (let i = 0; i < size; i++) bytes[header.length + i] = 97 + (i % 26);
  bytes[header.length + size] = 13;
  bytes[header.length + size + 1] = 10;
  return {
    name: 'one 64 MiB bulk string',
    bytes,
    replies: 1,
    check: (reply) => {
      const length = Buffer.isBuffer(reply) ? reply.length : typeof reply === 'string' ? reply.length : -1;
      if (length !== size) fail('bulk', reply);
      const lastByte = Buffer.isBuffer(reply) ? reply[size - 1] : (reply as string).charCodeAt(size - 1);
      if (lastByte !== 97 + ((size - 1) % 26)) fail('bulk', 'wrong content');
    },
  };
}

export const NESTED_DEPTH = 500;

/** 200 replies, each an array nested 500 deep: `*2 $5 level *2 $5 level ... :7`. */
function nested(): Workload {
  let reply = ':7\r\n';
  for (let i = 0; i < NESTED_DEPTH; i++) reply = `*2\r\n$5\r\nlevel\r\n${reply}`;
  const count = 200;
  return {
    name: `200 replies nested ${NESTED_DEPTH} deep`,
    bytes: Buffer.from(reply.repeat(count), 'latin1'),
    replies: count,
    check: (last) => {
      let node: unknown = last;
      for (let i = 0; i < NESTED_DEPTH; i++) {
        if (!Array.isArray(node) || text(node[0]) !== 'level') fail('nested', node);
        node = node[1];
      }
      if (node !== 7) fail('nested', node);
    },
  };
}

/** The workloads by short label, built lazily (the 64 MiB one is large). */
export const WORKLOADS: Record<string, () => Workload> = {
  '1M small replies': smallReplies,
  '10k arrays × 100': arrays,
  '64 MiB bulk': bulk,
  [`200 × nested ${NESTED_DEPTH} deep`]: nested,
};

/** Views of `bytes` in chunks of the given size, cut before timing. */
export function chunks(bytes: Buffer, chunking: Chunking): Buffer[] {
  if (chunking === 'whole') return [bytes];
  const size = chunking === '64 KiB' ? 64 * 1024 : 1024;
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, Math.min(i + size, bytes.length)));
  return out;
}
