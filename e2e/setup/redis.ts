// Global setup of the e2e suite: one Redis for the whole run, found the way the testkit's
// startRedis() finds one (REDIS_URL, else a container, else a spawned redis-server), handed to
// the tests with provide(). Tests that need faults or topologies start their own servers.
import { startRedis } from '@redis-events/testkit';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the shared server. */
    redisUrl: string;
    /** `redis 7.0.15`, `valkey 9.1.2`... */
    redisVersion: string;
    /** How it was obtained: spawned, container or external. */
    redisKind: string;
  }
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startRedis();
  project.provide('redisUrl', server.url);
  project.provide('redisVersion', server.version.text);
  project.provide('redisKind', server.kind);
  console.log(`e2e: using ${server.kind} ${server.version.text} at ${server.host}:${server.port}`);
  return () => server.stop();
}
