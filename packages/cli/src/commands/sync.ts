import { open, stat } from 'node:fs/promises';
import {
  RedisSync,
  type RedisSyncOptions,
  ReplicationError,
  type SyncProgress,
  type SyncSourceSpec,
} from '@redis-events/replication';
import { type Command, choiceOption } from '../command.ts';
import { CliError, usage } from '../errors.ts';
import { redact } from '../redis-url.ts';
import { formatBytes } from '../terminal.ts';
import { dbMapFrom, endpointFrom, FILTER_OPTIONS, filterFrom, isUrl, TLS_OPTIONS } from './sync-options.ts';

/** A path given as the source: AOF (a folder, a manifest, a *.aof) or RDB (a *.rdb, or REDIS bytes). */
async function fileSource(path: string, forced: 'rdb' | 'aof' | undefined): Promise<SyncSourceSpec> {
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(path);
  } catch (err) {
    throw new CliError('ERR_CLI_FAILURE', `cannot read the source ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (forced) return forced === 'rdb' ? { rdb: path } : { aof: path };
  if (info.isDirectory() || /\.(aof|manifest)$/.test(path)) return { aof: path };
  if (/\.rdb$/.test(path)) return { rdb: path };
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(5);
    await handle.read(head, 0, 5, 0);
    // An RDB starts with REDIS or VALKEY; so does a legacy AOF with an RDB preamble: say --aof for those.
    return /^(REDIS|VALKE)/.test(head.toString('latin1')) ? { rdb: path } : { aof: path };
  } finally {
    await handle.close();
  }
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One status line: the snapshot's bytes and keys, then the live lag. */
export function statusLine(p: SyncProgress): string {
  if (p.phase === 'snapshot' || p.phase === 'connecting') {
    const of = p.snapshot.total ? ` of ${formatBytes(p.snapshot.total)}` : '';
    const pct = p.snapshot.total ? ` ${Math.min(100, Math.floor((100 * p.snapshot.bytes) / p.snapshot.total))}%` : '';
    return `snapshot${pct}: ${formatBytes(p.snapshot.bytes)}${of}, ${p.snapshot.keys.toLocaleString('en')} keys written`;
  }
  return `live: ${p.live.commands.toLocaleString('en')} commands applied, lag ${formatBytes(p.live.lagBytes)} / ${seconds(p.live.lagMs)}${p.warnings ? `, ${p.warnings} warnings` : ''}`;
}

export const syncCommand: Command = {
  name: 'sync',
  args: '<source> <target>',
  summary: 'Copy a Redis (or a Cluster, an RDB file, AOF files) into another Redis or Cluster, then keep it in step.',
  options: {
    ...FILTER_OPTIONS,
    existing: {
      type: 'string',
      value: 'policy',
      default: 'replace',
      description: 'a snapshot key already on the target: replace, skip or fail',
    },
    'state-file': {
      type: 'string',
      value: 'path',
      description: 'save the position there; the next run resumes from it without a new snapshot',
    },
    once: { type: 'boolean', description: 'stop (exit 0) once the target has caught up, instead of following' },
    publish: { type: 'boolean', description: 'forward PUBLISH and SPUBLISH too' },
    'no-functions': { type: 'boolean', description: 'do not copy functions and scripts' },
    errors: {
      type: 'string',
      value: 'policy',
      default: 'warn',
      description: 'a live command the target refuses: warn (go on) or fail',
    },
    until: { type: 'string', value: 'time', description: 'AOF source: stop at this time (ISO 8601, or Unix seconds)' },
    aof: { type: 'boolean', description: 'the source path is AOF (a legacy appendonly.aof with an RDB preamble)' },
    rdb: { type: 'boolean', description: 'the source path is an RDB file' },
    json: { type: 'boolean', description: 'progress as JSON lines on stdout, every second' },
    ...TLS_OPTIONS,
  },
  details: `
The source is a Redis URL (a master, or any node of a Cluster: every master is followed), an
RDB file, or AOF files (a Redis 7 appendonlydir, its manifest, or one appendonly.aof). The
target is a Redis URL (standalone or any node of a Cluster). Users and passwords go in the
URLs (redis://user:password@host:port); rediss:// uses TLS (see --tls-ca).

First the snapshot (keys restored with payloads every target version reads; large keys in
pieces), then every write as it happens. A terminal shows the snapshot's bytes and keys, then
the lag behind the source. Ctrl-C stops cleanly: the writes in flight are awaited and, with
--state-file, the position is saved; the next run resumes from there with PSYNC, without a
new snapshot, as long as the source's backlog (repl-backlog-size) still holds the writes made
in between. A file source ends when it is applied (exit 0).

A live source needs replication rights: an ACL user with +psync +replconf +ping, and +dump
+pexpiretime +role +multi +exec +select +info for commands that must be read again.

Examples:
  redis-events sync redis://old:6379 redis://new:6379 --state-file sync.json
  redis-events sync redis://old:6379 redis://cluster-node:7000 --prefix user: --map-db 1:0
  redis-events sync /var/lib/redis/appendonlydir redis://new:6379 --until 2026-01-31T12:00:00Z
  redis-events sync dump.rdb redis://new:6379 --existing skip`,
  async run({ positionals, options, terminal, signal, env }) {
    const [sourceArg, targetArg, ...extra] = positionals;
    if (!sourceArg || !targetArg || extra.length > 0)
      throw usage('sync takes a source and a target (see redis-events sync --help)');
    void env;
    const existing = choiceOption(options.existing, 'existing', ['replace', 'skip', 'fail'] as const);
    const errors = choiceOption(options.errors, 'errors', ['warn', 'fail'] as const);
    if (options.aof && options.rdb) throw usage('--aof and --rdb exclude each other');
    const source: SyncSourceSpec = isUrl(sourceArg)
      ? endpointFrom(sourceArg, options, 'source')
      : await fileSource(sourceArg, options.aof ? 'aof' : options.rdb ? 'rdb' : undefined);
    const target = endpointFrom(targetArg, options, 'target');
    let untilTimestamp: number | undefined;
    if (typeof options.until === 'string') {
      const t = /^\d+$/.test(options.until) ? Number(options.until) * 1000 : Date.parse(options.until);
      if (!Number.isFinite(t)) throw usage(`--until takes an ISO 8601 time or Unix seconds, got "${options.until}"`);
      untilTimestamp = Math.floor(t / 1000);
    }
    const filter = filterFrom(options);
    const dbMap = dbMapFrom(options);
    const stateFile = typeof options['state-file'] === 'string' ? options['state-file'] : undefined;
    const syncOptions: RedisSyncOptions = {
      source,
      target,
      existing,
      errors,
      publish: options.publish === true,
      functions: options['no-functions'] !== true,
      signal,
      ...(filter ? { filter } : {}),
      ...(dbMap ? { dbMap } : {}),
      ...(stateFile ? { stateFile } : {}),
      ...(untilTimestamp !== undefined ? { aof: { untilTimestamp } } : {}),
      replica: { name: 'redis-events-sync' },
    };
    const sync = new RedisSync(syncOptions);
    const label = (x: string) => (isUrl(x) ? redact(x) : x);
    let live = false;
    sync.on('phase', (phase) => {
      if (phase === 'live') live = true;
      else if (phase === 'snapshot') live = false;
      if (phase === 'snapshot')
        terminal.info(terminal.styleErr(2, `${label(sourceArg)} → ${label(targetArg)}: copying the snapshot`));
      else if (phase === 'live') {
        const p = sync.stats;
        terminal.info(
          terminal.styleErr(
            2,
            p.partialSyncs > 0 && p.fullSyncs === 0
              ? 'resumed from the saved position without a new snapshot; following writes'
              : `snapshot done: ${p.snapshot.keys.toLocaleString('en')} keys${p.snapshot.skipped ? ` (${p.snapshot.skipped} kept as they were)` : ''}; following writes`,
          ),
        );
      }
    });
    sync.on('warning', (w) => terminal.warn(w.message));
    sync.on('topology', (e) => terminal.info(terminal.styleErr(2, `source cluster: ${e.kind} ${e.shard.master}`)));
    sync.on('progress', (p) => {
      if (options.json === true) void terminal.line(JSON.stringify({ progress: p }));
      else terminal.liveStatus(statusLine(p));
    });
    const running = sync.run();
    let stopping: Promise<void> | undefined;
    if (options.once === true) {
      sync
        .caughtUp({ timeoutMs: 24 * 3600_000, signal })
        .then(() => {
          stopping = sync.close();
          return stopping;
        })
        .catch(() => {});
    }
    try {
      const result = await running;
      await stopping?.catch(() => {});
      terminal.clearProgress();
      const s = result.snapshot;
      terminal.info(
        `${result.phase === 'done' ? 'applied' : 'stopped'}: ${s.keys.toLocaleString('en')} snapshot keys, ${result.live.commands.toLocaleString('en')} commands${result.warnings ? `, ${result.warnings} warnings` : ''}${stateFile ? `; position saved in ${stateFile}` : ''}`,
      );
      return undefined;
    } catch (err) {
      terminal.clearProgress();
      if (signal.aborted) {
        terminal.info(
          !stateFile
            ? 'stopped (no --state-file: the next run starts with a new snapshot)'
            : live
              ? `stopped; position saved in ${stateFile}: run the same command again to resume`
              : `stopped in the snapshot (${sync.stats.snapshot.keys.toLocaleString('en')} keys copied); ${stateFile} saved: the next run takes a new snapshot, replacing the keys copied so far`,
        );
        return undefined;
      }
      if (err instanceof ReplicationError) throw new CliError('ERR_CLI_FAILURE', err.message, { cause: err });
      throw err;
    }
  },
};
