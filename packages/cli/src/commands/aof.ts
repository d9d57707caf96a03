import { type AofEvent, type CommandEvent, describeAof, ReplicationError, readAof } from '@redis-events/replication';
import { type Command, intOption } from '../command.ts';
import { CliError, usage } from '../errors.ts';
import { globMatcher } from '../glob.ts';
import { toJson } from '../json.ts';
import { formatBytes } from '../terminal.ts';
import { entryJson } from './rdb.ts';
import { viewKeys } from './tail.ts';

function word(a: Buffer): string {
  const j = toJson(a);
  return typeof j === 'string' ? (/[\s"]/.test(j) || j === '' ? JSON.stringify(j) : j) : JSON.stringify(j);
}

export const aofCommand: Command = {
  name: 'aof',
  args: '<path>',
  summary:
    'Read AOF files (a Redis 7 appendonlydir, its manifest, or one appendonly.aof): every command as a JSON line.',
  options: {
    pretty: { type: 'boolean', description: 'one readable line per command instead of JSON' },
    base: { type: 'boolean', description: 'also print the keys of an RDB base or preamble (as redis-events rdb does)' },
    files: { type: 'boolean', description: 'list the files of the AOF (type, sequence, size) and stop' },
    db: { type: 'string', value: 'n', description: 'only this database' },
    key: { type: 'string', value: 'glob', description: 'only commands writing keys matching this glob' },
    command: { type: 'string', value: 'names', description: 'only these commands, comma-separated (set,del,xadd)' },
    all: { type: 'boolean', description: 'also SELECT (each line carries its database anyway)' },
    until: {
      type: 'string',
      value: 'time',
      description: 'stop at this time (ISO 8601, or Unix seconds; needs aof-timestamp-enabled)',
    },
    strict: { type: 'boolean', description: 'fail on a partial command at the end instead of dropping it' },
  },
  details: `
A Redis 7 AOF is a folder with a manifest naming a base (an RDB, or commands) and increment
files; older servers write one appendonly.aof, often starting with an RDB preamble. Files are
streamed: memory stays flat whatever their size. A partial command at the end of the last file
(a crash mid-write) is dropped with a warning, as Redis does with aof-load-truncated; a MULTI
never closed by EXEC at the end is dropped too.

JSON lines: {"file":"appendonly.aof.2.incr.aof","db":0,"command":"SET","args":["k","v"],"offset":1234}
            with --base also {"db":0,"key":"k","type":"hash","value":{...}} for each base key
"offset" is the byte offset in that file just after the command.

Examples:
  redis-events aof /var/lib/redis/appendonlydir --pretty
  redis-events aof appendonly.aof --key 'user:*' --command hset,del
  redis-events aof /var/lib/redis/appendonlydir --files`,
  async run({ positionals, options, terminal, signal }) {
    const [path, ...extra] = positionals;
    if (!path || extra.length > 0) throw usage('aof takes one path (see redis-events aof --help)');
    try {
      if (options.files === true) {
        const layout = await describeAof(path);
        if (layout.manifestPath) terminal.info(terminal.styleErr(2, `manifest ${layout.manifestPath}`));
        const { stat } = await import('node:fs/promises');
        for (const f of layout.files)
          await terminal.line(
            `${f.type.padEnd(6)} ${f.seq === undefined ? '' : `seq ${f.seq}  `}${f.name}  ${formatBytes((await stat(f.path)).size)}`,
          );
        return undefined;
      }
      const db = options.db === undefined ? undefined : intOption(options.db, 'db');
      const matchKey = typeof options.key === 'string' ? globMatcher(options.key) : undefined;
      const commands =
        typeof options.command === 'string'
          ? new Set(options.command.split(',').map((c) => c.trim().toUpperCase()))
          : undefined;
      let untilTimestamp: number | undefined;
      if (typeof options.until === 'string') {
        const t = /^\d+$/.test(options.until) ? Number(options.until) * 1000 : Date.parse(options.until);
        if (!Number.isFinite(t)) throw usage(`--until takes an ISO 8601 time or Unix seconds, got "${options.until}"`);
        untilTimestamp = Math.floor(t / 1000);
      }
      const keep = (event: CommandEvent): boolean => {
        if (!options.all && event.name === 'SELECT') return false;
        if (db !== undefined && event.db !== db) return false;
        if (commands && !commands.has(event.name)) return false;
        if (matchKey && !viewKeys(event.view).some((k) => matchKey(k))) return false;
        return true;
      };
      let file = '';
      const events: AsyncIterable<AofEvent> = readAof(path, {
        signal,
        truncated: options.strict === true ? 'error' : 'allow-last',
        ...(untilTimestamp !== undefined ? { untilTimestamp } : {}),
      });
      for await (const event of events) {
        if (terminal.closed) break;
        switch (event.kind) {
          case 'aof-file':
            file = event.name;
            terminal.info(terminal.styleErr(2, `${event.type} file ${event.name} (${formatBytes(event.size)})`));
            break;
          case 'entry':
            if (options.base !== true) break;
            if (db !== undefined && event.db !== db) break;
            if (matchKey && !matchKey(event.key)) break;
            await terminal.line(JSON.stringify(entryJson(event)));
            break;
          case 'command':
            if (!keep(event)) break;
            if (options.pretty === true)
              await terminal.line(
                [terminal.style(2, `db${event.db}`), terminal.style(36, event.name), ...event.args.map(word)].join(' '),
              );
            else
              await terminal.line(
                JSON.stringify({
                  file,
                  db: event.db,
                  command: event.name,
                  args: event.args.map(toJson),
                  offset: event.offset,
                }),
              );
            break;
          case 'aof-end':
            if (event.truncatedBytes > 0)
              terminal.warn(
                `the last file ends with ${event.truncatedBytes} bytes of an incomplete command: dropped (as Redis does)`,
              );
            if (event.discardedCommands > 0)
              terminal.warn(
                `a MULTI at the end was never closed: its ${event.discardedCommands} commands were dropped (as Redis does)`,
              );
            if (event.stoppedAt !== undefined)
              terminal.info(`stopped at ${new Date(event.stoppedAt * 1000).toISOString()} (--until)`);
            terminal.info(
              terminal.styleErr(2, `${event.files} files, ${event.commands.toLocaleString('en')} commands`),
            );
            break;
          default:
            break;
        }
      }
    } catch (err) {
      if (signal.aborted) return undefined;
      if (err instanceof ReplicationError)
        throw new CliError('ERR_CLI_FAILURE', `${path}: ${err.message}`, { cause: err });
      throw err;
    }
    return undefined;
  },
};
