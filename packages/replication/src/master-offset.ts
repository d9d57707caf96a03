// The master's own replication offset, for the lag diagnostics: `INFO replication` on a second
// connection, opened only while someone subscribes to the lag channel and closed with the
// listener. At most one INFO is in flight; an ACL user without +info disables it for good.
import { type Logger, RespConnection } from '@redis-events/resp';
import type { MasterTarget } from './master-handshake.ts';

const OFFSET = /master_repl_offset:(\d+)/;

/** Reads `master_repl_offset` in the background; `sample()` returns the latest reading. */
export class MasterOffsetProbe {
  readonly #target: MasterTarget;
  readonly #timeout: number;
  readonly #logger: Logger;
  #connection: RespConnection | undefined;
  #reading = false;
  #disabled = false;
  #closed = false;
  #last: number | undefined;

  constructor(target: MasterTarget, timeout: number, logger: Logger) {
    this.#target = target;
    this.#timeout = timeout;
    this.#logger = logger;
  }

  /** The last offset read (undefined until one was), and a new reading started. */
  sample(): number | undefined {
    if (!this.#disabled && !this.#closed && !this.#reading) {
      this.#reading = true;
      void this.#read().finally(() => {
        this.#reading = false;
      });
    }
    return this.#last;
  }

  close(): void {
    this.#closed = true;
    this.#connection?.destroy();
    this.#connection = undefined;
  }

  async #read(): Promise<void> {
    const target = this.#target;
    try {
      const fresh = this.#connection === undefined;
      this.#connection ??= new RespConnection({
        ...(target.path !== undefined ? { path: target.path } : { host: target.host, port: target.port }),
        tls: target.tls ?? false,
        username: target.username,
        password: target.password,
        protocol: 2,
        reconnect: false, // a failed reading drops the connection; the next one opens another
        connectTimeout: this.#timeout,
        commandTimeout: this.#timeout,
      });
      if (fresh) await this.#connection.connect();
      const info = await this.#connection.send<Buffer | string>(['INFO', 'replication']);
      if (this.#closed) return;
      const match = OFFSET.exec(String(info));
      if (match) this.#last = Number(match[1]);
    } catch (err) {
      if (this.#closed) return;
      const refused = /NOPERM|unknown command/i.test((err as Error).message);
      if (refused) this.#disabled = true;
      this.#logger.debug(
        { package: '@redis-events/replication', master: target.label, err },
        refused
          ? "INFO is refused: the lag diagnostics count what the listener received, not the master's offset"
          : 'INFO replication failed; the lag diagnostics try again at the next reading',
      );
      if (!refused) {
        this.#connection?.destroy();
        this.#connection = undefined;
      }
    }
  }
}
