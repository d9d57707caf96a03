// A port of the algorithm of github.com/covrom/redispubsub (the Go gocloud.dev/pubsub driver on
// Redis Streams, HEAD 4067711) together with the parts of go-cloud's portable layer that shape
// its traffic, so that the benchmark compares algorithms rather than languages:
//
// - send: go-cloud's send batcher (MaxBatchSize 100, MaxHandlers 100) hands batches to
//   SendBatch, which stores them one XADD at a time, each awaited, fields `headers` (metadata as
//   JSON) and `body`;
// - receive: batch size 1, one handler; every ReceiveBatch tries XAUTOCLAIM (min idle 30 min,
//   cursor always 0-0, COUNT 1), then XREADGROUP COUNT 1 on its own pending list (id 0), then
//   XREADGROUP COUNT 1 BLOCK 0 for new entries. Blocking reads get a connection of their own,
//   as go-redis takes one from its pool;
// - ack: never blocks the caller; go-cloud's ack batcher (one handler, no size limit) calls
//   SendAcks, which sends one XACK per ID, each awaited.
// Its known defects are kept on purpose: reading id 0 first hands out a message again while its
// ack is still on the way, so the consumer sees duplicates.
import type { Redis } from 'ioredis';

const AUTOCLAIM_IDLE_MS = 30 * 60 * 1000;

/** go-cloud's batcher: up to `maxHandlers` batches of up to `maxBatch` items in flight. */
class Batcher<T> {
  readonly #queue: { item: T; done: (err?: unknown) => void }[] = [];
  #handlers = 0;
  readonly #maxBatch: number;
  readonly #maxHandlers: number;
  readonly #handler: (items: T[]) => Promise<void>;

  constructor(maxBatch: number, maxHandlers: number, handler: (items: T[]) => Promise<void>) {
    this.#maxBatch = maxBatch;
    this.#maxHandlers = maxHandlers;
    this.#handler = handler;
  }

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, done: (err) => (err ? reject(err) : resolve()) });
      this.#run();
    });
  }

  #run(): void {
    while (this.#handlers < this.#maxHandlers && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch || this.#queue.length);
      this.#handlers++;
      this.#handler(batch.map((b) => b.item))
        .then(
          () => {
            for (const b of batch) b.done();
          },
          (err: unknown) => {
            for (const b of batch) b.done(err);
          },
        )
        .finally(() => {
          this.#handlers--;
          this.#run();
        });
    }
  }
}

export interface PortMessage {
  readonly id: string;
  readonly body: Buffer;
  readonly metadata: Record<string, string>;
}

/** The Go driver's topic behind go-cloud's send batcher. */
export class PortTopic {
  readonly #batcher: Batcher<{ body: Buffer; metadata: Record<string, string> }>;

  constructor(redis: Redis, key: string) {
    this.#batcher = new Batcher(100, 100, async (messages) => {
      for (const m of messages) await redis.xadd(key, '*', 'headers', JSON.stringify(m.metadata), 'body', m.body);
    });
  }

  send(body: Buffer, metadata: Record<string, string> = {}): Promise<void> {
    return this.#batcher.add({ body, metadata });
  }
}

function firstEntry(reply: unknown): PortMessage | undefined {
  // XREADGROUP: [[key, [[id, fields]]]] (RESP2) or [key, [[id, fields]]] (RESP3 flattened);
  // XAUTOCLAIM: [cursor, [[id, fields]], deleted].
  if (!Array.isArray(reply) || reply.length === 0) return undefined;
  const entries = (Array.isArray(reply[0]) ? reply[0][1] : reply[1]) as [Buffer, Buffer[]][] | undefined;
  const entry = entries?.[0];
  if (!entry) return undefined;
  const [id, fields] = entry;
  let body: Buffer = Buffer.alloc(0);
  let metadata: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]?.toString();
    if (name === 'body') body = fields[i + 1] as Buffer;
    else if (name === 'headers') metadata = JSON.parse((fields[i + 1] as Buffer).toString()) ?? {};
  }
  return { id: id.toString(), body, metadata };
}

/** The Go driver's subscription behind go-cloud's receive (size 1) and ack batchers. */
export class PortSubscription {
  readonly #reads: Redis;
  readonly #acks: Batcher<string>;
  readonly #key: string;
  readonly #group: string;
  readonly #consumer: string;

  /** `reads` carries the receive commands (one at a time), `acks` the XACKs. */
  constructor(reads: Redis, acks: Redis, key: string, group: string, consumer: string) {
    this.#reads = reads;
    this.#key = key;
    this.#group = group;
    this.#consumer = consumer;
    this.#acks = new Batcher(0, 1, async (ids) => {
      for (const id of ids) await acks.xack(key, group, id);
    });
  }

  /** ReceiveBatch with a batch size of 1, as the driver pins it. */
  async receive(): Promise<PortMessage> {
    for (;;) {
      const claimed = await this.#reads.callBuffer(
        'xautoclaim',
        this.#key,
        this.#group,
        this.#consumer,
        AUTOCLAIM_IDLE_MS,
        '0-0',
        'COUNT',
        1,
      );
      const fromClaim = firstEntry(claimed);
      if (fromClaim) return fromClaim;
      const own = await this.#reads.callBuffer(
        'xreadgroup',
        'GROUP',
        this.#group,
        this.#consumer,
        'COUNT',
        1,
        'STREAMS',
        this.#key,
        '0',
      );
      const fromOwn = firstEntry(own);
      if (fromOwn) return fromOwn;
      const fresh = await this.#reads.callBuffer(
        'xreadgroup',
        'GROUP',
        this.#group,
        this.#consumer,
        'COUNT',
        1,
        'BLOCK',
        0,
        'STREAMS',
        this.#key,
        '>',
      );
      const fromNew = firstEntry(fresh);
      if (fromNew) return fromNew;
    }
  }

  /** Message.Ack: queued to the ack batcher; the promise resolves when its XACK is done. */
  ack(id: string): Promise<void> {
    return this.#acks.add(id);
  }
}
