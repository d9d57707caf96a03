import type { Writable } from 'node:stream';

/** Where a command writes: data to `out` (stdout), messages and progress to `err` (stderr). */
export interface TerminalStreams {
  readonly out: Writable & { isTTY?: boolean | undefined };
  readonly err: Writable & { isTTY?: boolean | undefined; columns?: number | undefined };
  readonly env: NodeJS.ProcessEnv;
}

/** Options of {@link Terminal}. */
export interface TerminalOptions {
  /** `--no-color` was given: no colour whatever the environment says. */
  readonly noColor?: boolean | undefined;
  /** Called once when stdout is closed by its reader (`| head`). */
  readonly onClosed?: (() => void) | undefined;
  /** The clock of progress rates, in ms (tests give their own). Default `performance.now`. */
  readonly now?: (() => number) | undefined;
}

const MiB = 1024 * 1024;

/** Formats a byte count for people: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.20 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < MiB) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${(n / 1024 / MiB).toFixed(2)} GiB`;
}

/** Formats a duration for people: `4 s`, `2 min 5 s`, `1 h 3 min`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** `1 key`, `2 keys`: a count with its noun, singular or plural. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Whether colour is on for a stream, by the usual conventions, strongest first: `--no-color`;
 * `FORCE_COLOR` (`0` or `false` turns colour off, any other non-empty value on, even into a pipe:
 * https://force-color.org); `NO_COLOR` non-empty turns it off (https://no-color.org); else colour
 * on a terminal whose `TERM` is not `dumb`.
 */
export function colorEnabled(
  stream: { isTTY?: boolean | undefined },
  env: NodeJS.ProcessEnv,
  noColorFlag = false,
): boolean {
  if (noColorFlag) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR) return false;
  return Boolean(stream.isTTY) && env.TERM !== 'dumb';
}

/** What a progress bar counts: bytes (`12.0 MiB`, `3.1 MiB/s`) or things (`1,200 keys`, `300 keys/s`). */
export type ProgressUnit = 'bytes' | { readonly one: string; readonly many: string };

function formatAmount(n: number, unit: ProgressUnit): string {
  return unit === 'bytes' ? formatBytes(n) : Math.round(n).toLocaleString('en-US');
}

interface ProgressState {
  label: string;
  unit: ProgressUnit;
  /** Start of the measurement window: time and amount done then. */
  startAt: number;
  startDone: number;
  /** Bytes per second, smoothed. */
  rate: number | undefined;
  lastAt: number;
  lastDone: number;
  /** The last call's arguments, to redraw after a data line. */
  done: number;
  total: number | undefined;
}

/**
 * The command's view of the terminal. Colour by {@link colorEnabled}; progress bars only on a
 * terminal stderr. Writing to a closed pipe (`redis-events rdb dump.rdb | head`) ends the
 * command quietly.
 */
export class Terminal {
  readonly streams: TerminalStreams;
  /** Colour on stdout / stderr. */
  readonly colorOut: boolean;
  readonly colorErr: boolean;
  /** Set when stdout was closed by its reader; commands stop producing. */
  closed = false;
  readonly #onClosed: () => void;
  readonly #now: () => number;
  #progressShown = false;
  #progress: ProgressState | undefined;

  constructor(streams: TerminalStreams, options: TerminalOptions = {}) {
    this.streams = streams;
    this.colorOut = colorEnabled(streams.out, streams.env, options.noColor === true);
    this.colorErr = colorEnabled(streams.err, streams.env, options.noColor === true);
    this.#onClosed = options.onClosed ?? (() => {});
    this.#now = options.now ?? (() => performance.now());
    streams.out.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') {
        this.closed = true;
        this.#onClosed();
      } else throw err;
    });
  }

  /** SGR colour for stdout text (`style(32, 'ok')`), plain when colour is off. */
  style(code: number | string, text: string): string {
    return this.colorOut ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  /** SGR colour for stderr text. */
  styleErr(code: number | string, text: string): string {
    return this.colorErr ? `\x1b[${code}m${text}\x1b[0m` : text;
  }

  /** Writes one line of data to stdout, waiting when the reader is slower than we are. */
  async line(text: string): Promise<void> {
    if (this.closed) return;
    // A bar on the same terminal would be torn by the line; into a file or a pipe it stays.
    if (this.streams.out.isTTY) this.clearProgress();
    if (!this.streams.out.write(`${text}\n`)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.streams.out.off('drain', done);
          this.streams.out.off('close', done);
          resolve();
        };
        this.streams.out.once('drain', done);
        this.streams.out.once('close', done);
      });
    }
  }

  /** A message for people, on stderr. */
  info(text: string): void {
    this.clearProgress();
    this.streams.err.write(`${text}\n`);
  }

  /** A dim note for a person at a terminal (what the command waits for); nothing into a pipe. */
  status(text: string): void {
    if (this.streams.err.isTTY) this.info(this.styleErr(2, text));
  }

  /** A warning on stderr. */
  warn(text: string): void {
    this.info(this.styleErr(33, `warning: ${text}`));
  }

  /** Whether progress bars are drawn (stderr is a terminal). */
  get showsProgress(): boolean {
    return Boolean(this.streams.err.isTTY) && this.streams.env.TERM !== 'dumb';
  }

  /**
   * Draws (or redraws) a progress bar on stderr, with the rate and, when the total is known, the
   * time left: `reading dump.rdb [####......]  41% 39.4 MiB of 96.0 MiB, 31.2 MiB/s, 2 s left`.
   * A no-op when stderr is not a terminal. A new label, or a count going back, starts a new
   * measurement.
   */
  progress(label: string, done: number, total: number | undefined, unit: ProgressUnit = 'bytes'): void {
    const now = this.#now();
    let p = this.#progress;
    if (!p || p.label !== label || done < p.lastDone || unitName(p.unit) !== unitName(unit)) {
      p = { label, unit, startAt: now, startDone: done, rate: undefined, lastAt: now, lastDone: done, done, total };
      this.#progress = p;
    }
    // The rate over the whole run, once a quarter second has passed, so that a slow start or a
    // pause reads as what it is; it is exact enough for "time left" and never jumps.
    const elapsed = now - p.startAt;
    if (elapsed >= 250) p.rate = ((done - p.startDone) * 1000) / elapsed;
    p.lastAt = now;
    p.lastDone = done;
    p.done = done;
    p.total = total;
    if (!this.showsProgress) return;
    this.streams.err.write(`\r\x1b[2K${this.#render(p)}`);
    this.#progressShown = true;
  }

  /** A one-line status on stderr, redrawn in place (like a progress bar); a no-op when stderr is not a terminal. */
  liveStatus(text: string): void {
    if (!this.showsProgress) return;
    const width = Math.max(20, (this.streams.err.columns ?? 100) - 1);
    this.streams.err.write(`\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
    this.#progressShown = true;
  }

  /** The text of the bar, without drawing it (for tests and summaries). */
  progressText(): string | undefined {
    return this.#progress ? this.#render(this.#progress) : undefined;
  }

  #render(p: ProgressState): string {
    const columns = this.streams.err.columns ?? 80;
    const figures: string[] = [];
    let bar = '';
    if (p.total && p.total > 0) {
      const ratio = Math.min(1, p.done / p.total);
      const width = Math.max(10, Math.min(30, columns - 75));
      const filled = Math.round(ratio * width);
      bar = ` [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}%`;
      figures.push(`${formatAmount(p.done, p.unit)} of ${formatAmount(p.total, p.unit)}${noun(p.total, p.unit)}`);
    } else figures.push(`${formatAmount(p.done, p.unit)}${noun(p.done, p.unit)}`);
    if (p.rate !== undefined && p.rate > 0) {
      figures.push(`${formatAmount(p.rate, p.unit)}${p.unit === 'bytes' ? '' : ` ${p.unit.many}`}/s`);
      if (p.total && p.total > p.done) figures.push(`${formatDuration(((p.total - p.done) * 1000) / p.rate)} left`);
    } else if (p.rate === undefined) figures.push('measuring rate');
    // Never wrap (a wrapped bar cannot be redrawn in place): the bar goes first, then the label
    // shrinks from the left; the figures (rate, time left) stay.
    const tail = ` ${figures.join(', ')}`;
    if (p.label.length + bar.length + tail.length < columns) return `${p.label}${bar}${tail}`;
    const room = columns - 1 - tail.length;
    if (room >= p.label.length) return `${p.label}${tail}`;
    return room > 1 ? `…${p.label.slice(p.label.length - room + 1)}${tail}` : tail.slice(1, columns);
  }

  /** Redraws the last bar (after a message cleared it). */
  redrawProgress(): void {
    const p = this.#progress;
    if (!p || !this.showsProgress || this.#progressShown) return;
    this.streams.err.write(`\r\x1b[2K${this.#render(p)}`);
    this.#progressShown = true;
  }

  /** Removes the progress bar from the screen. */
  clearProgress(): void {
    if (!this.#progressShown) return;
    this.streams.err.write('\r\x1b[2K');
    this.#progressShown = false;
  }

  /** Removes the bar and forgets its measurement (the work it measured is over). */
  endProgress(): void {
    this.clearProgress();
    this.#progress = undefined;
  }
}

function unitName(unit: ProgressUnit): string {
  return unit === 'bytes' ? 'bytes' : unit.many;
}

function noun(n: number, unit: ProgressUnit): string {
  return unit === 'bytes' ? '' : ` ${n === 1 ? unit.one : unit.many}`;
}

/** Calls `fn` at most every `ms`, plus a final call on `flush()`. */
export function throttle<A extends unknown[]>(
  ms: number,
  fn: (...args: A) => void,
): ((...args: A) => void) & { flush(): void } {
  let last = Number.NEGATIVE_INFINITY;
  let pending: A | undefined;
  const call = (...args: A) => {
    pending = args;
    const now = performance.now();
    if (now - last >= ms) {
      last = now;
      pending = undefined;
      fn(...args);
    }
  };
  return Object.assign(call, {
    flush() {
      if (pending) fn(...pending);
      pending = undefined;
    },
  });
}
