// Redis 8 stream features, found by asking the server (COMMAND INFO / COMMAND DOCS) rather than
// by version number, so that Valkey, managed services and back-ports answer for themselves.
// A feature the server later rejects is switched off at runtime and the 7.0 way is used.
import { type RedisClient, withTimeout } from './client.ts';

/** Which optional server features a topic or subscription uses. */
export interface ServerFeatures {
  /** `XREADGROUP ... CLAIM min-idle-time` (Redis 8.4+): idle entries of dead consumers come with new ones. */
  readonly readClaim: boolean;
  /** `XNACK` (Redis 8.8+): hand entries back to the group without waiting for their idle time. */
  readonly xnack: boolean;
  /** `XACKDEL ... ACKED` (Redis 8.2+): acknowledge and delete entries every group is done with. */
  readonly xackdel: boolean;
}

/** What a Redis 7.0 server offers: none of the optional features. */
export const NO_FEATURES: ServerFeatures = Object.freeze({ readClaim: false, xnack: false, xackdel: false });

const MAX_DEPTH = 12;

/** True when `reply` holds the exact string `token` anywhere, looking no deeper than a few levels. */
export function mentionsToken(reply: unknown, token: string): boolean {
  const stack: [unknown, number][] = [[reply, 0]];
  let budget = 100_000;
  while (stack.length > 0 && budget-- > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (typeof value === 'string') {
      if (value === token) return true;
    } else if (Buffer.isBuffer(value)) {
      if (value.length === token.length && value.toString() === token) return true;
    } else if (depth < MAX_DEPTH && value !== null && typeof value === 'object') {
      const items = Array.isArray(value)
        ? value
        : value instanceof Map
          ? [...value.entries()].flat()
          : Object.entries(value).flat();
      for (const item of items) stack.push([item, depth + 1]);
    }
  }
  return false;
}

/**
 * Asks the server which optional stream features it has. Failures (an ACL without COMMAND, a
 * proxy that hides it) count as "not there": the 7.0 ways always work.
 */
export async function detectFeatures(client: RedisClient, timeoutMs: number): Promise<ServerFeatures> {
  const [info, docs] = await Promise.all([
    withTimeout(client.call('command', 'info', 'xnack', 'xackdel'), timeoutMs, 'COMMAND INFO').catch(() => null),
    withTimeout(client.call('command', 'docs', 'xreadgroup'), timeoutMs, 'COMMAND DOCS').catch(() => null),
  ]);
  const known = Array.isArray(info) ? info.map((entry) => Array.isArray(entry) && entry.length > 0) : [];
  return {
    xnack: known[0] === true,
    xackdel: known[1] === true,
    readClaim: mentionsToken(docs, 'CLAIM'),
  };
}
