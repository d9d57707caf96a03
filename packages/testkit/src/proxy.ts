import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { TestkitError } from './errors.ts';

/** Which way bytes flow: `upstream` is client to server, `downstream` server to client. */
export type ProxyDirection = 'upstream' | 'downstream';

/** Options of {@link startProxy}. */
export interface ProxyOptions {
  /** The server to forward to. A {@link RedisServer} fits. */
  readonly target: { readonly host: string; readonly port: number };
  /** Port to listen on (127.0.0.1); a free one by default. */
  readonly port?: number | undefined;
}

/** Counters of a {@link TcpProxy}. */
export interface ProxyStats {
  /** Connections open now. */
  readonly open: number;
  /** Connections accepted since the start. */
  readonly accepted: number;
  /** Connections ended by {@link TcpProxy.cut} or {@link TcpProxy.cutAfter}. */
  readonly cut: number;
  /** Bytes forwarded from clients to the server. */
  readonly bytesUpstream: number;
  /** Bytes forwarded from the server to clients. */
  readonly bytesDownstream: number;
}

interface Link {
  client: Socket;
  server: Socket;
  forwarded: Record<ProxyDirection, number>;
  /** Set by cutAfter: nothing more is forwarded while the reset is on its way. */
  cutting: boolean;
}

/**
 * A TCP proxy in front of a server that can pause, cut, refuse and slow connections, to test
 * what clients do when the network misbehaves. TLS passes through untouched.
 *
 * @example
 * ```ts
 * await using proxy = await startProxy({ target: server });
 * const client = new Redis({ port: proxy.port });
 * proxy.cut();          // every open connection gets a TCP reset
 * proxy.pause();        // bytes stop flowing; sockets stay open
 * proxy.resume();
 * proxy.setLatency(50); // 50 ms each way
 * ```
 */
export class TcpProxy implements AsyncDisposable {
  #target: { readonly host: string; readonly port: number };
  readonly #server: Server;
  readonly #links = new Set<Link>();
  #paused = false;
  #refusing = false;
  #latencyMs = 0;
  #bytesPerSecond = 0;
  #cutAfter: { bytes: number; direction: ProxyDirection } | undefined;
  #accepted = 0;
  #cutCount = 0;
  #bytes: Record<ProxyDirection, number> = { upstream: 0, downstream: 0 };

  constructor(server: Server, target: { readonly host: string; readonly port: number }) {
    this.#server = server;
    this.#target = { host: target.host, port: target.port };
    server.on('connection', (socket) => this.#accept(socket));
  }

  /** Where new connections go. */
  get target(): { readonly host: string; readonly port: number } {
    return this.#target;
  }

  /**
   * Sends new connections to another server, for example the replica promoted in a failover;
   * with `cut` (the default) open connections are reset so that clients reconnect there.
   */
  retarget(
    target: { readonly host: string; readonly port: number },
    options: { cut?: boolean | undefined } = {},
  ): void {
    this.#target = { host: target.host, port: target.port };
    if (options.cut ?? true) this.cut();
  }

  get host(): string {
    return '127.0.0.1';
  }
  get port(): number {
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }
  /** `redis://127.0.0.1:<port>`; swap the scheme for a TLS target. */
  get url(): string {
    return `redis://${this.host}:${this.port}`;
  }
  get stats(): ProxyStats {
    return {
      open: this.#links.size,
      accepted: this.#accepted,
      cut: this.#cutCount,
      bytesUpstream: this.#bytes.upstream,
      bytesDownstream: this.#bytes.downstream,
    };
  }

  /** Stops forwarding in both directions; sockets stay open and bytes wait in kernel buffers. */
  pause(): void {
    this.#paused = true;
    for (const link of this.#links) {
      link.client.pause();
      link.server.pause();
    }
  }

  /** Forwards again after {@link pause}. */
  resume(): void {
    this.#paused = false;
    for (const link of this.#links) {
      link.client.resume();
      link.server.resume();
    }
  }

  /** Resets every open connection (TCP RST to both ends). New connections are still accepted. */
  cut(): void {
    for (const link of [...this.#links]) this.#cut(link);
  }

  /** While on, new connections are reset at once, as if the server were down. */
  refuse(on = true): void {
    this.#refusing = on;
  }

  /** Adds `ms` of latency to every chunk in both directions (order is kept). 0 turns it off. */
  setLatency(ms: number): void {
    if (!(ms >= 0)) throw new TestkitError('ERR_TESTKIT_ARGUMENT', `latency must be >= 0 ms, got ${ms}`);
    this.#latencyMs = ms;
  }

  /** Limits each direction of each connection to about `bytesPerSecond`. 0 turns it off. */
  setBandwidth(bytesPerSecond: number): void {
    if (!(bytesPerSecond >= 0))
      throw new TestkitError('ERR_TESTKIT_ARGUMENT', `bandwidth must be >= 0, got ${bytesPerSecond}`);
    this.#bytesPerSecond = bytesPerSecond;
  }

  /**
   * Cuts the next connection that has forwarded `bytes` bytes in `direction` (for example in
   * the middle of a large reply); applies once.
   */
  cutAfter(bytes: number, direction: ProxyDirection = 'downstream'): void {
    this.#cutAfter = { bytes, direction };
  }

  #cut(link: Link): void {
    if (!this.#links.delete(link)) return;
    this.#cutCount++;
    link.client.resetAndDestroy();
    link.server.resetAndDestroy();
  }

  #accept(client: Socket): void {
    this.#accepted++;
    if (this.#refusing) {
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const server = createConnection({ host: this.#target.host, port: this.#target.port });
    server.setNoDelay(true);
    const link: Link = { client, server, forwarded: { upstream: 0, downstream: 0 }, cutting: false };
    this.#links.add(link);
    if (this.#paused) {
      client.pause();
      server.pause();
    }
    const close = () => {
      if (!this.#links.delete(link)) return;
      client.destroy();
      server.destroy();
    };
    client.on('error', close).on('close', close);
    server.on('error', close).on('close', close);
    this.#pipe(link, client, server, 'upstream');
    this.#pipe(link, server, client, 'downstream');
  }

  #pipe(link: Link, from: Socket, to: Socket, direction: ProxyDirection): void {
    let busyUntil = 0; // bandwidth shaping: when the previous chunk finishes "transmitting"
    from.on('data', (chunk: Buffer) => {
      if (!this.#links.has(link) || link.cutting) return;
      const rule = this.#cutAfter;
      if (rule && rule.direction === direction && link.forwarded[direction] + chunk.length >= rule.bytes) {
        this.#cutAfter = undefined;
        // Forward the part before the limit so the peer sees a reply cut in the middle.
        const keep = Math.max(0, rule.bytes - link.forwarded[direction]);
        link.forwarded[direction] += keep;
        this.#bytes[direction] += keep;
        link.cutting = true;
        // Reset once the kept part is flushed, so the peer really holds a partial reply.
        to.write(chunk.subarray(0, keep), () => this.#cut(link));
        return;
      }
      link.forwarded[direction] += chunk.length;
      this.#bytes[direction] += chunk.length;
      let delay = this.#latencyMs;
      if (this.#bytesPerSecond > 0) {
        const now = Date.now();
        busyUntil = Math.max(busyUntil, now) + (chunk.length * 1000) / this.#bytesPerSecond;
        delay += busyUntil - now;
      }
      if (delay <= 0) {
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => {
            if (!this.#paused) from.resume();
          });
        }
        return;
      }
      setTimeout(() => {
        if (this.#links.has(link)) to.write(chunk);
      }, delay);
    });
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    for (const link of [...this.#links]) {
      this.#links.delete(link);
      link.client.destroy();
      link.server.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts a {@link TcpProxy} on 127.0.0.1 in front of `target`.
 */
export async function startProxy(options: ProxyOptions): Promise<TcpProxy> {
  const server = createServer({ noDelay: true });
  const proxy = new TcpProxy(server, options.target);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new TestkitError('ERR_TESTKIT_START', `proxy cannot listen on port ${options.port ?? 0}: ${err.message}`, {
          cause: err,
        }),
      ),
    );
    server.listen({ host: '127.0.0.1', port: options.port ?? 0 }, () => resolve());
  });
  return proxy;
}
