import { parseArgs } from 'node:util';
import { usage } from './errors.ts';
import type { Terminal } from './terminal.ts';

/** One option of a command. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string | undefined;
  readonly multiple?: boolean | undefined;
  readonly description: string;
  /** Shown in help after the option: `--limit <n>`. */
  readonly value?: string | undefined;
  readonly default?: string | boolean | undefined;
}

/** What a command receives. */
export interface CommandContext {
  readonly positionals: readonly string[];
  readonly options: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly terminal: Terminal;
  /** Aborted by Ctrl-C (SIGINT / SIGTERM) or when stdout is closed: stop and clean up. */
  readonly signal: AbortSignal;
  readonly env: NodeJS.ProcessEnv;
}

/** A subcommand of `redis-events`. */
export interface Command {
  /** `rdb`, or `stream send` for a two-word command. */
  readonly name: string;
  readonly summary: string;
  /** Positional arguments as shown in help: `<file>`, `[url]`. */
  readonly args: string;
  readonly options: Readonly<Record<string, OptionSpec>>;
  /** Longer help: behaviour, output format, examples. */
  readonly details: string;
  /** Resolves with the exit code (0 when it returns nothing). */
  run(context: CommandContext): Promise<number | undefined>;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  help: { type: 'boolean', short: 'h', description: 'show this help' },
  'no-color': { type: 'boolean', description: 'never colour the output (also NO_COLOR=1)' },
  trace: {
    type: 'boolean',
    description: 'print what the command did on Redis to stderr as it happens: each operation and command, how long',
  },
};

/** Parses a command's arguments; unknown options and missing values are usage errors. */
export function parseCommandArgs(
  command: Command,
  argv: readonly string[],
): { positionals: string[]; options: Record<string, string | boolean | string[] | undefined> } {
  const all = { ...GLOBAL_OPTIONS, ...command.options };
  const options: Record<
    string,
    { type: 'string' | 'boolean'; short?: string | undefined; multiple?: boolean | undefined }
  > = {};
  for (const [name, spec] of Object.entries(all)) {
    options[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true } : {}),
    };
  }
  // `--db -1`: parseArgs takes -1 for an option; a number after an option that takes a value is
  // that value, so that the option's own check can say what is wrong with it.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    const spec = arg.startsWith('--')
      ? all[arg.slice(2)]
      : /^-[a-zA-Z]$/.test(arg)
        ? Object.values(all).find((o) => o.short === arg.slice(1))
        : undefined;
    if (spec?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${arg}=${next}`);
      i++;
    } else args.push(arg);
  }
  try {
    const parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    const values: Record<string, string | boolean | string[] | undefined> = {};
    for (const [name, spec] of Object.entries(all))
      values[name] = (parsed.values as Record<string, string | boolean | string[] | undefined>)[name] ?? spec.default;
    return { positionals: parsed.positionals, options: values };
  } catch (err) {
    // Node's messages run over several lines with advice for its own API: one line of ours.
    const text = (err as Error).message
      .replace(/\. To specify a positional argument.*$/s, '')
      .replace(/\. Did you forget.*$/s, '')
      .replace(/\s+/g, ' ')
      .trim();
    throw usage(`${text} (see redis-events ${command.name} --help)`);
  }
}

/** The help text of one command. */
export function commandHelp(command: Command): string {
  const lines = [
    `Usage: redis-events ${command.name}${command.args ? ` ${command.args}` : ''} [options]`,
    '',
    command.summary,
    '',
  ];
  const entries = Object.entries({ ...command.options, ...GLOBAL_OPTIONS });
  const labels = entries.map(
    ([name, spec]) => `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` <${spec.value}>` : ''}`,
  );
  const width = Math.max(...labels.map((l) => l.length)) + 2;
  lines.push('Options:');
  entries.forEach(([, spec], i) => {
    const dflt = spec.default !== undefined && spec.type === 'string' ? ` (default ${spec.default})` : '';
    lines.push(`  ${(labels[i] ?? '').padEnd(width)}${spec.description}${dflt}`);
  });
  if (command.details) lines.push('', command.details.trim());
  return `${lines.join('\n')}\n`;
}

/** An integer option value, or a usage error that names the option. */
export function intOption(
  value: unknown,
  name: string,
  { min = 0, fallback }: { min?: number | undefined; fallback?: number | undefined } = {},
): number {
  if (value === undefined || value === '') {
    if (fallback !== undefined) return fallback;
    throw usage(`--${name} needs a value`);
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min)
    throw usage(`--${name} must be an integer >= ${min}, got "${String(value)}"`);
  return n;
}

/** One of the allowed words, or a usage error. */
export function choiceOption<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  throw usage(`--${name} must be one of ${choices.join(', ')}, got "${String(value)}"`);
}
