// A consumer project outside the workspace, as a user gets one: our packages packed as pnpm
// would publish them, installed with npm from the tarballs into an empty project.
//
// Everything else the project installs comes at the version the workspace lockfile pins, so a
// check of a given commit passes or fails the same way next month: the peers and tools we name
// (ioredis, @types/node...) are installed at their locked versions, every other package of the
// lockfile is forced to its locked version with npm `overrides`, and after the install the
// tree is compared with the lockfile. `pnpm canary` (scripts/canary.sh) is where newer
// versions are tried: it runs these tests in a worktree whose lockfile was updated first.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export const root: string = join(import.meta.dirname, '..', '..');
export const tsc: string = join(root, 'node_modules', '.bin', 'tsc');

export interface Manifest {
  name: string;
  version: string;
  bin?: Record<string, string>;
  exports?: Record<string, unknown>;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/** The published packages of the workspace: `packages/<dir>` without `private`. */
export const published: { dir: string; manifest: Manifest }[] = readdirSync(join(root, 'packages'))
  .map((dir) => ({
    dir,
    manifest: JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as Manifest,
  }))
  .filter(({ manifest }) => !manifest.private);

/** Packs every published package into `work`; returns package name → tarball path. */
export function packAll(work: string): Map<string, string> {
  const tarballs = new Map<string, string>();
  for (const { dir, manifest } of published) {
    const out = execFileSync('pnpm', ['pack', '--pack-destination', work], {
      cwd: join(root, 'packages', dir),
      encoding: 'utf8',
    });
    const file = out.trim().split('\n').pop() ?? '';
    if (!file.endsWith('.tgz')) throw new Error(`pnpm pack printed no tarball for ${manifest.name}: ${out}`);
    tarballs.set(manifest.name, file);
  }
  return tarballs;
}

/** The package's tarball and those of the internal packages it needs, transitively. */
export function tarballsFor(tarballs: Map<string, string>, name: string, seen = new Set<string>()): string[] {
  if (seen.has(name)) return [];
  seen.add(name);
  const own = tarballs.get(name);
  if (!own) throw new Error(`${name} was not packed`);
  const manifest = published.find((p) => p.manifest.name === name)?.manifest;
  const internal = Object.keys(manifest?.dependencies ?? {}).filter((dep) => dep.startsWith('@redis-events/'));
  return [own, ...internal.flatMap((dep) => tarballsFor(tarballs, dep, seen))];
}

interface Lockfile {
  importers?: Record<string, Record<string, Record<string, { version: string }>>>;
  packages?: Record<string, unknown>;
}

let lockfile: Lockfile | undefined;
let locked: Map<string, Set<string>> | undefined;

function readLockfile(): Lockfile {
  lockfile ??= parse(readFileSync(join(root, 'pnpm-lock.yaml'), 'utf8')) as Lockfile;
  return lockfile;
}

/** Every third-party package of the workspace lockfile: name → the versions it pins. */
export function lockedVersions(): Map<string, Set<string>> {
  if (locked) return locked;
  const lock = readLockfile();
  locked = new Map();
  for (const key of Object.keys(lock.packages ?? {})) {
    // 'name@1.2.3', '@scope/name@1.2.3' (peer suffixes such as '(x@1)' only appear in snapshots)
    const at = key.lastIndexOf('@');
    if (at <= 0) continue;
    const name = key.slice(0, at);
    const versions = locked.get(name) ?? new Set<string>();
    versions.add(key.slice(at + 1));
    locked.set(name, versions);
  }
  return locked;
}

/**
 * The version the workspace uses for `name`: what the root (or else the e2e) project depends on,
 * or else the one version the lockfile pins. Fails when that is ambiguous.
 */
export function lockedVersion(name: string): string {
  for (const importer of ['.', 'e2e']) {
    const project = readLockfile().importers?.[importer] ?? {};
    const entry = project.devDependencies?.[name] ?? project.dependencies?.[name];
    if (entry) return entry.version.split('(')[0] as string;
  }
  const versions = [...(lockedVersions().get(name) ?? [])];
  if (versions.length !== 1)
    throw new Error(
      `the workspace lockfile pins ${versions.length === 0 ? 'no version' : `several versions (${versions.join(', ')})`} of ${name}; a consumer project needs exactly one`,
    );
  return versions[0] as string;
}

interface NpmTree {
  version?: string;
  dependencies?: Record<string, NpmTree>;
}

/**
 * Creates an npm project in a new folder under `parent` and installs `tarballs` and the named
 * third-party packages (at their locked versions). Returns the project folder.
 */
export function createConsumer(parent: string, tarballs: string[], thirdParty: string[]): string {
  const project = mkdtempSync(join(parent, 'project-'));
  mkdirSync(project, { recursive: true });
  const direct = new Set(thirdParty);
  // npm refuses an override for a package the project depends on directly, unless the specs
  // match: direct packages are installed with --save-exact at the same locked version.
  const overrides: Record<string, string> = {};
  for (const [name, versions] of lockedVersions()) {
    if (versions.size === 1 && !name.startsWith('@redis-events/')) overrides[name] = [...versions][0] as string;
  }
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', private: true, type: 'module', overrides }, null, 2),
  );
  execFileSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      '--save-exact',
      ...tarballs,
      ...[...direct].map((name) => `${name}@${lockedVersion(name)}`),
    ],
    { cwd: project, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const strays = unlockedPackages(project);
  if (strays.length > 0)
    throw new Error(
      `the consumer project installed packages that the workspace lockfile does not pin (${strays.join(', ')}): add them to a workspace package's devDependencies so that pnpm-lock.yaml pins them`,
    );
  return project;
}

/** Installed third-party packages whose version the workspace lockfile does not have. */
function unlockedPackages(project: string): string[] {
  let json: string;
  try {
    json = execFileSync('npm', ['ls', '--all', '--json'], { cwd: project, encoding: 'utf8', maxBuffer: 1 << 26 });
  } catch (err) {
    // npm ls exits 1 on peer problems but still prints the tree
    json = (err as { stdout?: string }).stdout ?? '{}';
  }
  const out = new Set<string>();
  const visit = (deps: Record<string, NpmTree> | undefined) => {
    for (const [name, node] of Object.entries(deps ?? {})) {
      if (node.version === undefined || name.startsWith('@redis-events/')) continue;
      if (!lockedVersions().get(name)?.has(node.version)) out.add(`${name}@${node.version}`);
      visit(node.dependencies);
    }
  };
  visit((JSON.parse(json) as NpmTree).dependencies);
  return [...out].sort();
}
