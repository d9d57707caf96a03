// The saved position of a sync: for each source shard (one for a standalone master), the
// replication ID and offset of the last command the target acknowledged, so a restart resumes
// with PSYNC instead of a new full sync; for an AOF source, the file and offset. Kept in a JSON
// file, replaced atomically (written aside, flushed, renamed), or in a store of yours.

import { readFile, rename, writeFile } from 'node:fs/promises';
import { ReplicationError } from '../errors.ts';

/** One shard's acknowledged position. */
export interface SyncShardState {
  /** `host:port` of the master it was read from. */
  readonly master: string;
  readonly nodeId?: string | undefined;
  /** The slots it served (Cluster sources). */
  readonly ranges?: readonly (readonly [number, number])[] | undefined;
  readonly replId: string;
  /** The offset of the last byte whose commands the target has applied. */
  readonly replOffset: number;
  readonly db: number;
}

/**
 * What a sync saves to resume: which source, target and filter it belongs to, whether a full
 * sync was ever started (later ones replace keys whatever the policy, since the target then
 * holds the sync's own writes), and each shard's position.
 *
 * @example
 * ```ts
 * const state: SyncState = JSON.parse(readFileSync('sync-state.json', 'utf8'));
 * console.log(state.shards.map((s) => `${s.master} @ ${s.replOffset}`));
 * ```
 */
export interface SyncState {
  readonly format: 'redis-events-sync/1';
  readonly source: string;
  readonly target: string;
  readonly filter: string;
  /** A first full sync was started into this target. */
  readonly started: boolean;
  readonly shards: readonly SyncShardState[];
  /** AOF sources: the file and byte offset after the last applied command. */
  readonly aof?: { readonly file: string; readonly offset: number } | undefined;
  readonly savedAt: string;
}

/**
 * Where a sync keeps its {@link SyncState}: `stateFile` is a file store; give your own to keep it
 * elsewhere (a database, a Redis key of another server).
 *
 * @example
 * ```ts
 * const store: SyncStateStore = {
 *   load: async () => (await redis.get('sync-state').then((t) => (t ? JSON.parse(t) : undefined))),
 *   save: async (state) => void (await redis.set('sync-state', JSON.stringify(state))),
 * };
 * ```
 */
export interface SyncStateStore {
  load(): Promise<SyncState | undefined>;
  save(state: SyncState): Promise<void>;
}

/** A {@link SyncStateStore} in a JSON file, replaced atomically on each save. */
export function fileStateStore(path: string): SyncStateStore {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new ReplicationError('ERR_SYNC_STATE', `cannot read the state file ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
      return parseState(text, path);
    },
    async save(state) {
      const temp = `${path}.tmp`;
      try {
        await writeFile(temp, `${JSON.stringify(state, null, 2)}\n`, { flush: true });
        await rename(temp, path);
      } catch (err) {
        throw new ReplicationError('ERR_SYNC_STATE', `cannot write the state file ${path}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
  };
}

/** Parses and checks a saved state. */
export function parseState(text: string, where: string): SyncState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ReplicationError(
      'ERR_SYNC_STATE',
      `${where} is not JSON (${(err as Error).message}); remove it to start over`,
      {
        cause: err,
      },
    );
  }
  const v = value as Partial<SyncState>;
  const bad = (what: string) =>
    new ReplicationError('ERR_SYNC_STATE', `${where} is not a sync state (${what}); remove it to start over`);
  if (typeof v !== 'object' || v === null || v.format !== 'redis-events-sync/1')
    throw bad('no format redis-events-sync/1');
  if (typeof v.source !== 'string' || typeof v.target !== 'string' || typeof v.filter !== 'string')
    throw bad('no source, target or filter');
  if (!Array.isArray(v.shards)) throw bad('no shards');
  for (const s of v.shards) {
    if (
      typeof s?.master !== 'string' ||
      typeof s.replId !== 'string' ||
      !/^[^\s]{40}$/.test(s.replId) ||
      !Number.isSafeInteger(s.replOffset) ||
      s.replOffset < 0 ||
      !Number.isSafeInteger(s.db)
    )
      throw bad('a shard without a valid replId, replOffset and db');
  }
  return v as SyncState;
}
