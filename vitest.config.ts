import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

const root = import.meta.dirname;
const condition = '@redis-events/source';

// The prebuilt servers next to the repository (../shared/redis) serve the version matrix:
// REDIS_SERVER=7.4 (or a name, or "all") picks from them; see packages/testkit/README.md.
const sharedServers = resolve(root, '../shared/redis');
const env: Record<string, string> = {};
if (!process.env.REDIS_SERVERS_DIR && existsSync(sharedServers)) env.REDIS_SERVERS_DIR = sharedServers;

const packages = readdirSync(join(root, 'packages')).filter((name) => existsSync(join(root, 'packages', name, 'test')));

export default defineConfig({
  root,
  // Tests run against the TypeScript sources of the workspace packages, never a stale build.
  // Test files resolve in Vite's ssr environment, global setup files in Vitest's own
  // (__vitest__): both need the condition, next to Node's default ones.
  ssr: { resolve: { conditions: [condition, ...defaultServerConditions] } },
  environments: { __vitest__: { resolve: { conditions: [condition, ...defaultServerConditions] } } },
  test: {
    env,
    testTimeout: 30_000,
    hookTimeout: 120_000,
    restoreMocks: true,
    projects: [
      ...packages.map((name) => ({
        extends: true as const,
        test: { name, root: join(root, 'packages', name), include: ['test/**/*.test.ts'] },
      })),
      {
        extends: true as const,
        test: {
          name: 'e2e',
          root: join(root, 'e2e'),
          include: ['**/*.e2e.test.ts'],
          globalSetup: [join(root, 'e2e/setup/redis.ts')],
        },
      },
    ],
  },
});
