// Every command a README tells a person to type (scripts/documented-commands.ts finds them) is
// exercised here in a cheap form: a dry run, a one-second duration, `--help` where the command
// only writes files, or a real run against a test server. A documented command that no longer
// parses fails the check, and so does one that no rule below knows: add a rule with it.
import { spawn } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisEventStore } from '@redis-events/event-store';
import { type RedisCluster, type RedisServer, spawnRedis, startCluster } from '@redis-events/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DocumentedCommand, documentedCommands } from '../../scripts/documented-commands.ts';
import { published, root } from '../packaging/consumer.ts';

/** How a documented command is exercised. */
type Exercise =
  | {
      /** The argv to run (a shell is never used: the words are split here). */
      readonly run: readonly string[];
      readonly stdin?: string | undefined;
      /** The command its output is piped into, as documented (`| jq ...`). */
      readonly pipeTo?: readonly string[] | undefined;
      /**
       * A command that runs until stopped: SIGINT once it is at work, as a person presses Ctrl-C
       * once it runs. A command that ends by itself before must end with 0.
       */
      readonly interruptAtWork?: AtWork | undefined;
      /** Extra checks of the output. */
      readonly expect?: ((out: RunResult) => void) | undefined;
      readonly timeoutMs?: number | undefined;
      /** A failure that is an expected answer here (with why), rather than a broken command. */
      readonly acceptFailure?: { readonly output: RegExp; readonly why: string } | undefined;
    }
  | {
      /** Exercised elsewhere in the check; `verify` proves the claim. */
      readonly covered: string;
      readonly verify: () => void;
    };

/**
 * How a command that runs until stopped shows it is at work: on these servers, a new connection
 * of its is a replica, a subscriber or blocked in a read; or a check of its output (for one that
 * polls, which the server cannot tell from idle).
 */
type AtWork =
  | readonly RedisServer[]
  | { readonly check: (stdout: string) => Promise<boolean>; readonly close: () => Promise<void> };

interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** SIGINT was sent (the command was at work). */
  readonly interrupted: boolean;
}

interface Rule {
  readonly match: RegExp;
  readonly exercise: (words: string[], command: DocumentedCommand) => Exercise;
}

let server: RedisServer;
let cluster: RedisCluster;
/** The target of documented syncs and compares. */
let syncTarget: RedisServer;
let work: string;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const cli = join(root, 'e2e', 'node_modules', '.bin', 'redis-events');

/** Splits a shell command into words (single and double quotes, no expansion). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  let has = false;
  for (const c of line) {
    if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || word) words.push(word);
      word = '';
      has = false;
    } else word += c;
  }
  if (quote) throw new Error(`unterminated quote in: ${line}`);
  if (has || word) words.push(word);
  return words;
}

/** The commands of a shell pipeline: split at each `|` outside quotes (a jq filter has its own). */
function pipelineParts(command: string): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '|' && command[i + 1] !== '|' && command[i - 1] !== '|') {
      parts.push(command.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(command.slice(start).trim());
  return parts;
}

/**
 * The redis-events part of a pipeline, stdin standing in for what feeds it, and the command it
 * feeds (run as written: `jq` is a tool the check installs, see scripts/bootstrap.sh).
 */
function pipeline(command: string): { words: string[]; stdin: string | undefined; pipeTo: string[] | undefined } {
  const parts = pipelineParts(command);
  const at = parts.findIndex((p) => /^(redis-events|npx redis-events)\s/.test(p));
  const words = shellWords(parts[at] ?? command);
  const feeder = at > 0 ? shellWords(parts[at - 1] as string) : [];
  let stdin: string | undefined;
  if (feeder[0] === 'seq') stdin = Array.from({ length: Number(feeder[1]) }, (_, i) => `${i + 1}\n`).join('');
  else if (feeder[0] === 'tail') stdin = 'a log line\nanother log line\n';
  else if (feeder.length > 0) throw new Error(`no stand-in for "${feeder.join(' ')}" feeding: ${command}`);
  const rest = parts.slice(at + 1).map(shellWords);
  if (rest.length > 1 || (rest[0] && rest[0][0] !== 'jq'))
    throw new Error(`only one jq may read the output of redis-events here: ${command}`);
  return { words, stdin, pipeTo: rest[0] };
}

/** The test server in place of a documented URL (hosts of the reader's, or the default). */
function withTestServer(words: string[], url: string): string[] {
  return words.map((w) => (/^rediss?:\/\//.test(w) ? url : w));
}

const dryTurbo = (words: string[]): Exercise => ({ run: [...words, '--dry-run=json'] });

const rules: Rule[] = [
  {
    match: /^(\.\/run|pnpm) check$/,
    exercise: () => ({
      covered: 'CI runs it: .ci/run executes ./run check, which runs pnpm run check',
      verify: () => {
        expect(readFileSync(join(root, '.ci', 'run'), 'utf8')).toMatch(/exec \.\/run check\n/);
        expect(readFileSync(join(root, 'run'), 'utf8')).toMatch(
          /\n {2}check\) shift; exec pnpm run --silent check "\$@" ;;\n/,
        );
        expect(pkg.scripts.check).toMatch(/^turbo run build typecheck lint check:pack && turbo run test e2e /);
      },
    }),
  },
  {
    match: /^(\.\/run|pnpm) demo$|^redis-events demo( --url \S+)?( --duration \d+)?$/,
    exercise: (words) => {
      const url = words.indexOf('--url');
      const args = url >= 0 ? withTestServer(words, server.url) : words;
      const duration = args.indexOf('--duration');
      const run = duration >= 0 ? args.toSpliced(duration, 2) : args;
      const argv = run[0] === 'redis-events' ? [cli, ...run.slice(1)] : run;
      return { run: [...argv, '--duration', '1'], timeoutMs: 60_000 };
    },
  },
  {
    match: /^pnpm install( --frozen-lockfile)?$/,
    exercise: () => ({ run: ['pnpm', 'install', '--frozen-lockfile', '--lockfile-only'] }),
  },
  { match: /^(\.\/run|pnpm) turbo run [\w: ]+$/, exercise: dryTurbo },
  { match: /^pnpm (test|e2e)$/, exercise: dryTurbo },
  {
    match: /^pnpm (e2e:container|release:dry-run)$/,
    exercise: (words) => ({
      covered: 'the check runs it after the tests (package.json "check")',
      verify: () => {
        const script = pkg.scripts[words[1] as string] as string;
        expect(pkg.scripts.check).toContain(script.replace(/^bash /, 'bash '));
      },
    }),
  },
  {
    match: /^pnpm (publish --dry-run|changeset version)$/,
    exercise: (words) => ({
      covered: 'scripts/release-dry-run.sh (run by the check) runs it for every package',
      verify: () => {
        const script = readFileSync(join(root, 'scripts', 'release-dry-run.sh'), 'utf8');
        expect(script).toContain(words[1] === 'publish' ? 'publish --dry-run' : 'changeset version');
        expect(pkg.scripts.check).toContain('scripts/release-dry-run.sh');
      },
    }),
  },
  {
    match: /^pnpm release$/,
    exercise: () => ({
      covered: 'its steps are rehearsed by the check: turbo build and check:pack, and publish --dry-run',
      verify: () => {
        expect(pkg.scripts.release).toBe('turbo run build check:pack && changeset publish');
        expect(pkg.scripts.check).toContain('scripts/release-dry-run.sh');
      },
    }),
  },
  { match: /^pnpm changeset$/, exercise: () => ({ run: ['pnpm', 'changeset', '--help'] }) },
  // the canary updates dependencies from the registry: far from cheap, so its help
  { match: /^pnpm canary$/, exercise: () => ({ run: ['pnpm', 'canary', '--help'] }) },
  {
    match: /^pnpm commands$/,
    exercise: () => ({ run: ['pnpm', 'commands'], expect: (out) => expect(out.stdout).toContain('./run check') }),
  },
  { match: /^pnpm lint$/, exercise: () => ({ run: ['pnpm', 'lint'] }) },
  // format writes files: its help proves the script and the tool are there
  { match: /^pnpm format$/, exercise: () => ({ run: ['pnpm', 'format', '--help'] }) },
  {
    match: /^pnpm matrix( [\w.-]+)*$/,
    exercise: (words) => ({
      run: [...words, '--dry-run'],
      acceptFailure: {
        output: /REDIS_SERVERS_DIR "[^"]*" cannot be read/,
        why: 'a clone without the prebuilt servers next to it cannot resolve server names',
      },
    }),
  },
  {
    // as written (`pnpm soak -- --minutes 1` too), for three seconds
    match: /^(\.\/run|pnpm) soak( (-- )?--minutes \d+)?$/,
    exercise: (words) => {
      const minutes = words.indexOf('--minutes');
      return {
        run: minutes >= 0 ? words.toSpliced(minutes + 1, 1, '0.05') : [...words, '--minutes', '0.05'],
        timeoutMs: 120_000,
        expect: (out) => expect(out.stdout).toMatch(/^\{"soak":\{"minutes":0\.05,/m),
      };
    },
  },
  {
    // the RDB fuzzer, for one second, its findings (if any) in a temporary folder
    match: /^pnpm --filter @redis-events\/replication fuzz --seconds \d+$/,
    exercise: (words) => ({
      run: [...words.slice(0, -1), '1', '--out', join(tmpdir(), `fuzz-findings-${process.pid}`)],
      timeoutMs: 120_000,
      expect: (out) => expect(out.stdout).toMatch(/^fuzzing the RDB parser for 1 s from seed \d+$/m),
    }),
  },
  {
    // the on-demand fuzzer, for one second, its findings (if any) in a temporary folder
    match: /^pnpm fuzz( [\w-]+)*$/,
    exercise: (words) => ({
      run: [...words, '--seconds', '1', '--out', join(tmpdir(), `fuzz-findings-${process.pid}`)],
      timeoutMs: 120_000,
      expect: (out) => expect(out.stdout).toMatch(/^\{"fuzz":"redis-events","ok":true,"seconds":1,/m),
    }),
  },
  {
    match: /^pnpm bench [\w/-]+$/,
    exercise: (words) => ({
      run: ['pnpm', 'bench', '--', words[2] as string, '--dry-run'],
      timeoutMs: 120_000,
      expect: (out) => expect(out.stdout).toMatch(/\(dry run\)/),
    }),
  },
  {
    // packages are not on the registry until released: the packaging test installs each one
    // alone from its tarball; here the names and flags must be real
    match: /^npm install /,
    exercise: (words) => ({
      covered: 'e2e/packaging installs each package alone with npm, from its tarball',
      verify: () => {
        const names = words.slice(2).filter((w) => !w.startsWith('-'));
        const flags = words.slice(2).filter((w) => w.startsWith('-'));
        expect(flags.every((f) => ['--global', '--save-dev', '-D'].includes(f))).toBe(true);
        const ours = published.map((p) => p.manifest.name);
        const peers = new Set(published.flatMap((p) => Object.keys(p.manifest.peerDependencies ?? {})));
        for (const name of names)
          expect(ours.includes(name) || peers.has(name) || name === '@types/redis-errors').toBe(true);
      },
    }),
  },
  {
    match: /^redis-cli ACL SETUSER /,
    exercise: (words) => ({
      run: ['redis-cli', '-p', String(server.port), ...words.slice(1)],
      expect: (out) => expect(out.stdout.trim()).toBe('OK'),
    }),
  },
  {
    // sync and compare take a source and a target: the test server and a second, empty one
    match: /^redis-events (sync|compare) /,
    exercise: (words) => {
      let urls = 0;
      const args = words
        .slice(1)
        .map((w) => (/^rediss?:\/\//.test(w) ? (urls++ === 0 ? server.url : syncTarget.url) : w));
      const follows = words[1] === 'sync' && args[1]?.startsWith('redis') && !args.includes('--once');
      return {
        run: [cli, ...args],
        timeoutMs: 120_000,
        // long enough for a loaded machine to start Node and reach the live phase
        ...(follows ? { interruptAtWork: [server] } : {}),
        ...(words[1] === 'compare'
          ? {
              acceptFailure: {
                output: /differences \(/,
                why: 'compare exits 1 when the two servers differ, as they do here',
              },
            }
          : {}),
      };
    },
  },
  {
    match: /^redis-events aof /,
    exercise: (words) => ({ run: [cli, ...words.slice(1)] }),
  },
  {
    match: /^redis-events sub .*--cluster/,
    exercise: (words) => ({
      run: [cli, ...withTestServer(words.slice(1), `redis://127.0.0.1:${cluster.masters[0]?.port}`)],
      interruptAtWork: cluster.masters,
    }),
  },
  {
    // events --follow: events stored while it runs show in its output (the timeline layout polls)
    match: /^redis-events events \S+ .*--follow/,
    exercise: (words) => ({ run: [cli, ...words.slice(1)], interruptAtWork: followedEvents(words) }),
  },
  {
    // commands that run until stopped: Ctrl-C once they are at work
    match: /^redis-events (tail|sub(?!.*--cluster)|stream recv)\b/,
    exercise: (words) => ({ run: [cli, ...withTestServer(words.slice(1), server.url)], interruptAtWork: [server] }),
  },
  {
    match: /(^|\| )redis-events (rdb|pub|events(?!.*--follow)|stream send)\b/,
    exercise: (_words, command) => {
      const { words, stdin, pipeTo } = pipeline(command.command);
      return {
        run: [cli, ...withTestServer(words.slice(1), server.url)],
        stdin,
        pipeTo,
        // jq's filters select from the test data (a hash user:1 {name: Ada}): each prints it
        expect: pipeTo
          ? (out) => {
              const values = out.stdout
                .trim()
                .split('\n')
                .map((line) => JSON.parse(line) as unknown);
              expect(values).toHaveLength(1);
              expect(JSON.stringify(values[0])).toMatch(/"key":"user:1"|^\{"name":"Ada"\}$/);
            }
          : undefined,
      };
    },
  },
];

function ruleFor(command: DocumentedCommand): Rule[] {
  return rules.filter((rule) => rule.match.test(command.command));
}

// A command documented in several places is exercised once, named by every place.
const commands: DocumentedCommand[] = [];
for (const c of documentedCommands(root)) {
  const seen = commands.findIndex((d) => d.command === c.command);
  if (seen < 0) commands.push(c);
  else commands[seen] = { ...(commands[seen] as DocumentedCommand), where: `${commands[seen]?.where}, ${c.where}` };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'redis-events-commands-'));
  server = await spawnRedis();
  cluster = await startCluster({ masters: 3 });
  // rdb commands read dump.rdb from the working directory
  const client = server.createClient();
  await client.hset('user:1', { name: 'Ada' });
  await client.xadd('orders:1', '*', 'k', 'v');
  await client.save();
  const [, dir] = (await client.config('GET', 'dir')) as [string, string];
  const [, file] = (await client.config('GET', 'dbfilename')) as [string, string];
  copyFileSync(join(dir, file), join(work, 'dump.rdb'));
  syncTarget = await spawnRedis();
  // aof commands read appendonlydir from the working directory: a small Redis 7 AOF folder
  const aof = await spawnRedis({ persistence: 'aof' });
  try {
    const writer = aof.createClient();
    await writer.set('user:1', 'Ada');
    await writer.hset('user:2', 'name', 'Grace');
    await writer.del('user:1');
    cpSync(join(aof.dir, 'appendonlydir'), join(work, 'appendonlydir'), { recursive: true });
  } finally {
    await aof.stop();
  }
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await server?.stop();
  await syncTarget?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('documented commands', () => {
  it('finds the commands of the READMEs', () => {
    expect(commands.length).toBeGreaterThan(30);
    expect(commands.map((c) => c.command)).toContain('./run check');
  });

  it('has exactly one rule for every documented command', () => {
    const problems = commands
      .map((c) => ({ c, n: ruleFor(c).length }))
      .filter(({ n }) => n !== 1)
      .map(({ c, n }) => `${c.where}: ${n === 0 ? 'no rule exercises' : `${n} rules match`} \`${c.command}\``);
    expect(problems).toEqual([]);
  });

  it.each(commands.map((c) => [`${c.where} ${c.command}`, c] as const))(
    '%s',
    async (_name, command) => {
      const [rule] = ruleFor(command);
      if (!rule) throw new Error(`no rule for ${command.command}`);
      const segments = pipelineParts(command.command);
      const ours = segments.find((p) => /^(\.\/run|pnpm|npm|npx|redis-events|redis-cli)(\s|$)/.test(p.trim()));
      const exercise = rule.exercise(shellWords(ours ?? command.command), command);
      if ('covered' in exercise) {
        exercise.verify();
        return;
      }
      const result = await run(exercise);
      const parseError = /Unknown option|Unexpected argument|ERR_PARSE_ARGS|unknown option|Usage:.*\n.*error/i;
      expect(`${result.stderr}`).not.toMatch(parseError);
      const accepted = exercise.acceptFailure?.output.test(`${result.stdout}${result.stderr}`) ?? false;
      if (exercise.interruptAtWork !== undefined) expect(result.code).toBe(result.interrupted ? 130 : 0);
      else if (!accepted) expect({ code: result.code, stderr: result.stderr.slice(-1500) }).toMatchObject({ code: 0 });
      exercise.expect?.(result);
    },
    180_000,
  );
});

/**
 * Proof that `redis-events events <name> --follow ...` follows: events of that name are stored
 * (with the store options the command names) until one stored after its first line of output
 * shows up; what was stored before may come from the backlog it prints first.
 */
function followedEvents(words: readonly string[]): AtWork {
  const option = (name: string) => {
    const at = words.indexOf(`--${name}`);
    return at >= 0 ? words[at + 1] : undefined;
  };
  const name = words[2] as string;
  const layout = option('layout') === 'timeline' ? 'timeline' : 'stream';
  const store = new RedisEventStore(server.createClient(), { prefix: option('prefix') ?? 'mediator:events', layout });
  let stored = 0;
  let lastStoreAt = 0;
  let storedBeforeOutput: number | undefined;
  return {
    async check(stdout) {
      if (stdout.trim() !== '') storedBeforeOutput ??= stored;
      const printed = [...stdout.matchAll(/"n":(\d+)/g)].map((m) => Number(m[1]));
      if (storedBeforeOutput !== undefined && printed.some((n) => n > (storedBeforeOutput as number))) return true;
      if (performance.now() - lastStoreAt >= 200) {
        lastStoreAt = performance.now();
        await store.storeEvent({ name, payload: { n: ++stored } });
      }
      return false;
    },
    close: () => store.close(),
  };
}

/** The highest client id each server has given so far: a newer one is a new connection. */
async function newestClientIds(servers: readonly RedisServer[]): Promise<number[]> {
  return Promise.all(
    servers.map(async (s) => {
      const list = String(await s.command('CLIENT', 'LIST'));
      return Math.max(0, ...[...list.matchAll(/\bid=(\d+)/g)].map((m) => Number(m[1])));
    }),
  );
}

/** Whether a connection newer than `since` is a replica (S), a subscriber (P) or blocked (b). */
async function atWork(servers: readonly RedisServer[], since: readonly number[]): Promise<boolean> {
  for (const [i, s] of servers.entries()) {
    const list = String(await s.command('CLIENT', 'LIST'));
    for (const line of list.split('\n')) {
      const id = Number(/\bid=(\d+)/.exec(line)?.[1] ?? 0);
      if (id > (since[i] ?? 0) && /\bflags=\w*[SPb]/.test(line)) return true;
    }
  }
  return false;
}

async function run(exercise: Extract<Exercise, { run: readonly string[] }>): Promise<RunResult> {
  const [file, ...args] = exercise.run;
  const cwd = file === cli || file === 'redis-cli' ? work : root;
  const atWorkOn = exercise.interruptAtWork;
  const before = Array.isArray(atWorkOn) ? await newestClientIds(atWorkOn) : [];
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, args, {
      cwd,
      env: { ...process.env, REDIS_URL: server.url, NO_COLOR: '1' },
      stdio: [exercise.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const consumer = exercise.pipeTo
      ? spawn(exercise.pipeTo[0] as string, exercise.pipeTo.slice(1), { cwd, stdio: ['pipe', 'pipe', 'pipe'] })
      : undefined;
    let stdout = '';
    let stderr = '';
    let interrupted = false;
    let ended = false;
    const output = consumer?.stdout ?? child.stdout;
    if (consumer) child.stdout?.pipe(consumer.stdin);
    output?.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    for (const from of [child.stderr, consumer?.stderr])
      from?.on('data', (chunk: Buffer) => {
        stderr += chunk;
      });
    if (exercise.stdin !== undefined) child.stdin?.end(exercise.stdin);
    const limit = exercise.timeoutMs ?? 60_000;
    const killer = setTimeout(() => {
      child.kill('SIGKILL');
      consumer?.kill('SIGKILL');
      reject(new Error(`${exercise.run.join(' ')} did not end within ${limit} ms:\n${stdout}\n${stderr}`));
    }, limit);
    const working = !atWorkOn
      ? undefined
      : Array.isArray(atWorkOn)
        ? () => atWork(atWorkOn as readonly RedisServer[], before)
        : () => (atWorkOn as Exclude<AtWork, readonly RedisServer[]>).check(stdout);
    if (working)
      void (async () => {
        while (!ended && !(await working())) await new Promise((r) => setTimeout(r, 25));
        if (ended) return;
        interrupted = true;
        child.kill('SIGINT');
      })().catch(reject);
    const consumerEnded = consumer
      ? new Promise<number | null>((done) => consumer.on('close', (code) => done(code)))
      : Promise.resolve(0);
    child.on('error', reject);
    consumer?.on('error', reject);
    child.on('close', (code, signal) => {
      ended = true;
      clearTimeout(killer);
      const closed =
        atWorkOn && !Array.isArray(atWorkOn) ? (atWorkOn as { close(): Promise<void> }).close() : undefined;
      void Promise.all([consumerEnded, closed]).then(([consumerCode]) => {
        if (consumerCode !== 0) stderr += `\n${exercise.pipeTo?.join(' ')} exited ${consumerCode}`;
        resolve({ code: consumerCode === 0 ? code : consumerCode, signal, stdout, stderr, interrupted });
      });
    });
  });
}
