import { compareRedis, type KeyDifference, ReplicationError } from '@redis-events/replication';
import { type Command, intOption } from '../command.ts';
import { CliError, ExitCode, usage } from '../errors.ts';
import { toJson } from '../json.ts';
import { redact } from '../redis-url.ts';
import { dbMapFrom, endpointFrom, FILTER_OPTIONS, filterFrom, TLS_OPTIONS } from './sync-options.ts';

function shownKey(key: Buffer): string {
  const j = toJson(key);
  return typeof j === 'string' ? (/[\s"]/.test(j) || j === '' ? JSON.stringify(j) : j) : JSON.stringify(j);
}

export const compareCommand: Command = {
  name: 'compare',
  args: '<source-url> <target-url>',
  summary: 'Compare two Redis (or Clusters) key by key: counts, types, values, TTLs; exit 1 when they differ.',
  options: {
    ...FILTER_OPTIONS,
    sample: {
      type: 'string',
      value: 'ratio',
      description: 'compare the values of this share of keys, 0 to 1 (default 1: all); types and TTLs of all',
    },
    'ttl-tolerance': {
      type: 'string',
      value: 'ms',
      default: '2000',
      description: 'largest accepted difference between two expiries',
    },
    rounds: {
      type: 'string',
      value: 'n',
      default: '1',
      description: 'check the keys that differ again, up to n rounds in all (for a target still being synced)',
    },
    'round-delay': { type: 'string', value: 'ms', default: '1000', description: 'time between two rounds' },
    'no-extra': { type: 'boolean', description: 'do not look for keys that exist on the target only' },
    max: { type: 'string', value: 'n', default: '1000', description: 'print at most n differences (all are counted)' },
    json: { type: 'boolean', description: 'differences, then the summary, as JSON lines' },
    ...TLS_OPTIONS,
  },
  details: `
Both directions: each key of the source that the filter keeps is looked up on the target
(missing, of another type, another value, an expiry further off than --ttl-tolerance), and
each key of the target on the source (extra). Large values are compared in pieces; a Cluster
on either side is scanned master by master. With the filter and --map-db of a sync, it
checks what that sync copies. During a live sync, --rounds 3 lets writes in flight arrive.

Output: one line per difference on stdout (kind, database, key, what differs), then a summary
on stderr. Exit 0 when equal, 1 when anything differs.

Examples:
  redis-events compare redis://old:6379 redis://new:6379
  redis-events compare redis://old:6379 redis://new:6379 --sample 0.05 --rounds 3 --json`,
  async run({ positionals, options, terminal, signal }) {
    const [sourceArg, targetArg, ...extra] = positionals;
    if (!sourceArg || !targetArg || extra.length > 0)
      throw usage('compare takes a source URL and a target URL (see redis-events compare --help)');
    let sample: number | undefined;
    if (typeof options.sample === 'string') {
      sample = Number(options.sample);
      if (!(sample >= 0 && sample <= 1)) throw usage(`--sample takes a ratio from 0 to 1, got "${options.sample}"`);
    }
    const filter = filterFrom(options);
    const dbMap = dbMapFrom(options);
    const json = options.json === true;
    const max = intOption(options.max, 'max', { min: 0 });
    let printed = 0;
    const print = async (d: KeyDifference) => {
      if (printed++ >= max) return;
      if (json) await terminal.line(JSON.stringify({ kind: d.kind, db: d.db, key: toJson(d.key), detail: d.detail }));
      else
        await terminal.line(
          `${terminal.style(d.kind === 'extra' ? 33 : 31, d.kind.padEnd(7))} ${terminal.style(2, `db${d.db}`)} ${shownKey(d.key)}  ${d.detail}`,
        );
    };
    const pending: Promise<void>[] = [];
    let report: Awaited<ReturnType<typeof compareRedis>>;
    try {
      report = await compareRedis({
        source: endpointFrom(sourceArg, options, 'source'),
        target: endpointFrom(targetArg, options, 'target'),
        ttlTolerance: intOption(options['ttl-tolerance'], 'ttl-tolerance'),
        rounds: intOption(options.rounds, 'rounds', { min: 1 }),
        roundDelay: intOption(options['round-delay'], 'round-delay'),
        extra: options['no-extra'] !== true,
        maxReported: 0,
        onDifference: (d) => pending.push(print(d)),
        signal,
        ...(sample !== undefined ? { sample } : {}),
        ...(filter ? { filter } : {}),
        ...(dbMap ? { dbMap } : {}),
      });
    } catch (err) {
      if (signal.aborted) return undefined;
      if (err instanceof ReplicationError) throw new CliError('ERR_CLI_FAILURE', err.message, { cause: err });
      throw err;
    }
    await Promise.all(pending);
    const total = Object.values(report.counts).reduce((a, b) => a + b, 0);
    const counts = Object.entries(report.counts)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
    const summary = {
      source: redact(sourceArg),
      target: redact(targetArg),
      sourceKeys: report.sourceKeys,
      targetKeys: report.targetKeys,
      valuesCompared: report.valuesCompared,
      rounds: report.rounds,
      differences: report.counts,
    };
    if (json) await terminal.line(JSON.stringify({ summary }));
    terminal.info(
      `${report.sourceKeys.toLocaleString('en')} keys on the source, ${report.targetKeys.toLocaleString('en')} on the target, ${report.valuesCompared.toLocaleString('en')} values compared: ${total === 0 ? terminal.styleErr(32, 'no differences') : terminal.styleErr(31, `${total} differences (${counts})`)}${printed > max ? `; ${max} printed` : ''}`,
    );
    return total === 0 ? ExitCode.ok : ExitCode.failure;
  },
};
