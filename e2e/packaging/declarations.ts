// Reads shipped declaration files with a real TypeScript parser (oxc) and reports optional
// properties that reject `undefined` under `exactOptionalPropertyTypes`.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseSync } from 'oxc-parser';

interface Node {
  type?: string;
  start: number;
  end: number;
  optional?: boolean;
  typeAnnotation?: Node & { typeAnnotation?: Node };
  types?: Node[];
  [key: string]: unknown;
}

/** True when the type admits `undefined` as written: a union naming it, `unknown` or `any`. */
function admitsUndefined(type: Node | undefined): boolean {
  if (!type) return false;
  switch (type.type) {
    case 'TSUndefinedKeyword':
    case 'TSUnknownKeyword':
    case 'TSAnyKeyword':
      return true;
    case 'TSUnionType':
      return (type.types ?? []).some(admitsUndefined);
    case 'TSParenthesizedType':
      return admitsUndefined(type.typeAnnotation);
    default:
      return false;
  }
}

/**
 * The optional properties (interfaces, type literals, classes) and optional methods of one
 * declaration text whose type does not admit `undefined`, as `file:line: text`.
 */
export function scanDeclarations(file: string, text: string): string[] {
  const { program, errors } = parseSync(file, text);
  if (errors.length > 0) throw new Error(`${file} does not parse: ${errors[0]?.message}`);
  const found: string[] = [];
  const lineOf = (offset: number) => text.slice(0, offset).split('\n').length;
  const stack: unknown[] = [program];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      stack.push(...value);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const node = value as Node;
    if (node.optional === true) {
      // an optional method cannot be given undefined either: declare it as a property
      const rejects =
        node.type === 'TSMethodSignature' ||
        ((node.type === 'TSPropertySignature' || node.type === 'PropertyDefinition') &&
          !admitsUndefined(node.typeAnnotation?.typeAnnotation));
      if (rejects) found.push(`${file}:${lineOf(node.start)}: ${text.slice(node.start, node.end).split('\n')[0]}`);
    }
    for (const [key, child] of Object.entries(node)) if (key !== 'parent') stack.push(child);
  }
  return found;
}

/** {@link scanDeclarations} over every `.d.ts` under `dir` (paths reported relative to it). */
export function optionalWithoutUndefined(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.d.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    if (path.includes(`${join(dir, 'node_modules')}`)) continue;
    found.push(...scanDeclarations(relative(dir, path), readFileSync(path, 'utf8')));
  }
  return found.sort();
}
