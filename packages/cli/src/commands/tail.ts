import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { CommandEvent, CommandView, ReplicationCheckpoint } from '@redis-events/replication';
import { type Command, intOption } from '../command.ts';
import { CliError, stopName, usage } from '../errors.ts';
import { globMatcher } from '../glob.ts';
import { toJson } from '../json.ts';
import { connectionCause, connectTimeoutMs, probeRedis, redact, redisUrl, URL_OPTION } from '../redis-url.ts';
import { plural, throttle } from '../terminal.ts';
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
progress bar on stderr when stderr is a terminal (bytes of the announced size, else keys of the
server's key count, with the rate and the time left). Then every write is printed with its
database and its replication offset.

Until the first sync the command gives up at the first failure (refused, no answer within
--connect-timeout, wrong password, no PSYNC right) and exits 1; once following, it reconnects
after a lost connection, with a warning, and resumes where it was.

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
    const timeoutMs = connectTimeoutMs(options);

    const probe = await probeRedis(url, { timeoutMs, signal, keys: snapshot });
    const { ReplicaListener, ReplicationError } = await import('@redis-events/replication');
    const { exponentialBackoff } = await import('@redis-events/resp');
    // Until a sync is under way, a failure ends the command (exit 1); after, it is an outage to ride out.
    let synced = false;
    const backoff = exponentialBackoff({ initialDelay: 100, maxDelay: 5_000 });
    const listener = new ReplicaListener({
      url,
      name: 'redis-events-tail',
      discardRdb: !snapshot,
      signal,
      connectTimeout: timeoutMs,
      progressInterval: 200,
      reconnect: (attempt, cause) => (synced ? backoff(attempt, cause) : false),
      ...(saved ?? {}),
    });
    let writes = 0;
    let snapshotKeys = 0;
    let announced: number | undefined;
    // The bar is redrawn from the listener's own count, a few times a second, whatever the events do.
    const drawProgress = () => {
      const now = listener.progress;
      if (!now) return;
      const total = now.total ?? announced;
      if (total !== undefined || !snapshot || probe.keys === undefined) terminal.progress('snapshot', now.bytes, total);
      else terminal.progress('snapshot', snapshotKeys, probe.keys, { one: 'key', many: 'keys' });
    };
    let ticker: ReturnType<typeof setInterval> | undefined;
    const stopTicker = () => {
      if (ticker) clearInterval(ticker);
      ticker = undefined;
      terminal.endProgress();
    };
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
            synced = true;
            announced = event.size;
            terminal.info(
              terminal.styleErr(
                2,
                `full sync (${event.diskless ? 'diskless' : `${event.size ?? '?'} bytes`})${snapshot ? '' : ', skipping the snapshot'}`,
              ),
            );
            if (terminal.showsProgress && !ticker) ticker = setInterval(drawProgress, 200);
            break;
          case 'sync-progress':
            drawProgress();
            break;
          case 'snapshot-done':
            stopTicker();
            terminal.info(
              terminal.styleErr(
                2,
                `snapshot done${snapshot ? ` (${plural(snapshotKeys, 'key')})` : ''}; following writes`,
              ),
            );
            break;
          case 'continued':
            synced = true;
            terminal.info(terminal.styleErr(2, `resumed at offset ${event.offset} without a snapshot`));
            break;
          case 'reconnecting':
            terminal.warn(`connection lost (${event.error?.message ?? 'closed'}); reconnecting in ${event.delayMs} ms`);
            break;
          case 'entry': {
            if (!snapshot) break;
            if (event.part === 0) snapshotKeys++;
            if (db !== undefined && event.db !== db) break;
            if (matchKey && !matchKey(event.key)) break;
            await terminal.line(JSON.stringify(entryJson(event)));
            break;
          }
          case 'command': {
            if (!keep(event)) break;
            writes++;
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
      stopTicker();
      if (!signal.aborted) {
        if (err instanceof ReplicationError)
          throw new CliError('ERR_CLI_FAILURE', `${redact(url)}: ${connectionCause(err, timeoutMs)}`, { cause: err });
        throw err;
      }
    } finally {
      stopTicker();
      if (stateFile) saveState(stateFile, listener.checkpoint);
      await listener.close();
    }
    if (signal.aborted) {
      const at = listener.checkpoint;
      terminal.info(
        `tail stopped by ${stopName(signal.reason)}: ${plural(writes, 'write')} printed${at ? `, at offset ${at.replOffset}` : ''}${stateFile && at ? `; position saved to ${stateFile}` : ''}`,
      );
    }
    return undefined;
  },
};
