// The event model of the whole package. The offline parser produces the RDB events; the live
// listener produces all of these, in this order: lifecycle `connected`, `full-sync-start`, the
// RDB events, `snapshot-done`, then `command` events (or `continued` instead of a full sync on
// resume), with `reconnecting` and a new `connected` after a dropped link.

import type { CommandView } from './command-views.ts';
import type { ReplicationError } from './errors.ts';
import type { RdbEvent } from './rdb-events.ts';

/**
 * One command of the master's replication stream. `offset` is the master replication offset
 * just after this command; `ReplicaListener.checkpoint` pairs it with the replication ID and the
 * database, to resume from.
 *
 * @example
 * ```ts
 * function onCommand(event: CommandEvent): void {
 *   const view = event.view;
 *   if (view.type === 'del') for (const key of view.keys) console.log('db', event.db, 'deleted', key.toString());
 * }
 * ```
 */
export interface CommandEvent {
  readonly kind: 'command';
  /** The database the command applies to (from the last `SELECT` in the stream). */
  readonly db: number;
  /** The command name in upper case (`SET`, `HSET`, `MULTI`...). */
  readonly name: string;
  /** The arguments after the name, as the master sent them. */
  readonly args: readonly Buffer[];
  /** Master replication offset after this command (bytes of the stream, PINGs included). */
  readonly offset: number;
  /** Bytes this command took in the stream. */
  readonly size: number;
  /** Inside a replicated `MULTI` ... `EXEC`. */
  readonly inTransaction: boolean;
  /** The typed view of the command, computed on first access. */
  readonly view: CommandView;
}

/** The connection to the master is up and authenticated. */
export interface ConnectedEvent {
  readonly kind: 'connected';
  readonly host: string;
  readonly port: number;
}

/** `+FULLRESYNC`: a snapshot follows. */
export interface FullSyncStartEvent {
  readonly kind: 'full-sync-start';
  readonly replId: string;
  readonly offset: number;
  /** RDB bytes announced (`$<len>`); undefined for diskless transfers (`$EOF:`). */
  readonly size?: number | undefined;
  readonly diskless: boolean;
}

/** Periodic progress of the snapshot transfer. */
export interface SyncProgressEvent {
  readonly kind: 'sync-progress';
  readonly bytes: number;
  readonly total?: number | undefined;
}

/** The snapshot has been parsed entirely; commands follow. */
export interface SnapshotDoneEvent {
  readonly kind: 'snapshot-done';
  readonly replId: string;
  /** The replication offset the snapshot stands for; the first command comes right after it. */
  readonly offset: number;
  /** The database the command stream starts in (the snapshot's `repl-stream-db`, else 0). */
  readonly db: number;
}

/** `+CONTINUE`: a partial resynchronization, no snapshot; `replId` changes after a failover. */
export interface ContinuedEvent {
  readonly kind: 'continued';
  readonly replId: string;
  readonly offset: number;
}

/** The connection dropped; the listener waits `delayMs` and resumes from `offset`. */
export interface ReconnectingEvent {
  readonly kind: 'reconnecting';
  readonly attempt: number;
  readonly delayMs: number;
  readonly replId: string;
  readonly offset: number;
  readonly error?: ReplicationError | undefined;
}

/** Connection and synchronization milestones. */
export type LifecycleEvent =
  | ConnectedEvent
  | FullSyncStartEvent
  | SyncProgressEvent
  | SnapshotDoneEvent
  | ContinuedEvent
  | ReconnectingEvent;

/**
 * Everything a replica listener emits: snapshot (RDB) events, commands, and lifecycle.
 *
 * @example
 * ```ts
 * function describe(event: ReplicationEvent): string {
 *   return event.kind === 'command' ? `${event.name} @${event.offset}` : event.kind;
 * }
 * ```
 */
export type ReplicationEvent = RdbEvent | CommandEvent | LifecycleEvent;
