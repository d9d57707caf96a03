// The manifest of a Redis 7 multi-part AOF (`appendonly.aof.manifest` in `appendonlydir`): one
// line per file, `file <name> seq <n> type <b|h|i>`, split like redis-cli arguments (quotes and
// escapes allowed), `#` comments, keys in any case, unknown key-value pairs ignored so that newer
// servers can add some. The rules below are the ones Redis applies when it loads a manifest.

import { ReplicationError } from '../errors.ts';

/** One file named by a manifest. */
export interface AofManifestFile {
  /** The file name, relative to the manifest's folder. */
  readonly name: string;
  readonly seq: number;
  /** `base` (the snapshot the increments apply to), `incr` (commands), `history` (left by a rewrite, not loaded). */
  readonly type: 'base' | 'incr' | 'history';
}

/**
 * A parsed manifest: the base file (if any) and the increment files in load order. History files
 * are listed apart: Redis never loads them.
 *
 * @example
 * ```ts
 * const manifest = parseAofManifest(readFileSync('appendonlydir/appendonly.aof.manifest'));
 * console.log(manifest.base?.name, manifest.incr.map((f) => f.name));
 * ```
 */
export interface AofManifest {
  readonly base?: AofManifestFile | undefined;
  readonly incr: readonly AofManifestFile[];
  readonly history: readonly AofManifestFile[];
}

const MAX_LINE = 1024;

function invalid(message: string): ReplicationError {
  return new ReplicationError('ERR_AOF_MANIFEST', message);
}

/**
 * Splits a line into arguments the way Redis does for manifests (`sdssplitargs`): spaces
 * separate, `"..."` allows `\n \r \t \b \a \\ \" \xHH` escapes, `'...'` allows `\'`. Returns
 * undefined for unbalanced quotes.
 */
export function splitManifestArgs(line: string): string[] | undefined {
  const out: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    while (i < n && /\s/.test(line[i] as string)) i++;
    if (i >= n) return out;
    let current = '';
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = line[i];
      if (inDouble) {
        if (c === undefined) return undefined;
        if (c === '\\' && line[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(line.slice(i + 2, i + 4))) {
          current += String.fromCharCode(Number.parseInt(line.slice(i + 2, i + 4), 16));
          i += 3;
        } else if (c === '\\' && i + 1 < n) {
          const e = line[++i] as string;
          current += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e === 'b' ? '\b' : e === 'a' ? '\x07' : e;
        } else if (c === '"') {
          // The closing quote must be followed by a space or the end.
          if (i + 1 < n && !/\s/.test(line[i + 1] as string)) return undefined;
          done = true;
        } else current += c;
      } else if (inSingle) {
        if (c === undefined) return undefined;
        if (c === '\\' && line[i + 1] === "'") {
          current += "'";
          i++;
        } else if (c === "'") {
          if (i + 1 < n && !/\s/.test(line[i + 1] as string)) return undefined;
          done = true;
        } else current += c;
      } else if (c === undefined || /\s/.test(c)) done = true;
      else if (c === '"') inDouble = true;
      else if (c === "'") inSingle = true;
      else current += c;
      if (i < n) i++;
    }
    out.push(current);
  }
}

/**
 * Parses the text of an AOF manifest with the rules Redis loads it by: each line at most 1024
 * bytes, `#` comments, `file`, `seq` (> 0) and `type` (`b`, `h` or `i`) required, a file name
 * that is not a path, at most one base, increment sequence numbers strictly increasing, and at
 * least one base or increment.
 *
 * @example
 * ```ts
 * const manifest = parseAofManifest('file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n');
 * ```
 * @throws {ReplicationError} `ERR_AOF_MANIFEST` naming the line and what is wrong with it.
 */
export function parseAofManifest(text: string | Buffer): AofManifest {
  const content = typeof text === 'string' ? text : text.toString('latin1');
  let base: AofManifestFile | undefined;
  const incr: AofManifestFile[] = [];
  const history: AofManifestFile[] = [];
  const lines = content.split('\n');
  // A final newline leaves one empty piece; anything else must be a line of its own.
  if (lines[lines.length - 1] === '') lines.pop();
  let lastIncr = 0;
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index] as string;
    const where = `line ${index + 1} of the AOF manifest`;
    if (raw.length + 1 > MAX_LINE) throw invalid(`${where} is longer than ${MAX_LINE} bytes`);
    if (raw.startsWith('#')) continue;
    const line = raw.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
    if (line === '') throw invalid(`${where} is empty (Redis refuses empty lines in a manifest)`);
    const args = splitManifestArgs(line);
    if (!args) throw invalid(`${where} has unbalanced quotes: ${JSON.stringify(line.slice(0, 80))}`);
    if (args.length < 6 || args.length % 2 !== 0)
      throw invalid(`${where} is not "file <name> seq <n> type <b|h|i>": ${JSON.stringify(line.slice(0, 80))}`);
    let name: string | undefined;
    let seq: number | undefined;
    let type: string | undefined;
    for (let i = 0; i < args.length; i += 2) {
      const key = (args[i] as string).toLowerCase();
      const value = args[i + 1] as string;
      if (key === 'file') {
        if (value.includes('/') || value.includes('\\'))
          throw invalid(`${where} names ${JSON.stringify(value)}: a file name, not a path, is expected`);
        name = value;
      } else if (key === 'seq') {
        if (!/^\d{1,15}$/.test(value)) throw invalid(`${where} has seq ${JSON.stringify(value)}, not a number`);
        seq = Number(value);
      } else if (key === 'type') type = value;
      // Other keys: ignored, as Redis does, for forward compatibility.
    }
    if (name === undefined || name === '' || !seq || type === undefined)
      throw invalid(`${where} lacks one of file, seq (above 0) and type: ${JSON.stringify(line.slice(0, 80))}`);
    switch (type) {
      case 'b':
        if (base) throw invalid(`${where} names a second base file (${name}; the first is ${base.name})`);
        base = { name, seq, type: 'base' };
        break;
      case 'h':
        history.push({ name, seq, type: 'history' });
        break;
      case 'i':
        if (seq <= lastIncr)
          throw invalid(`${where}: increment seq ${seq} does not follow ${lastIncr} (they must increase)`);
        lastIncr = seq;
        incr.push({ name, seq, type: 'incr' });
        break;
      default:
        throw invalid(`${where} has type ${JSON.stringify(type)}; expected b, h or i`);
    }
  }
  if (!base && incr.length === 0) throw invalid('the AOF manifest names no base and no increment file');
  return base ? { base, incr, history } : { incr, history };
}
