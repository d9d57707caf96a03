import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_TEST_TIMEOUT, runCli } from './helpers.ts';

// Every command that talks to Redis ends a failed connection the same way: exit 1 and one line
// that names the address and the cause (the journeys in e2e/journeys add the black hole).
const COMMANDS: readonly (readonly string[])[] = [
  ['events', 'order.paid'],
  ['events', 'order.paid', '--follow'],
  ['stream', 'send', 'orders', 'hello'],
  ['stream', 'recv', 'orders'],
  ['sub', 'news'],
  ['pub', 'news', 'hello'],
  ['tail'],
  ['demo'],
];

describe('a connection that fails names its cause', { timeout: CLI_TEST_TIMEOUT }, () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis({ password: 'right' });
  });
  afterAll(() => server.stop());

  it.each(COMMANDS.map((argv) => [argv.join(' '), argv] as const))('%s: refused', async (_, argv) => {
    const { code, stdout, stderr } = await runCli([...argv, '--url', 'redis://127.0.0.1:1']);
    expect(stdout).toBe('');
    expect(stderr).toBe(
      `redis-events ${argv[0] === 'stream' ? `stream ${argv[1]}` : argv[0]}: cannot connect to redis://127.0.0.1:1: connection refused (nothing listens there)\n`,
    );
    expect(code).toBe(1);
  });

  it.each(COMMANDS.map((argv) => [argv.join(' '), argv] as const))('%s: wrong password', async (_, argv) => {
    const url = `redis://:wrong@127.0.0.1:${server.port}`;
    const { code, stdout, stderr } = await runCli([...argv, '--url', url]);
    expect(stdout).toBe('');
    expect(stderr).toMatch(
      /^redis-events [a-z ]+: cannot connect to redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: wrong user name or password \(WRONGPASS\)\n$/,
    );
    expect(code).toBe(1);
  });
});
