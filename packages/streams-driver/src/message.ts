import type { Metadata } from './codec.ts';
import { StreamsError } from './errors.ts';

/** How a message was settled. */
export type Settlement = 'ack' | 'nack' | 'dead-letter';

/** What a {@link Message} asks of its subscription. Not part of the public API. */
export interface Settler {
  settle(message: Message, how: Settlement, reason?: string): Promise<void>;
  extend(message: Message): Promise<boolean>;
  readonly topic: string;
  readonly group: string;
}

const noop = () => {};

/**
 * A message received from a {@link Subscription}. Settle it once: `ack()` when done, `nack()`
 * to have it delivered again soon (to any consumer of the group), or `deadLetter()` to move it
 * aside. Until then it counts against the subscription's `maxInFlight`.
 *
 * @example
 * ```ts
 * for await (const message of subscription) {
 *   try {
 *     await handle(JSON.parse(message.body.toString()), message.metadata);
 *     message.ack(); // batched with other acks; await it to know it reached Redis
 *   } catch {
 *     message.nack(); // or message.deadLetter('bad input') for a message that can never work
 *   }
 * }
 * ```
 */
export class Message {
  /** The stream entry ID (`1700000000000-0`), unique within the topic. */
  readonly id: string;
  /** The body bytes, exactly as sent. */
  readonly body: Buffer;
  /** The metadata (string pairs), frozen. */
  readonly metadata: Metadata;
  /** 1 on the first delivery, then counts every redelivery (by this or another consumer). */
  readonly deliveryAttempt: number;
  readonly #settler: Settler;
  #settled: Settlement | undefined;

  /** Created by the subscription. */
  constructor(settler: Settler, id: string, body: Buffer, metadata: Metadata, deliveryAttempt: number) {
    this.#settler = settler;
    this.id = id;
    this.body = body;
    this.metadata = metadata;
    this.deliveryAttempt = deliveryAttempt;
  }

  /** The topic (stream key) it came from. */
  get topic(): string {
    return this.#settler.topic;
  }

  /** How it was settled, or `undefined` while it is not. */
  get settlement(): Settlement | undefined {
    return this.#settled;
  }

  /**
   * Acknowledges the message: it will not be delivered again. Acks are batched into one XACK;
   * the promise resolves once Redis has it. Not awaiting it is fine: a failed ack is never an
   * unhandled rejection, and the message is then simply delivered again later.
   *
   * @throws {StreamsError} `ERR_STREAMS_SETTLED` (synchronously) when the message was already settled.
   */
  ack(): Promise<void> {
    return this.#settle('ack');
  }

  /**
   * Gives the message back for redelivery soon, to this or another consumer of the group
   * (XNACK on Redis 8.8+, else XCLAIM to a released owner with a long idle time). It counts as
   * a delivery attempt: after `maxDeliveries` attempts the message goes to the dead-letter stream.
   *
   * @throws {StreamsError} `ERR_STREAMS_SETTLED` (synchronously) when the message was already settled.
   */
  nack(): Promise<void> {
    return this.#settle('nack');
  }

  /**
   * Moves the message to the subscription's dead-letter stream (with its ID, group, attempts and
   * this reason) and acknowledges it, atomically.
   *
   * @throws {StreamsError} `ERR_STREAMS_SETTLED` (synchronously) when the message was already settled.
   */
  deadLetter(reason = 'rejected'): Promise<void> {
    return this.#settle('dead-letter', reason);
  }

  /**
   * Restarts the ack deadline of a message that takes long to process, so that no other consumer
   * reclaims it meanwhile. Resolves false when it is too late: the message was already reclaimed
   * by another consumer (or acknowledged).
   */
  extendAckDeadline(): Promise<boolean> {
    if (this.#settled) return Promise.reject(this.#settledError());
    return this.#settler.extend(this);
  }

  #settledError(): StreamsError {
    return new StreamsError(
      'ERR_STREAMS_SETTLED',
      `message ${this.id} of topic "${this.topic}" was already settled with ${this.#settled}(); settle a message once`,
      { topic: this.topic, group: this.#settler.group },
    );
  }

  #settle(how: Settlement, reason?: string): Promise<void> {
    if (this.#settled) throw this.#settledError();
    this.#settled = how;
    const done = this.#settler.settle(this, how, reason);
    done.catch(noop); // callers may ignore the promise: a failure must not crash the process
    return done;
  }
}
