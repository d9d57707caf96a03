// `--trace`: the spans of a command on stderr, one line per operation as it ends, then a total;
// stdout (the data) is unchanged.
import { type SpawnedRedis, spawnRedis } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonLines, runCli } from './helpers.ts';

describe('redis-events <command> --trace', () => {
  let server: SpawnedRedis;
  beforeAll(async () => {
    server = await spawnRedis();
  });
  afterAll(() => server.stop());

  it('prints each Redis command with its server, database and duration to stderr, then the total', async () => {
    const plain = await runCli(['stream', 'send', 'traced', 'a', 'b', '--url', server.url]);
    const traced = await runCli(['stream', 'send', 'traced', 'c', 'd', '--url', server.url, '--trace']);
    expect(traced.code).toBe(0);
    // The data on stdout is the same with and without --trace.
    expect(jsonLines(traced.stdout)).toHaveLength(2);
    expect(plain.stderr).not.toMatch(/^trace /m);
    const lines = traced.stderr.split('\n').filter((line) => line.startsWith('trace '));
    const xadds = lines.filter((line) => /\bXADD\b/.test(line));
    expect(xadds).toHaveLength(2);
    for (const line of xadds) {
      expect(line).toMatch(
        new RegExp(
          `^trace +\\d+\\.\\d ms +XADD +\\d+(\\.\\d+)? ms +\\(127\\.0\\.0\\.1:${server.port}, namespace=0\\)$`,
        ),
      );
    }
    expect(lines.at(-1)).toMatch(/^trace redis-events stream send: \d+ spans in \d+(\.\d+)? ms$/);
  });

  it('marks a failed command with its Redis error', async () => {
    const client = server.createClient();
    await client.set('not-a-stream', 'x');
    const traced = await runCli(['stream', 'send', 'not-a-stream', 'a', '--url', server.url, '--trace']);
    client.disconnect();
    expect(traced.code).toBe(1);
    expect(traced.stderr).toMatch(/^trace .* XADD .*failed: WRONGTYPE\)$/m);
  });
});
