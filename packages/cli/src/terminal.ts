import type { Writable } from 'node:stream';

/** Where a command writes: data to `out` (stdout), messages and progress to `err` (stderr). */
export interface TerminalStreams {
  readonly out: Writable & { isTTY?: boolean | undefined };
  readonly err: Writable & { isTTY?: boolean | undefined; columns?: number | undefined };
  readonly env: NodeJS.ProcessEnv;
}

const MiB = 1024 * 1024;

/** Formats a byte count for people: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.20 GiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < MiB) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${(n / 1024 / MiB).toFixed(2)} GiB`;
}

/**
 * The command's view of the terminal. Colour only when the stream is a terminal, `NO_COLOR` is
 * unset (https://no-color.org) and `--no-color` was not given; progress bars only on a terminal
 * stderr. Writing to a closed pipe (`redis-events rdb dump.rdb | head`) ends the command quietly.
 */
export class Terminal {
  readonly streams: TerminalStreams;
  /** Colour on stdout / stderr. */
  readonly colorOut: boolean;
  readonly colorErr: boolean;
  /** Set when stdout was closed by its reader; commands stop producing. */
  closed = false;
  readonly #onClosed: () => void;
  #progressShown = false;

  constructor(
    streams: TerminalStreams,
    options: { noColor?: boolean | undefined; onClosed?: (() => void) | undefined } = {},
  ) {
    this.streams = streams;
    const allowed = !options.noColor && !streams.env.NO_COLOR && streams.env.TERM !== 'dumb';
    this.colorOut = allowed && Boolean(streams.out.isTTY);
    this.colorErr = allowed && Boolean(streams.err.isTTY);
    this.#onClosed = options.onClosed ?? (() => {});
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
    this.clearProgress();
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

  /** A warning on stderr. */
  warn(text: string): void {
    this.info(this.styleErr(33, `warning: ${text}`));
  }

  /** Whether progress bars are drawn (stderr is a terminal). */
  get showsProgress(): boolean {
    return Boolean(this.streams.err.isTTY);
  }

  /** Draws (or redraws) a progress bar on stderr; a no-op when stderr is not a terminal. */
  progress(label: string, done: number, total: number | undefined): void {
    if (!this.showsProgress) return;
    const width = Math.max(10, Math.min(40, (this.streams.err.columns ?? 80) - 50));
    let bar = '';
    let figures = formatBytes(done);
    if (total && total > 0) {
      const ratio = Math.min(1, done / total);
      const filled = Math.round(ratio * width);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% `;
      figures = `${formatBytes(done)} of ${formatBytes(total)}`;
    }
    this.streams.err.write(`\r\x1b[2K${label} ${bar}${figures}`);
    this.#progressShown = true;
  }

  /** A one-line status on stderr, redrawn in place (like a progress bar); a no-op when stderr is not a terminal. */
  status(text: string): void {
    if (!this.showsProgress) return;
    const width = Math.max(20, (this.streams.err.columns ?? 100) - 1);
    this.streams.err.write(`\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
    this.#progressShown = true;
  }

  /** Removes the progress bar. */
  clearProgress(): void {
    if (!this.#progressShown) return;
    this.streams.err.write('\r\x1b[2K');
    this.#progressShown = false;
  }
}

/** Calls `fn` at most every `ms`, plus a final call on `flush()`. */
export function throttle<A extends unknown[]>(
  ms: number,
  fn: (...args: A) => void,
): ((...args: A) => void) & { flush(): void } {
  let last = 0;
  let pending: A | undefined;
  const call = (...args: A) => {
    pending = args;
    const now = Date.now();
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
