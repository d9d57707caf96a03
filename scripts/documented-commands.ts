// Lists every command a README tells a person to type: the lines of ```sh blocks and the inline
// code spans that start with a command (./run, pnpm, npm, npx, redis-events, redis-cli). The
// e2e suite (e2e/commands) exercises each of them in a cheap form, so a documented command that
// no longer parses fails the check.
//
//   node scripts/documented-commands.ts          one per line: file:line  command
//   node scripts/documented-commands.ts --json   the same as JSON
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface DocumentedCommand {
  /** `README.md:33`, `packages/cli/README.md:57`... */
  readonly where: string;
  /** The command as a person types it (a pipeline keeps its pipes). */
  readonly command: string;
  /** From a shell block or an inline code span. */
  readonly from: 'block' | 'inline';
}

const COMMAND = /^(\.\/run|pnpm|npm|npx|redis-events|redis-cli)(\s|$)/;
const SHELL_FENCE = /^\s*```(sh|bash|shell|console)\s*$/;

/** The Markdown files whose commands count: the root README, CONTRIBUTING and each package's README. */
export function documentationFiles(root: string): string[] {
  const files = ['README.md', 'CONTRIBUTING.md'];
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    try {
      readFileSync(join(root, 'packages', dir, 'README.md'));
      files.push(`packages/${dir}/README.md`);
    } catch {
      // no README: check:pack reports it
    }
  }
  return files;
}

/** A shell line without its trailing comment (a `#` after white space, outside quotes). */
function withoutComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1] as string))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** Whether a line holds a command of ours: it starts with one, or pipes into one. */
function isCommand(line: string): boolean {
  return line.split(/\s\|\s/).some((part) => COMMAND.test(part.trim()));
}

/** Usage synopses (`redis-events rdb <file>`, `pnpm bench [filter]`) are not commands to type. */
function isSynopsis(span: string): boolean {
  return /<[^>]*>|\[[^\]]*\]|\.\.\.|…/.test(span.replace(/'[^']*'|"[^"]*"/g, ''));
}

/** The documented commands of one Markdown text. */
export function commandsIn(file: string, text: string): DocumentedCommand[] {
  const out: DocumentedCommand[] = [];
  const lines = text.split('\n');
  let fence: 'shell' | 'other' | undefined;
  lines.forEach((raw, i) => {
    const where = `${file}:${i + 1}`;
    if (/^\s*```/.test(raw)) {
      fence = fence ? undefined : SHELL_FENCE.test(raw) ? 'shell' : 'other';
      return;
    }
    if (fence === 'shell') {
      const line = withoutComment(raw).trim();
      if (line && isCommand(line)) out.push({ where, command: line, from: 'block' });
      return;
    }
    if (fence === 'other') return;
    for (const match of raw.matchAll(/`([^`]+)`/g)) {
      const span = (match[1] as string).trim();
      if (COMMAND.test(span) && /\s/.test(span) && !isSynopsis(span))
        out.push({ where, command: span, from: 'inline' });
    }
  });
  return out;
}

/** Every documented command of the repository, in file order. */
export function documentedCommands(root: string): DocumentedCommand[] {
  return documentationFiles(root).flatMap((file) => commandsIn(file, readFileSync(join(root, file), 'utf8')));
}

if (import.meta.main) {
  const commands = documentedCommands(resolve(import.meta.dirname, '..'));
  if (process.argv.includes('--json')) console.log(JSON.stringify(commands, null, 2));
  else for (const c of commands) console.log(`${c.where.padEnd(34)} ${c.command}`);
}
