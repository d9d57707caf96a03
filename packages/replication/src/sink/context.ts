// What the snapshot and live writers of a sync share: the target, the filter, the database
// mapping and the policies, and one way to send a command that the sync tracks (replies,
// checkpoints, errors).

import type { KeyFilter } from './filter.ts';
import type { SyncTarget, TargetArg, TargetNode } from './target.ts';

/** What to do with a snapshot key that already exists on the target. */
export type ExistingKeyPolicy = 'replace' | 'skip' | 'fail';

/** A reply handler; returning normally means the reply (or error) was handled. */
export type ReplyHandler = (error: Error | undefined, reply: unknown) => void;

/** How the writers talk to the target, through the sync's bookkeeping. */
export interface WriteContext {
  readonly target: SyncTarget;
  readonly filter: KeyFilter;
  /** The target database of a source database (already checked to be kept by the filter). */
  mapDb(db: number): number;
  /** True when the mapping sends two source databases to one target database. */
  readonly mergesDbs: boolean;
  /**
   * Sends a command: `key` routes it on a Cluster (undefined: any node, or `node`). Without
   * `onReply`, an error reply is handled by the sync's error policy for the current phase.
   */
  send(args: TargetArg[], db: number, key: Buffer | undefined, onReply?: ReplyHandler, node?: TargetNode): void;
  /** A problem that does not stop the sync: counted, logged and emitted as a `warning`. */
  warn(code: string, message: string): void;
  /** Target version at least major.minor. */
  targetAtLeast(major: number, minor: number): boolean;
}

/**
 * The memory a command in flight holds, for the pipeline's budget: its bytes, plus what each
 * argument costs as a JavaScript object (a Buffer is about 100 bytes before its contents).
 */
export function commandBytes(args: readonly TargetArg[]): number {
  let n = 64;
  for (const a of args) n += (typeof a === 'string' ? a.length : typeof a === 'number' ? 12 : a.length) + 100;
  return n;
}

/** A score as Redis reads it back exactly: shortest round-trip text, `inf`, `-inf`, `-0`. */
export function scoreText(score: number): string {
  if (score === Number.POSITIVE_INFINITY) return 'inf';
  if (score === Number.NEGATIVE_INFINITY) return '-inf';
  if (Object.is(score, -0)) return '-0';
  return String(score);
}
