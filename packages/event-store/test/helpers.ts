import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { expect } from 'vitest';
import type { RedisClient } from '../src/redis-client.ts';

/** A fresh key prefix, so that tests sharing a server never see each other's keys. */
export function freshPrefix(label = 'es'): string {
  return `${label}:${randomBytes(5).toString('hex')}`;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True when the promise fulfils, false when it rejects: for polling until a call works again. */
export function succeeds(promise: Promise<unknown>): Promise<boolean> {
  return promise.then(
    () => true,
    () => false,
  );
}

/** Compares two event ids of either layout ("ms-seq" or nanoseconds): <0, 0, >0. */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const major = BigInt(am) - BigInt(bm);
  if (major !== 0n) return major < 0n ? -1 : 1;
  const minor = BigInt(as) - BigInt(bs);
  return minor === 0n ? 0 : minor < 0n ? -1 : 1;
}

/** Asserts ids are strictly decreasing (newest first) or increasing. */
export function expectStrictOrder(ids: readonly string[], order: 'newest' | 'oldest'): void {
  for (let i = 1; i < ids.length; i++) {
    const c = compareIds(ids[i - 1] as string, ids[i] as string);
    if (order === 'newest' ? c <= 0 : c >= 0) {
      expect.fail(`ids out of ${order}-first order at ${i}: ${ids[i - 1]} then ${ids[i]}`);
    }
  }
}

/** Every key matching `pattern`, on every master of a cluster or on the one server. */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const nodes: Redis[] = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = (await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)) as [string, string[]];
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys.sort();
}

/** Escapes glob characters so a key can be used in a SCAN pattern. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}
