// One dedicated subscriber connection: what was asked and what the server confirmed, per kind;
// (un)subscribe commands that settle on their confirmations; resubscription on every reconnect
// before anything else; an idle health check. It knows nothing of iterators or clusters: it
// reports messages and events to its owner.
import {
  type Classification,
  type Command,
  type ConnectSession,
  ReplyError,
  RespConnection,
  type RespConnectionOptions,
  RespError,
  type SendOptions,
} from '@redis-events/resp';
import { PubSubError } from './errors.ts';
import {
  confirmation,
  FRAME_MESSAGE,
  FRAME_OTHER,
  FRAME_PMESSAGE,
  FRAME_PONG,
  FRAME_SMESSAGE,
  frameType,
  type MessageKind,
  SUBSCRIBE_COMMAND,
  type SubscriptionKind,
  text,
  UNSUBSCRIBE_COMMAND,
} from './frames.ts';
import { groupBySlot, keySlot } from './key-slot.ts';

export const KINDS: readonly SubscriptionKind[] = ['channel', 'pattern', 'shard'];

/** What the owner of a subscriber connection hears from it. */
export interface SubscriberHost<Payload> {
  /** A message (hot path). */
  message(
    connection: SubscriberConnection<Payload>,
    kind: MessageKind,
    channel: string,
    pattern: string | undefined,
    payload: Payload,
  ): void;
  /** The connection was lost; messages are being missed from now on. */
  disconnected(connection: SubscriberConnection<Payload>, cause: PubSubError): void;
  /** A reconnect attempt was scheduled. */
  reconnecting(connection: SubscriberConnection<Payload>, info: ReconnectingInfo): void;
  /** A new connection after a loss starts restoring subscriptions: the gap's place in the stream. */
  resyncing(
    connection: SubscriberConnection<Payload>,
    info: { readonly since: number; readonly cause: PubSubError },
  ): void;
  /** Connected again and every subscription restored: the gap is over. */
  restored(connection: SubscriberConnection<Payload>, info: RestoredInfo): void;
  /** The server unsubscribed names we still want (a shard channel's slot moved), or refused them on resubscribe. */
  lost(connection: SubscriberConnection<Payload>, kind: SubscriptionKind, names: string[], cause: PubSubError): void;
  /** The connection is over for good (gave up reconnecting); not called after {@link SubscriberConnection.close}. */
  ended(connection: SubscriberConnection<Payload>, cause: PubSubError): void;
}

/** Passed to {@link SubscriberHost.reconnecting}. */
export interface ReconnectingInfo {
  readonly attempt: number;
  readonly delay: number;
  readonly cause: PubSubError;
}

/** Passed to {@link SubscriberHost.restored}. */
export interface RestoredInfo {
  /** When the connection was lost (ms since the epoch). */
  readonly since: number;
  readonly cause: PubSubError;
  /** The reconnect attempt that succeeded. */
  readonly attempt: number;
  readonly channels: readonly string[];
  readonly patterns: readonly string[];
  readonly shardChannels: readonly string[];
}

/** Options of a {@link SubscriberConnection}. */
export interface SubscriberConnectionOptions {
  /** Where and how to connect; `classify`, `onConnect` and decoder mapping are set here. */
  readonly connection: RespConnectionOptions<unknown>;
  /** Payloads as Buffers instead of strings. */
  readonly buffers: boolean;
  /** Largest payload accepted (decoder `maxBulkLength`). */
  readonly maxPayloadLength: number | undefined;
  /** PING after this many ms without anything received; 0 turns the health check off. */
  readonly healthCheckInterval: number;
  /** A PING unanswered after this many ms replaces the connection. */
  readonly healthCheckTimeout: number;
  /** Time given to UNSUBSCRIBE and the close at `close()`. */
  readonly closeTimeout: number;
  /** `host:port` for messages. */
  readonly where: string;
}

/** A command written on this connection and not yet answered, as far as this class can tell. */
interface Sent {
  /** The slot of a shard command, to recognise a stale MOVED. */
  readonly slot: number | undefined;
  readonly ping: boolean;
  /** Fails the command's promise at once (the connection lost count of the confirmations). */
  fail?: ((err: Error) => void) | undefined;
}

/** An operation that waits for the next (re)synchronisation. */
interface Deferred {
  readonly kind: SubscriptionKind;
  readonly subscribe: boolean;
  readonly names: readonly string[] | null;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** A redirection of a shard channel: its slot is served elsewhere. */
export class MovedError extends PubSubError {
  static override readonly brand: symbol = Symbol.for('@redis-events/pubsub.error.moved');
  static override readonly errorName: string = 'MovedError';
  readonly slot: number;
  readonly host: string;
  readonly port: number;
  readonly names: readonly string[];

  constructor(reply: ReplyError, names: readonly string[], slot: number, host: string, port: number) {
    super('ERR_PUBSUB_CLUSTER', `${names.join(', ')}: ${reply.message}`, { cause: reply });
    this.slot = slot;
    this.host = host;
    this.port = port;
    this.names = names;
  }
}

/** Reads `MOVED <slot> <host>:<port>` (or `ASK ...`). */
export function parseRedirect(err: ReplyError): { slot: number; host: string; port: number } | undefined {
  const m = /^(?:MOVED|ASK) (\d+) (.*):(\d+)$/.exec(err.message);
  if (!m) return undefined;
  return { slot: Number(m[1]), host: m[2] ?? '', port: Number(m[3]) };
}

/** The connection failed in a way that a reconnect repairs (the command may be sent again). */
function isConnectionLoss(err: unknown): boolean {
  return err instanceof RespError && !(err instanceof ReplyError) && err.code === 'ERR_RESP_CONNECTION_LOST';
}

function quoteList(names: readonly string[] | null, kind: SubscriptionKind): string {
  const what = kind === 'channel' ? 'channel' : kind === 'pattern' ? 'pattern' : 'shard channel';
  if (names === null) return `every ${what}`;
  const shown = names.slice(0, 5).map((n) => JSON.stringify(n));
  return `${what}${names.length === 1 ? '' : 's'} ${shown.join(', ')}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`;
}

/** Turns an error reply to a (un)subscribe command into the error its caller gets. */
export function refusal(
  err: ReplyError,
  command: string,
  names: readonly string[] | null,
  kind: SubscriptionKind,
): PubSubError {
  const subject = quoteList(names, kind);
  if (err.prefix === 'NOPERM') {
    return new PubSubError(
      'ERR_PUBSUB_NOPERM',
      `${command} ${subject} was refused: the ACL user may not use ${names === null || names.length === 1 ? 'it' : 'them'} (${err.message}). Grant access with ACL SETUSER <user> &<channel-glob> (or allchannels), or subscribe to channels the user may read.`,
      { cause: err },
    );
  }
  return new PubSubError('ERR_PUBSUB_REFUSED', `${command} ${subject} was refused by the server: ${err.message}`, {
    cause: err,
  });
}

/**
 * A dedicated subscriber connection (RESP3 pushes or RESP2 arrays). Tracks what was asked apart
 * from what the server confirmed, settles each (un)subscribe call once the server confirmed it,
 * resubscribes everything on each reconnect before any other command, and health-checks an idle
 * connection with PING.
 */
export class SubscriberConnection<Payload = string | Buffer> {
  readonly connection: RespConnection<unknown>;
  readonly where: string;
  /** The server's host (or unix socket path) and port, for diagnostics. */
  readonly serverAddress: string;
  readonly serverPort: number | undefined;
  /** What was asked, per kind: the subscriptions this connection must have. */
  readonly asked: Record<SubscriptionKind, Set<string>> = { channel: new Set(), pattern: new Set(), shard: new Set() };
  /** What the server confirmed on the current connection, per kind. */
  readonly confirmed: Record<SubscriptionKind, Set<string>> = {
    channel: new Set(),
    pattern: new Set(),
    shard: new Set(),
  };

  private readonly host: SubscriberHost<Payload>;
  private readonly options: SubscriberConnectionOptions;
  /** Subscribed and in sync: operations go straight to the server. */
  private synced = false;
  private deferred: Deferred[] = [];
  private sent: Sent[] = [];
  /** Outstanding SUNSUBSCRIBEs per shard channel, to tell our confirmations from the server's own. */
  private pendingShardUnsubscribes = new Map<string, number>();
  private started: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private lostAt: number | undefined;
  private lostCause: PubSubError | undefined;
  private activity = 0;
  private seenActivity = -1;
  private healthTimer: ReturnType<typeof setTimeout> | undefined;
  private pinging = false;
  /** Shard channels the server unsubscribed on its own, reported at the end of the tick. */
  private serverDropped: string[] = [];
  /** The resynchronisation under way, if any. */
  private resyncing: Promise<void> | undefined;
  /** Calls of {@link change} not settled yet. */
  private changes = 0;
  /** Set when the connection gave up reconnecting: every later call fails with it. */
  private endedError: PubSubError | undefined;

  constructor(host: SubscriberHost<Payload>, options: SubscriberConnectionOptions) {
    this.host = host;
    this.options = options;
    this.where = options.where;
    const { path, port } = options.connection;
    this.serverAddress = path ?? options.connection.host ?? '127.0.0.1';
    this.serverPort = path === undefined ? (port ?? 6379) : undefined;
    this.connection = new RespConnection<unknown>({
      ...options.connection,
      // Never queue across a reconnect: what was asked is resubscribed from `asked` instead.
      queueWhileDisconnected: false,
      decoder: {
        strings: options.buffers ? 'buffer' : 'string',
        attributes: 'drop',
        ...(options.maxPayloadLength !== undefined ? { maxBulkLength: options.maxPayloadLength } : {}),
      },
      classify: (value) => this.#classify(value),
      onConnect: (session) => this.#resync(session),
    });
    const c = this.connection;
    c.on('push', (value) => this.#onPush(value));
    c.on('disconnect', ({ cause }) => {
      this.#reset();
      this.lostAt ??= Date.now();
      const error = this.#lossError(cause, 'lost the subscriber connection to');
      this.lostCause = error;
      this.host.disconnected(this, error);
    });
    c.on('reconnecting', (info) => {
      this.#reset();
      const cause = this.#lossError(info.cause, 'reconnecting to');
      this.host.reconnecting(this, { attempt: info.attempt, delay: info.delay, cause });
    });
    c.on('connect', ({ attempt }) => {
      this.#armHealth();
      const since = this.lostAt;
      if (since === undefined) return;
      const cause = this.lostCause ?? new PubSubError('ERR_PUBSUB_CONNECTION', 'the connection was lost');
      this.lostAt = undefined;
      this.lostCause = undefined;
      this.host.restored(this, {
        since,
        cause,
        attempt,
        channels: [...this.asked.channel],
        patterns: [...this.asked.pattern],
        shardChannels: [...this.asked.shard],
      });
    });
    c.on('end', ({ cause }) => {
      this.#reset();
      this.#stopHealth();
      if (this.closing !== undefined) return;
      const err = new PubSubError(
        'ERR_PUBSUB_CONNECTION',
        `the subscriber connection to ${this.where} ended${cause ? `: ${cause.message}` : ''}`,
        cause ? { cause } : undefined,
      );
      this.endedError = err;
      this.#rejectDeferred(err);
      this.host.ended(this, err);
    });
  }

  /** A connection's failure as this package's error, wrapped once (a PubSubError stays as it is). */
  #lossError(cause: Error, what: string): PubSubError {
    if (cause instanceof PubSubError) return cause;
    if (cause instanceof RespError && (cause.code === 'ERR_RESP_PROTOCOL' || cause.code === 'ERR_RESP_LIMIT')) {
      return new PubSubError(
        'ERR_PUBSUB_PROTOCOL',
        `${this.where} sent what a subscriber cannot read (${cause.message}); the connection is replaced`,
        { cause },
      );
    }
    return new PubSubError('ERR_PUBSUB_CONNECTION', `${what} ${this.where}: ${cause.message}`, { cause });
  }

  /** The state of the underlying connection. */
  get status(): RespConnection['status'] {
    return this.connection.status;
  }

  /** True when nothing is asked of this connection. */
  get empty(): boolean {
    return this.asked.channel.size === 0 && this.asked.pattern.size === 0 && this.asked.shard.size === 0;
  }

  get isClosing(): boolean {
    return this.closing !== undefined;
  }

  /** True while a {@link change} is in progress (sent, or waiting for the connection). */
  get busy(): boolean {
    return this.changes > 0;
  }

  /**
   * Subscribes (or unsubscribes) `names` of a kind and resolves once the server confirmed each
   * one. `names === null` unsubscribes every subscription of that kind. While disconnected, the
   * change waits for the next resubscription.
   */
  async change(kind: SubscriptionKind, subscribe: boolean, names: readonly string[] | null): Promise<void> {
    if (this.closing !== undefined) throw this.#closedError();
    this.changes++;
    try {
      await this.#change(kind, subscribe, names);
    } finally {
      this.changes--;
    }
  }

  async #change(kind: SubscriptionKind, subscribe: boolean, names: readonly string[] | null): Promise<void> {
    const asked = this.asked[kind];
    let list: readonly string[] | null = names === null ? null : [...new Set(names)];
    if (subscribe) for (const name of list ?? []) asked.add(name);
    else if (list === null) {
      if (kind === 'shard') list = [...new Set([...asked, ...this.confirmed.shard])];
      asked.clear();
    } else for (const name of list) asked.delete(name);
    if (list !== null && list.length === 0) return;
    for (;;) {
      if (this.closing !== undefined) throw this.#closedError();
      if (!this.synced) {
        await this.#defer(kind, subscribe, list);
        return;
      }
      try {
        await this.#sendChange((command, options) => this.connection.send(command, options), kind, subscribe, list);
        return;
      } catch (err) {
        if (!isConnectionLoss(err)) throw this.#settleError(err, kind, subscribe, list);
      }
    }
  }

  /** Connects (once); the first failure rejects and leaves the connection able to try again. */
  start(): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(this.#closedError());
    this.started ??= this.connection.connect().then(
      () => undefined,
      async (err: unknown) => {
        // A resynchronisation cut short puts its operations back first: they fail with this error.
        await this.resyncing;
        this.started = undefined;
        this.#reset();
        const error = new PubSubError(
          'ERR_PUBSUB_CONNECTION',
          `cannot open a subscriber connection to ${this.where}: ${(err as Error).message}`,
          { cause: err },
        );
        // Never connected: what the failed calls asked is withdrawn, so that a later connection
        // does not subscribe what its caller was told had failed.
        for (const op of this.deferred)
          if (op.subscribe) for (const name of op.names ?? []) this.asked[op.kind].delete(name);
        this.#rejectDeferred(error);
        throw error;
      },
    );
    return this.started;
  }

  #defer(kind: SubscriptionKind, subscribe: boolean, names: readonly string[] | null): Promise<void> {
    if (this.endedError !== undefined) return Promise.reject(this.endedError);
    return new Promise<void>((resolve, reject) => {
      this.deferred.push({ kind, subscribe, names, resolve, reject });
      if (this.connection.status === 'idle') this.start().catch(() => {}); // the deferred op is rejected with the error
    });
  }

  #rejectDeferred(err: Error): void {
    for (const op of this.deferred.splice(0)) op.reject(err);
  }

  #closedError(): PubSubError {
    return new PubSubError('ERR_PUBSUB_CLOSED', `the subscriber connection to ${this.where} is closed`);
  }

  /** Maps a failed change to the caller's error, undoing what was asked when the server refused it. */
  #settleError(err: unknown, kind: SubscriptionKind, subscribe: boolean, names: readonly string[] | null): PubSubError {
    if (err instanceof MovedError) {
      for (const name of err.names) this.asked[kind].delete(name);
      return err;
    }
    if (err instanceof ReplyError) {
      const command = (subscribe ? SUBSCRIBE_COMMAND : UNSUBSCRIBE_COMMAND)[kind];
      if (subscribe) for (const name of names ?? []) this.asked[kind].delete(name);
      return refusal(err, command, names, kind);
    }
    if (err instanceof PubSubError) return err;
    if (err instanceof RespError && err.code === 'ERR_RESP_CLOSED') {
      return this.closing !== undefined
        ? this.#closedError()
        : new PubSubError('ERR_PUBSUB_CONNECTION', `the subscriber connection to ${this.where} ended: ${err.message}`, {
            cause: err,
          });
    }
    return new PubSubError(
      'ERR_PUBSUB_CONNECTION',
      `subscriber connection to ${this.where}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  /**
   * Sends the commands of one change: one command for channels or patterns, one per slot for
   * shard channels (several slots in one SSUBSCRIBE are CROSSSLOT in a cluster). Rejects with
   * the first failure once every command settled.
   */
  async #sendChange(
    send: (command: Command, options: SendOptions<unknown>) => Promise<unknown>,
    kind: SubscriptionKind,
    subscribe: boolean,
    names: readonly string[] | null,
  ): Promise<void> {
    const groups: { slot: number | undefined; names: readonly string[] | null }[] = [];
    if (kind === 'shard' && names !== null) {
      for (const [slot, group] of groupBySlot(names)) groups.push({ slot, names: group });
    } else groups.push({ slot: undefined, names });
    const results = await Promise.allSettled(groups.map((g) => this.#command(send, kind, subscribe, g.names, g.slot)));
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /** One (un)subscribe command that settles on its confirmations. */
  #command(
    send: (command: Command, options: SendOptions<unknown>) => Promise<unknown>,
    kind: SubscriptionKind,
    subscribe: boolean,
    names: readonly string[] | null,
    slot: number | undefined,
  ): Promise<void> {
    const name = (subscribe ? SUBSCRIBE_COMMAND : UNSUBSCRIBE_COMMAND)[kind];
    const entry: Sent = { slot, ping: false };
    const remaining = names === null ? null : new Set(names);
    const trackShard = kind === 'shard' && !subscribe && names !== null;
    if (trackShard)
      for (const n of names) this.pendingShardUnsubscribes.set(n, (this.pendingShardUnsubscribes.get(n) ?? 0) + 1);
    this.sent.push(entry);
    const untilPush = (value: unknown): boolean => {
      const c = confirmation(value);
      if (c === undefined || c.kind !== kind || c.subscribe !== subscribe) return false;
      let done: boolean;
      if (remaining === null) {
        // Argument-less UNSUBSCRIBE / PUNSUBSCRIBE: one confirmation per subscription of that
        // kind, or one with a null name when there was none. The count the server reports
        // covers channels and patterns together; done when what remains is the other kind.
        const other =
          kind === 'channel' ? this.confirmed.pattern.size : kind === 'pattern' ? this.confirmed.channel.size : 0;
        done = c.name === null || c.count - other <= 0;
      } else {
        if (c.name !== null) remaining.delete(c.name);
        done = remaining.size === 0;
      }
      if (done) this.#answered(entry);
      return done;
    };
    const command: Command = names === null ? [name] : [name, ...names];
    const sent = new Promise<unknown>((resolve, reject) => {
      entry.fail = reject;
      send(command, { untilPush }).then(resolve, reject);
    });
    return sent.then(
      () => undefined,
      (err: unknown) => {
        if (trackShard) for (const n of remaining ?? []) this.#unpend(n);
        if (err instanceof ReplyError) {
          // Valkey 8.0 answers an UNSUBSCRIBE outside subscriber mode with NOSUB: nothing was subscribed.
          if (!subscribe && err.prefix === 'NOSUB') {
            for (const k of KINDS) this.confirmed[k].clear();
            return;
          }
          if (kind === 'shard' && (err.prefix === 'MOVED' || err.prefix === 'ASK')) {
            const redirect = parseRedirect(err);
            // SUNSUBSCRIBE at a node that no longer serves the slot: nothing is subscribed there.
            if (!subscribe) return;
            if (redirect) throw new MovedError(err, names ?? [], redirect.slot, redirect.host, redirect.port);
          }
        }
        throw err;
      },
    );
  }

  #unpend(name: string): void {
    const left = (this.pendingShardUnsubscribes.get(name) ?? 0) - 1;
    if (left > 0) this.pendingShardUnsubscribes.set(name, left);
    else this.pendingShardUnsubscribes.delete(name);
  }

  /** The oldest written command got its answer. */
  #answered(entry: Sent): void {
    const at = this.sent.indexOf(entry);
    if (at >= 0) this.sent.splice(at, 1);
  }

  /**
   * Routes in-band values: RESP2 messages and confirmations become pushes; a MOVED that belongs
   * to no waiting command (its SUNSUBSCRIBE was settled by the server's own unsubscribe during a
   * slot migration) is dropped instead of being taken for the next command's reply.
   */
  #classify(value: unknown): Classification {
    if (Array.isArray(value)) {
      const type = frameType(value);
      if (type !== FRAME_OTHER && type !== FRAME_PONG) return 'push';
    }
    this.activity++;
    const head = this.sent[0];
    if (value instanceof ReplyError && value.prefix === 'MOVED' && this.synced) {
      // The answer of an SUNSUBSCRIBE that the server's own unsubscribe (the slot left this
      // node) settled before it: nothing to do, and not the answer of the command now waiting.
      const redirect = parseRedirect(value);
      if (redirect !== undefined && (head === undefined || head.ping || head.slot !== redirect.slot)) return 'push';
    }
    if (head === undefined) return 'reply'; // handshake replies, or a stray reply the connection rejects
    if (value instanceof ReplyError) {
      this.sent.shift();
      return 'reply';
    }
    if (head.ping) {
      this.sent.shift();
      return 'reply';
    }
    // A reply while a (un)subscribe command still waits for confirmations: we lost count. The
    // command fails as if the connection dropped (it is retried after the resubscription), and
    // the connection is replaced; during a (re)connect, the attempt fails instead.
    const cause = new PubSubError(
      'ERR_PUBSUB_PROTOCOL',
      `${this.where} sent a reply while a subscription command still waited for its confirmations`,
    );
    const lost = new RespError('ERR_RESP_CONNECTION_LOST', `${cause.message}; reconnecting to resynchronise`, {
      cause,
    });
    this.sent.shift();
    head.fail?.(lost);
    queueMicrotask(() => this.connection.reconnect(lost));
    return 'reply';
  }

  #onPush(value: unknown): void {
    this.activity++;
    const type = frameType(value);
    const frame = value as unknown[];
    switch (type) {
      case FRAME_MESSAGE:
        this.host.message(this, 'message', text(frame[1] as string | Buffer), undefined, frame[2] as Payload);
        return;
      case FRAME_PMESSAGE:
        this.host.message(
          this,
          'pmessage',
          text(frame[2] as string | Buffer),
          text(frame[1] as string | Buffer),
          frame[3] as Payload,
        );
        return;
      case FRAME_SMESSAGE:
        this.host.message(this, 'smessage', text(frame[1] as string | Buffer), undefined, frame[2] as Payload);
        return;
      case FRAME_OTHER:
      case FRAME_PONG:
        return; // other pushes (client tracking...) and stale redirections are not ours
      default:
        this.#onConfirmation(value, type);
    }
  }

  #onConfirmation(value: unknown, type: number): void {
    const c = confirmation(value, type);
    if (c === undefined) return;
    const confirmed = this.confirmed[c.kind];
    if (c.name === null) {
      confirmed.clear();
      return;
    }
    if (c.subscribe) {
      confirmed.add(c.name);
      return;
    }
    confirmed.delete(c.name);
    if (c.kind !== 'shard') return;
    if (this.pendingShardUnsubscribes.has(c.name)) {
      this.#unpend(c.name);
      return;
    }
    // Nobody asked: the server unsubscribed us because the slot left this node. It drops every
    // channel of that slot, so they are all reported now, together, whatever the chunking of
    // the confirmations that follow.
    if (!this.asked.shard.has(c.name)) return;
    const slot = keySlot(c.name);
    for (const name of [...this.asked.shard]) {
      if (keySlot(name) !== slot) continue;
      this.asked.shard.delete(name);
      this.serverDropped.push(name);
    }
    if (this.serverDropped.length > 0) queueMicrotask(() => this.#reportServerDropped());
  }

  #reportServerDropped(): void {
    const names = this.serverDropped.splice(0);
    if (names.length === 0 || this.closing !== undefined) return;
    const shown = names.length === 1 ? `shard channel ${JSON.stringify(names[0])}` : `${names.length} shard channels`;
    this.host.lost(
      this,
      'shard',
      names,
      new PubSubError('ERR_PUBSUB_CLUSTER', `${this.where} unsubscribed ${shown} (its slot moved)`),
    );
  }

  /** The connection's commands are gone with it. */
  #reset(): void {
    this.synced = false;
    this.sent = [];
    this.pendingShardUnsubscribes.clear();
    for (const kind of KINDS) this.confirmed[kind].clear();
  }

  /**
   * Runs on every (re)connect before any other command: subscribes everything asked, then
   * whatever changed meanwhile, until what is asked is what is confirmed. Operations that waited
   * settle here.
   */
  #resync(session: ConnectSession<unknown>): Promise<void> {
    const run = this.#resyncOnce(session);
    this.resyncing = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  async #resyncOnce(session: ConnectSession<unknown>): Promise<void> {
    this.#reset();
    if (this.lostAt !== undefined) {
      this.host.resyncing(this, {
        since: this.lostAt,
        cause: this.lostCause ?? new PubSubError('ERR_PUBSUB_CONNECTION', 'the connection was lost'),
      });
    }
    const send = (command: Command, options: SendOptions<unknown>) => session.send(command, options);
    // Names refused so far, and names to subscribe one per command: the server refuses a whole
    // SUBSCRIBE when it may not have one of its names (ACL), so a refused batch is split to find
    // which ones, and the rest is restored.
    const refused = new Map<string, PubSubError>();
    const singly = new Set<string>();
    for (;;) {
      const waiting = this.deferred.splice(0);
      const changes: { kind: SubscriptionKind; subscribe: boolean; names: string[] }[] = [];
      for (const kind of KINDS) {
        const asked = this.asked[kind];
        const confirmed = this.confirmed[kind];
        const add = [...asked].filter((n) => !confirmed.has(n));
        const remove = [...confirmed].filter((n) => !asked.has(n));
        const batch = add.filter((n) => !singly.has(`${kind}:${n}`));
        if (batch.length > 0) changes.push({ kind, subscribe: true, names: batch });
        for (const n of add) if (singly.has(`${kind}:${n}`)) changes.push({ kind, subscribe: true, names: [n] });
        if (remove.length > 0) changes.push({ kind, subscribe: false, names: remove });
      }
      if (changes.length === 0) {
        this.synced = true;
        for (const op of waiting) op.resolve();
        return;
      }
      const results = await Promise.allSettled(
        changes.map((c) => this.#sendChange(send, c.kind, c.subscribe, c.names)),
      );
      let split = false;
      const lost = new Map<SubscriptionKind, { names: string[]; error: PubSubError }>();
      for (const [i, result] of results.entries()) {
        if (result.status === 'fulfilled') continue;
        const change = changes[i] as (typeof changes)[number];
        const err: unknown = result.reason;
        if (!(err instanceof ReplyError) && !(err instanceof MovedError)) {
          // The connection failed: this attempt fails, the operations wait for the next one.
          this.deferred.unshift(...waiting);
          throw err;
        }
        if (!change.subscribe) continue;
        if (err instanceof ReplyError && change.names.length > 1) {
          for (const name of change.names) singly.add(`${change.kind}:${name}`);
          split = true;
          continue;
        }
        const failed = err instanceof MovedError ? err.names : change.names;
        const error = this.#settleError(err, change.kind, true, failed);
        for (const name of failed) refused.set(`${change.kind}:${name}`, error);
        const entry = lost.get(change.kind);
        if (entry) entry.names.push(...failed);
        else lost.set(change.kind, { names: [...failed], error });
      }
      // The owner routes moved shard channels elsewhere, or reports refused names.
      for (const [kind, { names, error }] of lost) queueMicrotask(() => this.host.lost(this, kind, names, error));
      if (split) {
        // The operations settle once the names of the refused batch were tried one by one.
        this.deferred.unshift(...waiting);
        continue;
      }
      for (const op of waiting) {
        // An unsubscribe that waited is done whatever happened to the subscribes.
        const hit = op.subscribe
          ? op.names?.map((n) => refused.get(`${op.kind}:${n}`)).find((e) => e !== undefined)
          : undefined;
        if (hit) op.reject(hit);
        else op.resolve();
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Health check: any value received counts as a sign of life; after a quiet interval, PING.

  #armHealth(): void {
    if (this.options.healthCheckInterval <= 0 || this.healthTimer !== undefined || this.closing !== undefined) return;
    this.healthTimer = setTimeout(() => this.#checkHealth(), this.options.healthCheckInterval);
    this.healthTimer.unref();
  }

  #stopHealth(): void {
    if (this.healthTimer !== undefined) clearTimeout(this.healthTimer);
    this.healthTimer = undefined;
  }

  #checkHealth(): void {
    this.healthTimer = undefined;
    if (this.closing !== undefined || this.connection.status === 'closed') return;
    if (this.activity !== this.seenActivity || !this.synced || this.pinging) {
      this.seenActivity = this.activity;
      this.#armHealth();
      return;
    }
    this.pinging = true;
    const timeout = this.options.healthCheckTimeout;
    this.sent.push({ slot: undefined, ping: true });
    this.connection
      .send(['PING'], { timeout })
      .catch((err: unknown) => {
        // Any reply, even an error (an ACL user without +ping), proves the connection alive.
        if (err instanceof RespError && err.code === 'ERR_RESP_TIMEOUT') {
          this.connection.reconnect(
            new PubSubError(
              'ERR_PUBSUB_HEALTH_CHECK',
              `${this.where} did not answer PING within ${timeout} ms (healthCheckTimeout); reconnecting`,
              { cause: err },
            ),
          );
        }
      })
      .finally(() => {
        this.pinging = false;
        this.seenActivity = this.activity;
        this.#armHealth();
      });
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Unsubscribes what the server confirmed (within `closeTimeout`), then closes the connection.
   * Waiting operations fail with `ERR_PUBSUB_CLOSED`.
   */
  close(timeout: number = this.options.closeTimeout): Promise<void> {
    this.closing ??= this.#close(timeout);
    return this.closing;
  }

  async #close(timeout: number): Promise<void> {
    this.#stopHealth();
    this.#rejectDeferred(this.#closedError());
    const c = this.connection;
    if (c.status === 'ready' && this.synced) {
      this.synced = false;
      const pending: Promise<void>[] = [];
      for (const kind of KINDS) {
        if (this.confirmed[kind].size === 0) continue;
        const names = kind === 'shard' ? [...this.confirmed.shard] : null;
        pending.push(
          this.#sendChange((command, options) => c.send(command, { ...options, timeout }), kind, false, names),
        );
      }
      const results = await Promise.allSettled(pending);
      // An unanswered UNSUBSCRIBE means the server is not answering: no point waiting again.
      if (results.some((r) => r.status === 'rejected')) {
        c.destroy();
        return;
      }
    }
    await c.close({ timeout }).catch(() => c.destroy());
  }

  /** Closes at once, without unsubscribing. */
  destroy(): void {
    this.closing ??= Promise.resolve();
    this.#stopHealth();
    this.#rejectDeferred(this.#closedError());
    this.connection.destroy();
  }
}
