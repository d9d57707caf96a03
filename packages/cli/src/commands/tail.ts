import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import {
  type CommandEvent,
  type CommandView,
  ReplicaListener,
  type ReplicationCheckpoint,
  ReplicationError,
} from '@redis-events/replication';
import { type Command, intOption } from '../command.ts';
import { CliError, usage } from '../errors.ts';
import { globMatcher } from '../glob.ts';
import { toJson } from '../json.ts';
import { redact, redisUrl, URL_OPTION } from '../redis-url.ts';
import { throttle } from '../terminal.ts';
import { entryJson } from './rdb.ts';

/** The keys a replicated command writes, from its typed view (first argument when unknown). */
export function viewKeys(view: CommandView): Buffer[] {
  const v = view as Partial<Record<string, unknown>> & CommandView;
  if (v.type === 'ping' || v.type === 'replconf' || v.type === 'select' || v.type === 'flush' || v.type === 'swapdb')
    return [];
  if (v.type === 'publish') return [];
  if (v.type === 'multi' || v.type === 'exec') return [];
  const keys: Buffer[] = [];
  if (Buffer.isBuffer(v.key)) keys.push(v.key);
  if (Array.isArray(v.keys)) keys.push(...(v.keys as Buffer[]));
  if (Array.isArray(v.pairs)) keys.push(...(v.pairs as [Buffer, Buffer][]).map(([k]) => k));
  if (Buffer.isBuffer(v.destination)) keys.push(v.destination);
  if (Array.isArray(v.sources)) keys.push(...(v.sources as Buffer[]));
  if (keys.length === 0 && (v.type === 'other' || v.type === 'malformed') && v.args[0]) keys.push(v.args[0]);
  return keys;
}

function loadState(file: string): ReplicationCheckpoint | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const state = JSON.parse(readFileSync(file, 'utf8')) as ReplicationCheckpoint;
    if (typeof state.replId !== 'string' || typeof state.replOffset !== 'number') throw new Error('not a checkpoint');
    return state;
  } catch (err) {
    throw new CliError(
      'ERR_CLI_FAILURE',
      `--state-file ${file} is not a checkpoint written by tail: ${(err as Error).message}; remove it to start over`,
    );
  }
}

function saveState(file: string, checkpoint: ReplicationCheckpoint | undefined): void {
  if (!checkpoint) return;
  // Written aside then renamed, so that a crash never leaves half a file.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(checkpoint)}\n`);
  renameSync(`${file}.tmp`, file);
}

export const tailCommand: Command = {
  name: 'tail',
  args: '[url]',
  summary: "Follow a Redis's writes as they happen, by listening to it as a replica (@redis-events/replication).",
  options: {
    ...URL_OPTION,
    snapshot: { type: 'boolean', description: 'print the keys of the initial snapshot (RDB) first, then the writes' },
    db: { type: 'string', value: 'n', description: 'only this database' },
    key: { type: 'string', value: 'glob', description: 'only writes to keys matching this glob' },
    command: { type: 'string', value: 'names', description: 'only these commands, comma-separated (set,del,xadd)' },
    'state-file': { type: 'string', value: 'path', description: 'resume from this checkpoint and keep it up to date' },
    pretty: { type: 'boolean', description: 'one readable line per write instead of JSON' },
    all: { type: 'boolean', description: "also SELECT and the master's own PING and REPLCONF" },
  },
  details: `
The Redis sees an ordinary replica (it needs the PSYNC and REPLCONF commands, and, for a user
with ACLs, +psync +replconf). It sends its snapshot first: skipped unless --snapshot, with a
progress bar on stderr (bytes of total) when stderr is a terminal. Then every write is printed
with its database and its replication offset.

With --state-file, the position is saved every second and on exit; the next run resumes from
it without a new snapshot while the master's backlog still holds it (repl-backlog-size).

JSON lines: {"db":0,"command":"SET","args":["user:1","Ada"],"offset":1234}
            with --snapshot also {"db":0,"key":"k","type":"hash","value":{...}} for each key

Examples:
  redis-events tail redis://127.0.0.1:6379 --pretty
  redis-events tail --key 'user:*' --command hset,del --state-file tail.json`,
  async run({ positionals, options, terminal, signal, env }) {
    const [urlArg, ...extra] = positionals;
    if (extra.length > 0) throw usage('tail takes at most one URL (see redis-events tail --help)');
    const url = urlArg ?? redisUrl(options, env);
    redisUrl({ url }, env); // validates the URL
    const db = options.db === undefined ? undefined : intOption(options.db, 'db');
    const matchKey = typeof options.key === 'string' ? globMatcher(options.key) : undefined;
    const commands =
      typeof options.command === 'string'
        ? new Set(options.command.split(',').map((c) => c.trim().toUpperCase()))
        : undefined;
    const stateFile = typeof options['state-file'] === 'string' ? options['state-file'] : undefined;
    const saved = stateFile ? loadState(stateFile) : undefined;
    const snapshot = options.snapshot === true;
    const pretty = options.pretty === true;

    const listener = new ReplicaListener({
      url,
      name: 'redis-events-tail',
      discardRdb: !snapshot,
      signal,
      ...(saved ?? {}),
    });
    const progress = throttle(100, (bytes: number, total: number | undefined) =>
      terminal.progress('snapshot', bytes, total),
    );
    const save = stateFile ? throttle(1_000, () => saveState(stateFile, listener.checkpoint)) : undefined;

    const keep = (event: CommandEvent): boolean => {
      // Each line carries its database, so SELECT is noise; PING and REPLCONF are the master's own.
      if (!options.all && (event.name === 'PING' || event.name === 'REPLCONF' || event.name === 'SELECT')) return false;
      if (db !== undefined && event.db !== db) return false;
      if (commands && !commands.has(event.name)) return false;
      if (matchKey && !viewKeys(event.view).some((k) => matchKey(k))) return false;
      return true;
    };

    try {
      for await (const event of listener) {
        if (terminal.closed) break;
        switch (event.kind) {
          case 'connected':
            terminal.info(
              terminal.styleErr(
                2,
                `connected to ${redact(url)}${saved ? `, resuming at offset ${saved.replOffset}` : ''}`,
              ),
            );
            break;
          case 'full-sync-start':
            terminal.info(
              terminal.styleErr(2, `full sync (${event.diskless ? 'diskless' : `${event.size ?? '?'} bytes`})`),
            );
            break;
          case 'sync-progress':
            progress(event.bytes, event.total);
            break;
          case 'snapshot-done':
            progress.flush();
            terminal.clearProgress();
            terminal.info(terminal.styleErr(2, 'snapshot done; following writes'));
            break;
          case 'continued':
            terminal.info(terminal.styleErr(2, `resumed at offset ${event.offset} without a snapshot`));
            break;
          case 'reconnecting':
            terminal.warn(`connection lost (${event.error?.message ?? 'closed'}); reconnecting in ${event.delayMs} ms`);
            break;
          case 'entry': {
            if (!snapshot) break;
            if (db !== undefined && event.db !== db) break;
            if (matchKey && !matchKey(event.key)) break;
            await terminal.line(JSON.stringify(entryJson(event)));
            break;
          }
          case 'command': {
            if (!keep(event)) break;
            if (pretty) {
              const args = event.args.map((a) => {
                const j = toJson(a);
                return typeof j === 'string'
                  ? /[\s"]/.test(j) || j === ''
                    ? JSON.stringify(j)
                    : j
                  : JSON.stringify(j);
              });
              await terminal.line(
                `${terminal.style(2, `db${event.db}`)} ${terminal.style(36, event.name)} ${args.join(' ')}`,
              );
            } else {
              await terminal.line(
                JSON.stringify({
                  db: event.db,
                  command: event.name,
                  args: event.args.map(toJson),
                  offset: event.offset,
                }),
              );
            }
            break;
          }
          default:
            break;
        }
        save?.();
      }
    } catch (err) {
      terminal.clearProgress();
      if (!signal.aborted) {
        if (err instanceof ReplicationError)
          throw new CliError('ERR_CLI_FAILURE', `${redact(url)}: ${err.message}`, { cause: err });
        throw err;
      }
    } finally {
      if (stateFile) saveState(stateFile, listener.checkpoint);
      await listener.close();
    }
    return undefined;
  },
};
