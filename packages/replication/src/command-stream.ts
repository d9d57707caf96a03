// The command stream of a replica link: after the snapshot (or right after `+CONTINUE`), the
// master sends every write as a RESP array of bulk strings, plus its own PINGs and
// `REPLCONF GETACK *`. Each byte counts in the replication offset, so the decoder reports the
// offset after every command, and it tracks what the stream itself implies: the database
// (`SELECT`) and whether a command is inside a replicated `MULTI` ... `EXEC`.

import { RespDecoder, RespError, RespProtocolError } from '@redis-events/resp';
import { type CommandView, commandView } from './command-views.ts';
import { ReplicationError } from './errors.ts';
import { rejectUnknownOptions } from './options.ts';
import type { CommandEvent } from './replication-events.ts';

/**
 * Options of {@link CommandStreamDecoder}.
 *
 * @example
 * ```ts
 * const commands = new CommandStreamDecoder({ offset: 1_000_000, db: 0 });
 * ```
 */
export interface CommandStreamOptions {
  /** The master replication offset of the last byte before the stream (the `+FULLRESYNC` offset, or the offset resumed from). */
  readonly offset: number;
  /** The database the stream is in at that offset. Default 0. */
  readonly db?: number | undefined;
  /** The stream is inside a replicated `MULTI` at that offset. Default false. */
  readonly inTransaction?: boolean | undefined;
  /** The largest argument accepted, in bytes. Default 512 MiB (the server's `proto-max-bulk-len`). */
  readonly maxArgumentBytes?: number | undefined;
}

const EMPTY_ARGS: readonly Buffer[] = Object.freeze([]) as readonly Buffer[];

/** A command of the stream; the typed view is computed on first access. */
class StreamCommand implements CommandEvent {
  readonly kind = 'command' as const;
  readonly db: number;
  readonly name: string;
  readonly args: readonly Buffer[];
  readonly offset: number;
  readonly size: number;
  readonly inTransaction: boolean;
  #view: CommandView | undefined;

  constructor(db: number, name: string, args: readonly Buffer[], offset: number, size: number, inTransaction: boolean) {
    this.db = db;
    this.name = name;
    this.args = args;
    this.offset = offset;
    this.size = size;
    this.inTransaction = inTransaction;
  }

  get view(): CommandView {
    this.#view ??= commandView(this.name, this.args);
    return this.#view;
  }
}

/**
 * Decodes a master's command stream into {@link CommandEvent}s with exact offsets: feed it the
 * bytes that follow a snapshot (`RdbTransfer.takeRemainder()`, then every socket chunk) or that
 * follow `+CONTINUE`, in chunks of any size. It tracks `SELECT` for each command's `db` and
 * replicated transactions for `inTransaction`. Anything but a non-empty array of bulk strings
 * is a broken stream (`ERR_REPLICATION_PROTOCOL`).
 *
 * @example
 * ```ts
 * const commands = new CommandStreamDecoder({ offset: Number(fullResyncOffset) });
 * socket.on('data', (chunk) => {
 *   for (const command of commands.feed(chunk)) console.log(command.db, command.name, command.offset);
 *   // every second: socket.write(encodeCommand(['REPLCONF', 'ACK', String(commands.offset)]));
 * });
 * ```
 */
export class CommandStreamDecoder {
  readonly #decoder: RespDecoder<unknown>;
  readonly #base: number;
  #db: number;
  #inTransaction: boolean;
  #out: CommandEvent[] = [];
  #error: ReplicationError | undefined;

  constructor(options: CommandStreamOptions) {
    rejectUnknownOptions(options, ['offset', 'db', 'inTransaction', 'maxArgumentBytes'], 'CommandStreamDecoder');
    const { offset, db = 0, inTransaction = false } = options;
    if (!Number.isSafeInteger(offset) || offset < 0)
      throw new ReplicationError('ERR_REPLICATION_ARGUMENT', `offset must be a non-negative integer, got ${offset}`);
    if (!Number.isSafeInteger(db) || db < 0)
      throw new ReplicationError('ERR_REPLICATION_ARGUMENT', `db must be a non-negative integer, got ${db}`);
    this.#base = offset;
    this.#db = db;
    this.#inTransaction = inTransaction;
    this.#decoder = new RespDecoder<unknown>({
      strings: 'buffer',
      // A replication stream holds flat arrays of bulk strings, whose headers are short lines.
      maxDepth: 1,
      maxLineLength: 64,
      maxBulkLength: options.maxArgumentBytes ?? 512 * 1024 * 1024,
      onReply: (value) => this.#command(value),
      onPush: () => {
        throw this.#protocol(
          'a RESP3 push, which a master never sends to a replica',
          this.offset - this.#decoder.lastValueLength,
        );
      },
    });
  }

  /** The master replication offset after the last complete command. */
  get offset(): number {
    return this.#base + this.#decoder.bytesConsumed;
  }

  /** The database the next command applies to (unless it is a `SELECT`). */
  get db(): number {
    return this.#db;
  }

  /** True between a replicated `MULTI` and its `EXEC`. */
  get inTransaction(): boolean {
    return this.#inTransaction;
  }

  /** Bytes of a command received only in part (not yet counted in {@link offset}). */
  get buffered(): number {
    return this.#decoder.bytesBuffered;
  }

  /**
   * Decodes the next bytes; returns the commands they complete, in order. With `into`, the
   * commands are appended to that array (and it is returned): when the call throws, it holds
   * the commands the chunk completed before the failure.
   *
   * @throws {ReplicationError} `ERR_REPLICATION_PROTOCOL` when the bytes are not a command stream; the decoder is then unusable.
   */
  feed(chunk: Uint8Array, into?: CommandEvent[]): CommandEvent[] {
    if (this.#error) throw this.#error;
    if (into) this.#out = into;
    try {
      this.#decoder.feed(chunk);
    } catch (err) {
      this.#out = [];
      this.#error =
        err instanceof ReplicationError
          ? err
          : err instanceof RespError
            ? this.#protocol(
                err.message,
                this.#base + (err instanceof RespProtocolError ? err.offset : this.#decoder.bytesConsumed),
                err,
              )
            : this.#protocol(String(err), this.offset, err);
      throw this.#error;
    }
    const out = this.#out;
    this.#out = [];
    return out;
  }

  #command(value: unknown): void {
    const start = this.offset - this.#decoder.lastValueLength;
    if (!Array.isArray(value) || value.length === 0)
      throw this.#protocol(`a ${describe(value)} where a command (an array of bulk strings) was expected`, start);
    for (const arg of value)
      if (!Buffer.isBuffer(arg)) throw this.#protocol(`a command with a ${describe(arg)} among its arguments`, start);
    const name = (value[0] as Buffer).toString('latin1').toUpperCase();
    const args = value.length === 1 ? EMPTY_ARGS : (value.slice(1) as Buffer[]);
    let inTransaction = this.#inTransaction;
    switch (name) {
      case 'SELECT': {
        const text = args.length === 1 ? (args[0] as Buffer).toString('latin1') : '';
        if (!/^\d{1,9}$/.test(text))
          throw this.#protocol(
            `SELECT with ${args.length === 1 ? `database ${JSON.stringify(text)}` : `${args.length} arguments`}`,
            start,
          );
        this.#db = Number(text);
        break;
      }
      case 'MULTI':
        this.#inTransaction = inTransaction = true;
        break;
      case 'EXEC':
        this.#inTransaction = false;
        break;
      default:
        break;
    }
    const decoder = this.#decoder;
    this.#out.push(
      new StreamCommand(
        this.#db,
        name,
        args,
        this.#base + decoder.bytesConsumed,
        decoder.lastValueLength,
        inTransaction,
      ),
    );
  }

  /** `at`: the replication offset just before the first byte that does not fit. */
  #protocol(message: string, at: number, cause?: unknown): ReplicationError {
    return new ReplicationError(
      'ERR_REPLICATION_PROTOCOL',
      `the command stream is broken after replication offset ${at}: ${message}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'empty array' : 'nested array';
  if (typeof value === 'string') return `status or error line ${JSON.stringify(value.slice(0, 40))}`;
  if (value instanceof Error) return `error reply ${JSON.stringify(value.message.slice(0, 60))}`;
  return typeof value;
}
