// The ```ts blocks of every README (root and packages), as the README test runs them.
//
// A block is one of three kinds, chosen by an HTML comment right before its fence (invisible
// on a rendered page):
//
//   (none)                          a whole program: typechecked, then run against a real Redis
//   <!-- fragment: <what it needs>  a fragment: typechecked after the preamble that follows on
//   import type { Redis } ...          the comment's next lines (imports and `declare const`
//   declare const redis: Redis;        lines only: the minimum the fragment refers to)
//   -->
//   <!-- typecheck only: <reason> -->  a whole program that cannot run here (it needs a host
//                                       of the reader's, a test runner...): typechecked only
//
// Output stated in a program's comments is checked when it is written as `// => <output>` at
// the end of a one-line statement (the value of an expression, or what a console.log line
// prints), or as a `// prints:` comment whose following `// ` lines are lines the program
// prints, in that order. `…` stands for any text; runs of white space compare equal.
//
// Programs run in an empty folder holding dump.rdb and small-dump.rdb (a few keys of each
// common type), with a Redis reachable at 127.0.0.1:6379 and REDIS_URL pointing there.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export type BlockKind = 'program' | 'fragment' | 'typecheck';

export interface ReadmeBlock {
  /** The README, relative to the repository root. */
  readme: string;
  /** `resp`, `pubsub`... or `root`. */
  pkg: string;
  /** 1-based index of the block among the README's ts blocks. */
  index: number;
  /** README line of the block's first code line. */
  line: number;
  code: string;
  kind: BlockKind;
  /** Lines typechecked before a fragment. */
  preamble: string;
  /** Why a `typecheck only` block does not run. */
  reason: string | undefined;
}

export interface OutputCheck {
  /** README line of the statement. */
  line: number;
  /** 0-based line within the block. */
  blockLine: number;
  /** The statement without its comment and final semicolon. */
  statement: string;
  expected: string;
}

/** Every README of the repository that holds code: the root one and each package's. */
export function readmes(root: string): { readme: string; pkg: string }[] {
  const out = [{ readme: 'README.md', pkg: 'root' }];
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    try {
      readFileSync(join(root, 'packages', dir, 'README.md'));
      out.push({ readme: `packages/${dir}/README.md`, pkg: dir });
    } catch {
      // a package without a README is reported by check:pack, not here
    }
  }
  return out;
}

/** The ts blocks of one README. Throws on a block whose kind cannot be told. */
export function extractBlocks(readme: string, pkg: string, text: string): ReadmeBlock[] {
  const lines = text.split('\n');
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(\s*)```(\w*)/.exec(lines[i] as string);
    if (!fence) continue;
    const end = lines.findIndex((l, j) => j > i && /^\s*```\s*$/.test(l));
    if (end < 0) throw new Error(`${readme}:${i + 1}: a code fence that never closes`);
    const isTs = fence[2] === 'ts' || fence[2] === 'typescript';
    if (isTs) {
      const code = lines.slice(i + 1, end).join('\n');
      const directive = directiveBefore(lines, i);
      const block: ReadmeBlock = {
        readme,
        pkg,
        index: blocks.length + 1,
        line: i + 2,
        code,
        kind: directive.kind,
        preamble: directive.preamble,
        reason: directive.reason,
      };
      if (block.kind !== 'fragment' && !/^\s*import\s/m.test(code))
        throw new Error(
          `${readme}:${i + 1}: this ts block imports nothing, so it is not a whole program: put a "<!-- fragment: ... -->" comment with its preamble before it`,
        );
      blocks.push(block);
    }
    i = end;
  }
  return blocks;
}

function directiveBefore(
  lines: string[],
  fence: number,
): { kind: BlockKind; preamble: string; reason: string | undefined } {
  let j = fence - 1;
  while (j >= 0 && (lines[j] as string).trim() === '') j--;
  if (j < 0 || !(lines[j] as string).trim().endsWith('-->'))
    return { kind: 'program', preamble: '', reason: undefined };
  let start = j;
  while (start >= 0 && !(lines[start] as string).includes('<!--')) start--;
  if (start < 0) return { kind: 'program', preamble: '', reason: undefined };
  const comment = lines
    .slice(start, j + 1)
    .join('\n')
    .replace(/^\s*<!--\s*/, '')
    .replace(/\s*-->\s*$/, '');
  const [first = '', ...rest] = comment.split('\n');
  if (first.startsWith('fragment')) return { kind: 'fragment', preamble: rest.join('\n'), reason: undefined };
  const only = /^typecheck only:\s*(.+)$/.exec(first);
  if (only) return { kind: 'typecheck', preamble: '', reason: only[1] };
  return { kind: 'program', preamble: '', reason: undefined };
}

/**
 * The `// => output` statements of a block: a one-line statement whose value is stated, or one
 * that holds a `console.log(...)` call (`if (x) console.log(y); // => ...`) whose output is.
 */
export function outputChecks(block: ReadmeBlock): OutputCheck[] {
  const checks: OutputCheck[] = [];
  block.code.split('\n').forEach((text, blockLine) => {
    const m = /^(\s*)(.+?);?\s*\/\/ => (.+)$/.exec(text);
    if (!m) return;
    const statement = (m[2] as string).replace(/;\s*$/, '');
    if (!statement.includes('console.log(') && /^(const|let|var|import|export|for|if|while)\b/.test(statement))
      throw new Error(
        `${block.readme}:${block.line + blockLine}: "// =>" must end an expression statement or a console.log line`,
      );
    checks.push({ line: block.line + blockLine, blockLine, statement, expected: (m[3] as string).trim() });
  });
  return checks;
}

/** The lines of a block's `// prints:` comment (empty when it has none). */
export function printedLines(block: ReadmeBlock): string[] {
  const lines = block.code.split('\n');
  const at = lines.findIndex((l) => /^\s*\/\/ prints:\s*$/.test(l));
  if (at < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(at + 1)) {
    const m = /^\s*\/\/ ?(.*)$/.exec(l);
    if (!m) break;
    out.push(m[1] as string);
  }
  return out;
}

/**
 * The program a block runs as: `// =>` statements become calls that check their output
 * (`__readme` comes from the runner's preload, which also checks that each of them ran). Line
 * numbers are kept.
 */
export function instrument(block: ReadmeBlock): string {
  const lines = block.code.split('\n');
  for (const check of outputChecks(block)) {
    const indent = /^\s*/.exec(lines[check.blockLine] as string)?.[0] ?? '';
    const where = JSON.stringify(`${block.readme}:${check.line}`);
    const expected = JSON.stringify(check.expected);
    lines[check.blockLine] = check.statement.includes('console.log(')
      ? `${indent}${check.statement.replace('console.log(', `__readme.log(${where}, ${expected}, `)};`
      : `${indent}__readme.value(${where}, ${expected}, (${check.statement}));`;
  }
  return `${lines.join('\n')}\n`;
}
