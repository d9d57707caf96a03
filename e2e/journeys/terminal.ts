// A real terminal for journey tests: tmux gives each program a pseudo-terminal of its own, typed
// into with send-keys (Ctrl-C included, delivered by the terminal's line discipline as a person's
// would be) and read back from a raw log of every byte the program wrote to it.
//
// Each session runs on a tmux server of its own (its own socket in a temporary folder), killed
// when the session is disposed; nothing is shared with a person's tmux.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The tmux binary, or a message saying how to get it. */
export function tmuxAvailable(): string | undefined {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'tmux is not installed: ./run installs it with apt (scripts/bootstrap.sh), or apt-get install tmux';
  }
}

/** How a program in the terminal ended. */
export interface Ended {
  /** Exit status, or 128 + the signal's number when a signal killed it. */
  readonly code: number;
  /** Milliseconds from the moment {@link TerminalSession.waitForExit} was called (or a key sent). */
  readonly ms: number;
}

/** Options of {@link TerminalSession.start}. */
export interface StartOptions {
  readonly cwd?: string | undefined;
  /** Added to the environment (TERM is xterm-256color unless given). */
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly columns?: number | undefined;
  readonly rows?: number | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Pids of every process below `pid` (children, grandchildren...), from /proc. */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(Number(name));
    if (!fields) continue; // gone meanwhile
    const ppid = Number(fields[1]);
    const list = parents.get(ppid) ?? [];
    list.push(Number(name));
    parents.set(ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    for (const child of parents.get(next) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

/** The fields of /proc/<pid>/stat after the command name (state first), or undefined when gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** True while a process with this pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== undefined && fields[0] !== 'Z';
}

/**
 * How a process that has ended but is not reaped yet (a zombie) ended, from the kernel's own
 * record (field 52 of /proc/<pid>/stat, in waitpid's encoding): its exit status, or 128 + the
 * signal that killed it. Undefined while it runs, or once its parent has reaped it.
 */
export function zombieExitCode(pid: number): number | undefined {
  const fields = statFields(pid);
  if (fields?.[0] !== 'Z') return undefined;
  const status = Number(fields[49]);
  if (!Number.isInteger(status)) return undefined;
  return (status & 0x7f) === 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);
}

/** The command line of a process, or '' when it is gone. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
  } catch {
    return '';
  }
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** One program running in a pseudo-terminal of its own. */
export class TerminalSession {
  readonly #dir: string;
  readonly #socket: string;
  readonly #log: string;
  #disposed = false;
  #pid: number | undefined;
  #serverPid: number | undefined;
  /** How the program ended, once known (it cannot change after). */
  #ended: number | undefined;

  private constructor(dir: string) {
    this.#dir = dir;
    this.#socket = join(dir, 'tmux.sock');
    this.#log = join(dir, 'pane.log');
  }

  #tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.#socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
  }

  /**
   * Starts `argv` in a new terminal. The pane first runs a placeholder so that the byte log is
   * attached before the program writes anything, then the program replaces it.
   */
  static start(argv: readonly string[], options: StartOptions = {}): TerminalSession {
    const session = new TerminalSession(mkdtempSync(join(tmpdir(), 'redis-events-pty-')));
    const columns = String(options.columns ?? 120);
    const rows = String(options.rows ?? 40);
    session.#tmux('new-session', '-d', '-s', 'j', '-x', columns, '-y', rows, 'sleep 600');
    session.#tmux('set-option', '-t', 'j', 'remain-on-exit', 'on');
    session.#tmux('set-option', '-t', 'j', 'history-limit', '50000');
    session.#tmux('pipe-pane', '-t', 'j', '-o', `cat >> '${session.#log}'`);
    const env = { TERM: 'xterm-256color', ...options.env };
    // The folder and the environment through env(1), which execs the program in place: tmux
    // 3.3a records no exit status for a pane respawned with its own -c or -e.
    session.#tmux(
      'respawn-pane',
      '-k',
      '-t',
      'j',
      'env',
      ...(options.cwd ? ['-C', options.cwd] : []),
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      ...argv,
    );
    session.#pid = Number(session.#tmux('display-message', '-p', '-t', 'j', '#{pane_pid}').trim());
    session.#serverPid = Number(session.#tmux('display-message', '-p', '#{pid}').trim());
    return session;
  }

  /** The pid of the program (the pane's process, which env(1) replaced by the program). */
  get pid(): number {
    this.#pid ??= Number(this.#tmux('display-message', '-p', '-t', 'j', '#{pane_pid}').trim());
    return this.#pid;
  }

  /** Every byte the program wrote to the terminal so far, escape sequences included. */
  raw(): string {
    try {
      return readFileSync(this.#log, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * What the screen shows now (with the scrollback), as plain text; without the line tmux adds
   * below an ended program ("Pane is dead (status 0, <date>)"), which the program never wrote.
   */
  screen(): string {
    return this.#tmux('capture-pane', '-p', '-J', '-t', 'j', '-S', '-', '-E', '-')
      .replace(/^Pane is dead \(.*\)\n*$/m, '')
      .replace(/\n+$/, '\n');
  }

  /** Types keys: `C-c` for Ctrl-C, `Enter`, or literal text with `literal`. */
  keys(keys: string, literal = false): void {
    this.#tmux('send-keys', '-t', 'j', ...(literal ? ['-l'] : []), keys);
  }

  /**
   * Whether the program has ended, and how. The kernel says it first: an ended program is a
   * zombie until tmux reaps it, and /proc holds its status meanwhile. tmux's own record comes
   * from its SIGCHLD handler, which on a busy machine has been seen to miss the signal and leave
   * the pane "running" for good, so the zombie is read directly and tmux is reminded to reap it.
   */
  status(): { dead: boolean; code: number } {
    if (this.#ended !== undefined) return { dead: true, code: this.#ended };
    const pid = this.pid;
    if (alive(pid)) return { dead: false, code: -1 };
    const zombie = zombieExitCode(pid);
    if (zombie !== undefined) {
      this.#ended = zombie;
      this.#remindTmux();
      return { dead: true, code: zombie };
    }
    // Reaped: tmux recorded the status when it did.
    const [dead, status, signal] = this.#tmux(
      'display-message',
      '-p',
      '-t',
      'j',
      '#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}',
    )
      .trim()
      .split('|');
    if (dead !== '1') return { dead: false, code: -1 };
    if (signal) this.#ended = 128 + Number(signal);
    else if (status) this.#ended = Number(status);
    else return { dead: false, code: -1 }; // tmux has not recorded the status yet
    return { dead: true, code: this.#ended };
  }

  /**
   * Once the program has ended: waits until tmux has read all it wrote (the pane is dead: its
   * terminal reached end of file) and the byte log has caught up with the screen (its last line
   * is in the log), so that what a test reads after the exit is everything. Bounded: a slow
   * machine delays the log by milliseconds, not seconds.
   */
  async #settled(): Promise<void> {
    const deadline = performance.now() + 15_000;
    for (;;) {
      const dead = this.#tmux('display-message', '-p', '-t', 'j', '#{pane_dead}').trim() === '1';
      if (dead) {
        const last =
          this.screen()
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l !== '')
            .at(-1) ?? '';
        if (plain(this.raw()).includes(last)) return;
      } else this.#remindTmux();
      if (performance.now() > deadline)
        throw new Error(`the terminal's log never caught up with the screen; the log holds:\n${this.raw()}`);
      await sleep(20);
    }
  }

  /** A SIGCHLD to this session's tmux server, so that it reaps the pane's ended process. */
  #remindTmux(): void {
    try {
      if (this.#serverPid) process.kill(this.#serverPid, 'SIGCHLD');
    } catch {
      // the server is gone
    }
  }

  /** Waits until `check(raw output)` holds; fails after `timeoutMs` with what was printed. */
  async waitFor(what: string, check: (raw: string) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const raw = this.raw();
      if (check(raw)) return;
      if (this.status().dead) {
        await this.#settled();
        if (check(this.raw())) return;
        throw new Error(`the program ended before ${what}; it printed:\n${this.raw()}`);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; it printed:\n${raw}`);
      await sleep(25);
    }
  }

  /**
   * Waits for the program to end, at most `timeoutMs`; `ms` counts from `since` (a
   * performance.now() taken when the stop was asked), else from this call, to the moment the
   * process was seen gone in /proc.
   */
  async waitForExit(timeoutMs = 30_000, since = performance.now()): Promise<Ended> {
    const deadline = performance.now() + timeoutMs;
    let goneAt: number | undefined;
    for (;;) {
      if (goneAt === undefined && !alive(this.pid)) goneAt = performance.now();
      const s = this.status();
      if (s.dead) {
        const ms = Math.round((goneAt ?? performance.now()) - since);
        await this.#settled();
        return { code: s.code, ms };
      }
      if (performance.now() > deadline && goneAt === undefined)
        throw new Error(`still running after ${timeoutMs} ms; it printed:\n${this.raw()}`);
      if (goneAt !== undefined && performance.now() > goneAt + 10_000)
        throw new Error('the program is gone but neither /proc nor tmux kept its exit status');
      await sleep(10);
    }
  }

  /** Sends a signal to the program alone (as `kill` would), not through the terminal. */
  signal(name: 'SIGINT' | 'SIGTERM' | 'SIGHUP'): void {
    process.kill(this.pid, SIGNALS[name]);
  }

  /** Ends the tmux server of this session (and anything still in its terminal) and its files. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    try {
      this.#tmux('kill-server');
    } catch {
      // already gone
    }
    rmSync(this.#dir, { recursive: true, force: true });
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

const ESC = String.fromCharCode(0x1b);

/** The text without ANSI escape sequences and carriage-return redraws (the last state of each line). */
export function plain(raw: string): string {
  return raw
    .replace(new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g'), '')
    .replace(new RegExp(`${ESC}[()][A-Z0-9]`, 'g'), '')
    .split('\n')
    .map((line) => line.replace(/\r$/, '').split('\r').at(-1) ?? '')
    .join('\n');
}
