import { createRequire } from 'node:module';
import { type Command, commandHelp, parseCommandArgs } from './command.ts';
import { aofCommand } from './commands/aof.ts';
import { compareCommand } from './commands/compare.ts';
import { demoCommand } from './commands/demo.ts';
import { eventsCommand } from './commands/events.ts';
import { pubCommand, subCommand } from './commands/pubsub.ts';
import { rdbCommand } from './commands/rdb.ts';
import { streamRecvCommand, streamSendCommand } from './commands/stream.ts';
import { syncCommand } from './commands/sync.ts';
import { tailCommand } from './commands/tail.ts';
import { CliError, ExitCode, stopExitCode } from './errors.ts';
import { Terminal, type TerminalStreams } from './terminal.ts';
import { type CommandTrace, startCommandTrace } from './trace.ts';

/** Every command, in the order `redis-events --help` lists them. */
export const COMMANDS: readonly Command[] = [
  demoCommand,
  tailCommand,
  rdbCommand,
  aofCommand,
  syncCommand,
  compareCommand,
  subCommand,
  pubCommand,
  eventsCommand,
  streamSendCommand,
  streamRecvCommand,
];

function version(): string {
  return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
}

function generalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'Usage: redis-events <command> [options]',
    '',
    'Event-driven work on Redis from the command line.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'Options:',
    '  -h, --help     help for redis-events, or for a command: redis-events <command> --help',
    '  -v, --version  the version',
    '',
    'Data goes to stdout, messages and progress to stderr. Colour on a terminal; NO_COLOR or',
    '--no-color turn it off, FORCE_COLOR=1 on. Exit codes: 0 done, 1 failed, 2 wrong usage,',
    '130 stopped by Ctrl-C, 143 stopped by SIGTERM.',
    '',
  ].join('\n');
}

function findCommand(argv: readonly string[]): { command: Command; rest: readonly string[] } | undefined {
  const two = `${argv[0]} ${argv[1]}`;
  const byTwo = COMMANDS.find((c) => c.name === two);
  if (byTwo) return { command: byTwo, rest: argv.slice(2) };
  const byOne = COMMANDS.find((c) => c.name === argv[0]);
  return byOne ? { command: byOne, rest: argv.slice(1) } : undefined;
}

/** Options of {@link main}, for tests and embedding. */
export interface MainOptions {
  readonly streams?: TerminalStreams | undefined;
  /** Aborting it stops the running command as Ctrl-C does. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Runs `redis-events` with these arguments and resolves with the exit code. The binary calls it
 * with `process.argv.slice(2)` and wires Ctrl-C to `signal`.
 *
 * @example
 * ```ts
 * const code = await main(['rdb', 'dump.rdb', '--memory']);
 * ```
 */
export async function main(argv: readonly string[], options: MainOptions = {}): Promise<number> {
  const streams = options.streams ?? { out: process.stdout, err: process.stderr, env: process.env };
  const controller = new AbortController();
  const outer = options.signal;
  const onOuterAbort = () => controller.abort(outer?.reason);
  outer?.addEventListener('abort', onOuterAbort, { once: true });
  let stdoutClosed = false;
  const terminal = new Terminal(streams, {
    noColor: argv.includes('--no-color'),
    onClosed: () => {
      stdoutClosed = true;
      controller.abort(new Error('stdout closed'));
    },
  });
  let tracing: CommandTrace | undefined;
  try {
    if (argv.length === 0) {
      streams.err.write(generalHelp());
      return ExitCode.usage;
    }
    if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      const target = argv[1] ? findCommand(argv.slice(1)) : undefined;
      streams.out.write(target ? commandHelp(target.command) : generalHelp());
      return ExitCode.ok;
    }
    if (argv[0] === '--version' || argv[0] === '-v') {
      streams.out.write(`${version()}\n`);
      return ExitCode.ok;
    }
    const found = findCommand(argv);
    if (!found) {
      terminal.info(
        `redis-events: unknown command "${argv[0]}"; the commands are: ${COMMANDS.map((c) => c.name).join(', ')}`,
      );
      return ExitCode.usage;
    }
    const { command, rest } = found;
    const parsed = parseCommandArgs(command, rest);
    if (parsed.options.help === true) {
      streams.out.write(commandHelp(command));
      return ExitCode.ok;
    }
    if (parsed.options.trace === true) tracing = startCommandTrace((line) => terminal.info(line));
    const code = await command.run({ ...parsed, terminal, signal: controller.signal, env: streams.env });
    if (stdoutClosed) return ExitCode.ok;
    if (controller.signal.aborted) return stopExitCode(controller.signal.reason);
    return code ?? ExitCode.ok;
  } catch (err) {
    terminal.clearProgress();
    if (stdoutClosed) return ExitCode.ok;
    if (controller.signal.aborted && !(err instanceof CliError)) return stopExitCode(controller.signal.reason);
    const name = findCommand(argv)?.command.name;
    const where = name ? `redis-events ${name}` : 'redis-events';
    if (err instanceof CliError) {
      terminal.info(`${where}: ${err.message}`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    terminal.info(`${where}: ${message}`);
    if (streams.env.REDIS_EVENTS_DEBUG) terminal.info(String((err as Error).stack ?? err));
    return ExitCode.failure;
  } finally {
    tracing?.stop(`redis-events ${findCommand(argv)?.command.name ?? ''}`.trim());
    outer?.removeEventListener('abort', onOuterAbort);
  }
}
