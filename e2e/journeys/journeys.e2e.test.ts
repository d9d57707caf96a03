// The command line as a person meets it: the installed `redis-events` binary (packed, installed
// with npm into an empty project) run in a real pseudo-terminal (tmux), stopped with Ctrl-C typed
// at the terminal or SIGTERM, pointed at servers that refuse, black-hole or reject it, and read
// back byte for byte. Each journey records its measured time and exit code; the table is printed
// at the end of the run (the figures go in the issue note, the tests assert only behaviour and
// the documented bounds).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { RedisEventStore } from '@redis-events/event-store';
import { Topic } from '@redis-events/streams-driver';
import { type SpawnedRedis, spawnRedis, startProxy, type TcpProxy } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumer, packAll, tarballsFor } from '../packaging/consumer.ts';
import { alive, descendants, plain, TerminalSession, tmuxAvailable } from './terminal.ts';

// The documented bounds (packages/cli/README.md, "Stopping and failing"): a stop ends the command
// within 2 s; a failed connection within --connect-timeout (5 s by default) plus 1 s. The tests
// allow extra room for a loaded machine, as bounds are behaviour, not benchmarks.
const STOP_BOUND_MS = 2_000;
const CONNECT_TIMEOUT_S = 2;
const CONNECT_BOUND_MS = CONNECT_TIMEOUT_S * 1000 + 1_000;
// How slow this machine is now: the time `redis-events --version` takes to start and end in a
// terminal, measured before the journeys; the allowance grows with it (other jobs share the cores:
// with a load average of 20 on 2 cores, Node's start-up alone takes seconds).
let LOAD_ALLOWANCE_MS = 4_000;
/** A documented bound plus the allowance for this machine's load now. */
function bound(ms: number): number {
  return ms + LOAD_ALLOWANCE_MS;
}
// Waiting for a program to reach a state (connected, subscribed, a bar drawn) is not a bound of
// the program's: only its own bound fails it, so these are long. Each test's own timeout is
// longer still, so that a wait that runs out says what it waited for.
const READY_MS = 120_000;
const TEST_MS = 300_000;

const ESC = String.fromCharCode(0x1b);

const results: { journey: string; ms: number; code: number }[] = [];
function record(journey: string, ended: { ms: number; code: number }): void {
  results.push({ journey, ...ended });
}

let work: string;
let bin: string;
let server: SpawnedRedis;
let locked: SpawnedRedis;
let hole: TcpProxy;
let limited: string;
let bigRdb: string;
let env: Record<string, string>;

beforeAll(async () => {
  const missing = tmuxAvailable();
  if (missing) throw new Error(missing);
  work = mkdtempSync(join(tmpdir(), 'redis-events-journeys-'));
  const tarballs = packAll(work);
  const project = createConsumer(work, tarballsFor(tarballs, '@redis-events/cli'), []);
  bin = join(project, 'node_modules', '.bin', 'redis-events');
  // The terminal's shell environment: this Node first on PATH, no colour settings inherited.
  env = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, NO_COLOR: '', FORCE_COLOR: '' };
  [server, locked] = await Promise.all([spawnRedis(), spawnRedis({ password: 'right' })]);
  hole = await startProxy({ target: server });
  hole.pause();
  // A user allowed everything but the one command each talker needs (issue 14's ACL row).
  limited = (
    await server.createUser({
      username: 'journeys-limited',
      password: 'pw',
      rules: ['~*', '&*', '+@all', ...MISSING_COMMANDS.map((c) => `-${c}`)],
    })
  ).url;
  {
    using version = open(['--version']);
    const { ms } = await version.waitForExit(60_000);
    LOAD_ALLOWANCE_MS = Math.max(4_000, 3 * ms);
    record('--version (start-up, sets the allowance)', { ms, code: 0 });
  }
  // An RDB file big enough that reading it takes a few seconds: progress to see, time to press Ctrl-C.
  const big = await spawnRedis();
  await big.command('DEBUG', 'POPULATE', '1500000', 'key', '100');
  await big.command('SAVE');
  bigRdb = join(work, 'big.rdb');
  execFileSync('cp', [join(big.dir, 'dump.rdb'), bigRdb]);
  await big.stop();
}, 300_000);

afterAll(async () => {
  await hole?.close();
  await Promise.all([server?.stop(), locked?.stop()]);
  if (work) rmSync(work, { recursive: true, force: true });
  if (results.length > 0) {
    const width = Math.max(...results.map((r) => r.journey.length));
    console.log(
      `journeys (time from the stop or the start to the exit, exit code):\n${results.map((r) => `  ${r.journey.padEnd(width)}  ${String(r.ms).padStart(5)} ms  exit ${r.code}`).join('\n')}`,
    );
    // One machine-readable line: the figures, the allowance they were held to and the load then.
    const [load1, load5, load15] = loadavg().map((l) => Math.round(l * 100) / 100);
    console.log(
      `JOURNEYS ${JSON.stringify({ allowanceMs: LOAD_ALLOWANCE_MS, loadAverage: [load1, load5, load15], results })}`,
    );
  }
});

/** Polls `check` until it holds; fails after READY_MS saying what it waited for. */
async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = performance.now() + READY_MS;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function open(argv: readonly string[], extraEnv: Record<string, string> = {}): TerminalSession {
  return TerminalSession.start([bin, ...argv], { env: { ...env, ...extraEnv }, cwd: work });
}

/** The installed binary with stdout and stderr as pipes (not a terminal). */
function piped(
  argv: readonly string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(bin, argv, { env: { ...process.env, ...env, ...extraEnv }, cwd: work });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdin.end();
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

// Each long-running command, the output that says it is at work, and what its summary says.
const LONG_RUNNING: readonly { name: string; argv: () => string[]; ready: RegExp; summary: RegExp }[] = [
  { name: 'demo', argv: () => ['demo'], ready: /streams +billing-. acked/, summary: /what happened in \d+ s, until / },
  {
    name: 'demo --url',
    argv: () => ['demo', '--url', server.url],
    ready: /streams +billing-. acked/,
    summary: /what happened in \d+ s, until [\s\S]*the demo's keys are deleted/,
  },
  {
    name: 'tail',
    argv: () => ['tail', server.url],
    ready: /following writes/,
    summary: /tail stopped by .*: \d+ writes? printed/,
  },
  {
    name: 'sub',
    argv: () => ['sub', 'journeys', '--url', server.url],
    ready: /subscribed to journeys; waiting for messages/,
    summary: /sub stopped by .*: 0 messages received/,
  },
  {
    name: 'events --follow',
    argv: () => ['events', 'journey.done', '--follow', '--url', server.url],
    ready: /following journey\.done/,
    summary: /events stopped by .*: 0 new events printed/,
  },
  {
    name: 'stream recv',
    argv: () => ['stream', 'recv', 'journeys', '--url', server.url],
    ready: /waiting for messages of journeys/,
    summary: /stream recv stopped by .*: 0 messages received/,
  },
  {
    name: 'stream send (stdin)',
    argv: () => ['stream', 'send', 'journeys', '--url', server.url],
    ready: /reading messages from stdin/,
    summary: /stream send stopped by .*: 0 messages sent/,
  },
  {
    name: 'pub (stdin)',
    argv: () => ['pub', 'journeys', '--url', server.url],
    ready: /reading messages from stdin/,
    summary: /pub stopped by .*: 0 messages published/,
  },
  {
    name: 'rdb --memory',
    argv: () => ['rdb', bigRdb, '--memory'],
    ready: /reading big\.rdb .*\/s/,
    summary: /rdb stopped by .* after [\d,]+ keys?, .* read \(\d+%\); the report above covers only that part/,
  },
];

describe('demo', () => {
  it('prints its first line before the embedded Redis is up, and ends with what each subsystem did', {
    timeout: TEST_MS,
  }, async () => {
    const since = performance.now();
    using terminal = open(['demo', '--duration', '4']);
    await terminal.waitFor('the first line', (raw) => plain(raw).includes('\n'), READY_MS);
    record('demo: first line printed (from the start)', { ms: Math.round(performance.now() - since), code: 0 });
    expect(plain(terminal.raw())).toMatch(/^redis +starting an embedded Redis\.\.\.\r?\n/);
    const ended = await terminal.waitForExit(READY_MS);
    record('demo --duration 4: to the end', ended);
    expect(ended.code).toBe(0);
    const text = plain(terminal.raw());
    for (const subsystem of ['events', 'streams', 'pubsub', 'broker', 'replica'])
      expect(text).toMatch(new RegExp(`what happened in \\d+ s[\\s\\S]*\\n +${subsystem} +\\S`));
    expect(text).toMatch(/the embedded Redis is stopped; nothing is left running\s*$/);
    expect(text).not.toMatch(/Warning|ECONNREFUSED/);
  });
});

describe.each(LONG_RUNNING)('$name in a terminal', ({ name, argv, ready, summary }) => {
  it.each([
    ['Ctrl-C', 130],
    ['SIGTERM', 143],
  ] as const)(
    'ends on %s within the bound, with a summary, leaving no process',
    { timeout: TEST_MS },
    async (how, exitCode) => {
      using terminal = open(argv());
      // Commands that wait for the server show nothing until something happens: give them their
      // connection (the probe and the subscription) before stopping them.
      await terminal.waitFor(`${name} to be at work`, (raw) => ready.test(plain(raw)), READY_MS);
      const pid = terminal.pid;
      const children = descendants(pid);
      if (name === 'demo') expect(children.length).toBeGreaterThan(0); // the embedded Redis
      const since = performance.now();
      if (how === 'Ctrl-C') terminal.keys('C-c');
      else terminal.signal('SIGTERM');
      const ended = await terminal.waitForExit(bound(STOP_BOUND_MS), since);
      record(`${name}: ${how}`, ended);
      expect(ended.code).toBe(exitCode);
      expect(ended.ms).toBeLessThan(bound(STOP_BOUND_MS));
      const text = plain(terminal.raw());
      expect(text).toMatch(summary);
      expect(text).toContain(how === 'Ctrl-C' ? 'Ctrl-C' : 'SIGTERM');
      expect(text).not.toMatch(/still closing 2 s after/); // closed in order, not cut by the deadline
      expect(text).not.toMatch(/Warning|ECONNREFUSED/); // no client left retrying a stopped server
      // Nothing it started outlives it, the embedded Redis included.
      const deadline = Date.now() + bound(STOP_BOUND_MS);
      while ([pid, ...children].some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect([pid, ...children].filter(alive)).toEqual([]);
    },
  );
});

// Every command that talks to Redis, against a server that refuses, one that never answers (a
// paused proxy: TCP connects, no byte comes back) and one with another password.
const TALKERS: readonly (readonly string[])[] = [
  ['demo'],
  ['tail'],
  ['sub', 'news'],
  ['pub', 'news', 'hello'],
  ['events', 'order.paid'],
  ['events', 'order.paid', '--follow'],
  ['stream', 'send', 'orders', 'hello'],
  ['stream', 'recv', 'orders'],
];
const FAILURES = [
  ['refused', () => 'redis://127.0.0.1:1', /connection refused/],
  ['black hole', () => hole.url, new RegExp(`no answer within ${CONNECT_TIMEOUT_S} s`)],
  ['wrong password', () => `redis://:wrong@127.0.0.1:${locked.port}`, /wrong user name or password \(WRONGPASS\)/],
] as const;

describe.each(TALKERS.map((argv) => ({ name: argv.join(' '), argv })))('$name', ({ name, argv }) => {
  it.each(FAILURES)(
    '%s: exit 1 and one line naming the cause, within the bound',
    { timeout: TEST_MS },
    async (failure, url, cause) => {
      using terminal = open([...argv, '--url', url(), '--connect-timeout', String(CONNECT_TIMEOUT_S)]);
      const ended = await terminal.waitForExit(bound(CONNECT_BOUND_MS));
      record(`${name}: ${failure}`, ended);
      expect(ended.code).toBe(1);
      const lines = plain(terminal.raw())
        .split('\n')
        .filter((l) => l.trim() !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(`^redis-events ${argv[0] === 'stream' ? `stream ${argv[1]}` : argv[0]}: cannot connect to `),
      );
      expect(lines[0]).toMatch(cause);
    },
  );
});

// The commands refused by the ACL user above, and the one each talker needs first.
const MISSING_COMMANDS = ['psync', 'sync', 'subscribe', 'publish', 'evalsha', 'eval', 'xadd', 'xreadgroup'];
const REFUSED: readonly { argv: readonly string[]; command: string }[] = [
  { argv: ['tail'], command: 'psync' },
  { argv: ['sub', 'news'], command: 'subscribe' },
  { argv: ['pub', 'news', 'hello'], command: 'publish' },
  { argv: ['events', 'order.paid'], command: 'evalsha' },
  { argv: ['events', 'order.paid', '--follow'], command: 'evalsha' },
  { argv: ['stream', 'send', 'orders', 'hello'], command: 'xadd' },
  { argv: ['stream', 'recv', 'orders'], command: 'eval or xreadgroup' },
];

describe.each(REFUSED.map((r) => ({ name: r.argv.join(' '), ...r })))('$name', ({ name, argv, command }) => {
  it(`ACL user without ${command}: exit 1, the last line names the refusal`, { timeout: TEST_MS }, async () => {
    using terminal = open([...argv, '--url', limited, '--connect-timeout', String(CONNECT_TIMEOUT_S)]);
    const ended = await terminal.waitForExit(READY_MS);
    record(`${name}: ACL user without ${command}`, ended);
    expect(ended.code).toBe(1);
    const lines = plain(terminal.raw())
      .split('\n')
      .filter((l) => l.trim() !== '');
    // The refusal comes after the handshake: `tail` has said it reached the server, `stream recv`
    // that its group is ready and it waits (dim status lines); nothing else comes before it.
    expect(lines.slice(0, -1).filter((l) => !/^(connected to redis:|waiting for messages of )/.test(l))).toEqual([]);
    expect(lines.length).toBeLessThanOrEqual(2);
    const last = lines.at(-1) ?? '';
    expect(last).toMatch(new RegExp(`^redis-events ${argv[0] === 'stream' ? `stream ${argv[1]}` : argv[0]}: `));
    // The first refused command: `stream recv` creates its group by a script (EVAL) before it reads.
    const refused = /NOPERM this user has no permissions to run the '(\w+)' command/.exec(last)?.[1];
    expect(MISSING_COMMANDS).toContain(refused);
    expect(last).not.toContain(':pw@'); // the password is hidden
  });
});

describe('rdb on a file that is not there', () => {
  it('exits 1 with one line', { timeout: TEST_MS }, async () => {
    using terminal = open(['rdb', join(work, 'absent.rdb')]);
    const ended = await terminal.waitForExit(bound(1_000));
    record('rdb absent file', ended);
    expect(ended.code).toBe(1);
    expect(plain(terminal.raw()).trim()).toMatch(/^redis-events rdb: cannot read .*absent\.rdb: ENOENT$/);
  });
});

describe('progress', () => {
  it('rdb draws a bar with the rate and the time left on a terminal', { timeout: TEST_MS }, async () => {
    using terminal = open(['rdb', bigRdb, '--memory']);
    await terminal.waitFor(
      'a bar with a rate and the time left',
      (raw) =>
        /reading big\.rdb \[[#.]+\] +\d+% [\d.]+ MiB of [\d.]+ MiB, [\d.]+ MiB\/s, (\d+ s|\d+ min \d+ s) left/.test(
          raw,
        ),
      READY_MS,
    );
    const ended = await terminal.waitForExit(READY_MS);
    record('rdb --memory with a bar, to the end', ended);
    expect(ended.code).toBe(0);
    // The bar is gone at the end: the table and the summary are what stays on the screen.
    expect(terminal.screen()).not.toMatch(/MiB\/s/);
    expect(terminal.screen()).toMatch(/1,?500,?000 keys, .*checksum verified/);
  });

  it('rdb prints no bar into a pipe', { timeout: TEST_MS }, async () => {
    const { code, stderr } = await piped(['rdb', bigRdb, '--memory']);
    expect(code).toBe(0);
    expect(stderr).not.toMatch(/\r|MiB\/s/);
    expect(stderr).not.toContain(ESC);
    expect(stderr).toMatch(/^.*big\.rdb: 1500000 keys|^.*big\.rdb: [\d,]+ keys/);
  });

  it('tail --snapshot shows the transfer with its rate, and the time left', { timeout: TEST_MS }, async () => {
    const source = await spawnRedis();
    try {
      await source.command('DEBUG', 'POPULATE', '1000000', 'snap', '100');
      using terminal = open(['tail', source.url, '--snapshot', '--key', 'nothing-matches']);
      await terminal.waitFor(
        'a snapshot bar with a rate and the time left',
        (raw) =>
          /snapshot \[[#.]+\] +\d+% [\d,.]+ (of [\d,.]+ keys|MiB of [\d.]+ MiB), [\d,.]+ (keys|MiB)\/s, (\d+ s|\d+ min \d+ s) left/.test(
            raw,
          ),
        READY_MS,
      );
      await terminal.waitFor('the end of the snapshot', (raw) => /snapshot done/.test(plain(raw)), READY_MS);
      const since = performance.now();
      terminal.keys('C-c');
      const ended = await terminal.waitForExit(bound(STOP_BOUND_MS), since);
      record('tail --snapshot after the snapshot: Ctrl-C', ended);
      expect(ended.code).toBe(130);
    } finally {
      await source.stop();
    }
  });
});

describe('colour', () => {
  const sgr = new RegExp(`${ESC}\\[[0-9;]*m`);
  it('is on in a terminal, off with NO_COLOR', { timeout: TEST_MS }, async () => {
    using coloured = open(['tail', server.url, '--pretty']);
    await coloured.waitFor('following', (raw) => /following writes/.test(plain(raw)), READY_MS);
    await server.createClient().set('journey:colour', '1');
    await coloured.waitFor('the write', (raw) => /journey:colour/.test(raw), READY_MS);
    expect(coloured.raw()).toMatch(sgr);
    let since = performance.now();
    coloured.keys('C-c');
    const colouredEnd = await coloured.waitForExit(bound(STOP_BOUND_MS), since);
    record('tail --pretty in colour: Ctrl-C', colouredEnd);
    expect(colouredEnd.code).toBe(130);

    using plainTerminal = open(['tail', server.url, '--pretty'], { NO_COLOR: '1' });
    await plainTerminal.waitFor('following', (raw) => /following writes/.test(plain(raw)), READY_MS);
    await server.createClient().set('journey:plain', '1');
    await plainTerminal.waitFor('the write', (raw) => /journey:plain/.test(raw), READY_MS);
    expect(plainTerminal.raw()).not.toMatch(sgr);
    since = performance.now();
    plainTerminal.keys('C-c');
    const plainEnd = await plainTerminal.waitForExit(bound(STOP_BOUND_MS), since);
    record('tail --pretty with NO_COLOR: Ctrl-C', plainEnd);
    expect(plainEnd.code).toBe(130);
  });

  it('is off in a pipe, on with FORCE_COLOR', { timeout: TEST_MS }, async () => {
    const file = bigRdb;
    const off = await piped(['rdb', file, '--biggest', '1']);
    expect(off.stdout).not.toMatch(sgr);
    const on = await piped(['rdb', file, '--biggest', '1'], { FORCE_COLOR: '1' });
    expect(on.stdout).toMatch(sgr);
  });
});

describe('lossless JSON, one shape per command', () => {
  it('rdb, tail, sub, events and stream recv keep binary bytes and __proto__', { timeout: TEST_MS }, async () => {
    const client = server.createClient();
    const binary = Buffer.from([0xff, 0x00, 0xc3, 0x28]);
    const b64 = { base64: binary.toString('base64') };

    // tail: every argument of every write
    using tail = open(['tail', server.url]);
    await tail.waitFor('following', (raw) => /following writes/.test(plain(raw)), READY_MS);
    // sub: payloads
    const sub = piped(['sub', 'lossless', '--count', '1', '--url', server.url]);
    await until('sub to subscribe', async () => {
      const [, subscribers] = (await server.command('PUBSUB', 'NUMSUB', 'lossless')) as [string, number];
      return subscribers > 0;
    });
    await client.hset('lossless:h', '__proto__', binary);
    await client.publish('lossless', binary);
    await tail.waitFor('the HSET', (raw) => /lossless:h/.test(raw), READY_MS);
    const tailLine = plain(tail.raw())
      .split('\n')
      .find((l) => l.includes('lossless:h'));
    expect(JSON.parse(tailLine ?? '{}')).toMatchObject({ command: 'HSET', args: ['lossless:h', '__proto__', b64] });
    tail.keys('C-c');
    expect((await sub).stdout).toBe(`${JSON.stringify({ kind: 'message', channel: 'lossless', payload: b64 })}\n`);

    // rdb: hash fields as pairs
    await server.command('SAVE');
    const rdb = await piped(['rdb', join(server.dir, 'dump.rdb'), '--key', 'lossless:*']);
    expect(JSON.parse(rdb.stdout)).toMatchObject({ key: 'lossless:h', type: 'hash', value: [['__proto__', b64]] });

    // events: a payload with a __proto__ key (as JSON.parse gives it: an own property)
    const store = new RedisEventStore(server.createClient());
    await store.storeEvent({ name: 'journey.proto', payload: JSON.parse('{"__proto__":{"polluted":true}}') });
    await store.close();
    const events = await piped(['events', 'journey.proto', '--url', server.url]);
    expect(events.code).toBe(0);
    expect(JSON.parse(events.stdout)).toMatchObject({ name: 'journey.proto' });
    expect(events.stdout).toContain('"payload":{"__proto__":{"polluted":true}}');

    // stream recv: a binary body
    const topic = new Topic(server.createClient(), 'lossless:s', { create: true });
    await topic.send({ body: binary });
    await topic.shutdown();
    const recv = await piped(['stream', 'recv', 'lossless:s', '--from', '0', '--count', '1', '--url', server.url]);
    expect(recv.code).toBe(0);
    expect(JSON.parse(recv.stdout)).toMatchObject({ body: b64 });
  });
});
