// What the package mappings share: the attachment they register into, and attribute builders
// for the context fields every package names the same way (CONTRIBUTING.md, "Diagnostics
// channels").
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type Attributes, SpanKind } from '@opentelemetry/api';
import type { Instruments } from '../metrics.ts';
import type { OperationEngine, OperationStart } from '../operations.ts';
import {
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_SYSTEM_NAME,
  ATTR_MESSAGING_CLIENT_ID,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  DB_SYSTEM_REDIS,
  MESSAGING_SYSTEM_REDIS,
  type MessagingOperationType,
} from '../semconv.ts';

/** Where a package's mapping registers its channels. */
export interface Attachment {
  readonly engine: OperationEngine;
  /** Undefined when metrics are off. */
  readonly instruments: Instruments | undefined;
  /** Subscribes to a plain channel; a handler that throws is reported, never rethrown. */
  plain(name: string, handler: (message: unknown) => void): void;
  /** Runs at `close()`. */
  onClose(fn: () => void): void;
  /** Reports a failure of the instrumentation itself (logged a few times). */
  failed(where: string, err: unknown): void;
}

/** The subscriptions of plain channels, guarded so that a failing handler never reaches the publisher. */
export class PlainChannels {
  readonly #subscriptions: [string, (message: unknown) => void][] = [];
  readonly #failed: (where: string, err: unknown) => void;

  constructor(failed: (where: string, err: unknown) => void) {
    this.#failed = failed;
  }

  subscribe(name: string, handler: (message: unknown) => void): void {
    const guarded = (message: unknown) => {
      try {
        handler(message);
      } catch (err) {
        this.#failed(name, err);
      }
    };
    subscribe(name, guarded);
    this.#subscriptions.push([name, guarded]);
  }

  close(): void {
    for (const [name, handler] of this.#subscriptions.splice(0)) unsubscribe(name, handler);
  }
}

/** A context field as a string, when it is one. */
export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A context field as a finite number, when it is one. */
export function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** Sets `name` when `value` is defined. */
export function put(attributes: Attributes, name: string, value: string | number | boolean | undefined): void {
  if (value !== undefined) attributes[name] = value;
}

/** `server.address` and `server.port` from the shared `serverAddress` / `serverPort` fields. */
export function serverAttributes(attributes: Attributes, context: object): void {
  const c = context as { serverAddress?: unknown; serverPort?: unknown };
  put(attributes, ATTR_SERVER_ADDRESS, text(c.serverAddress));
  put(attributes, ATTR_SERVER_PORT, count(c.serverPort));
}

/** The attributes of a Redis command span (`db.*`, `server.*`). */
export function commandAttributes(context: object, command: string): Attributes {
  const attributes: Attributes = {
    [ATTR_DB_SYSTEM_NAME]: DB_SYSTEM_REDIS,
    [ATTR_DB_OPERATION_NAME]: command,
  };
  const database = count((context as { database?: unknown }).database);
  if (database !== undefined) attributes[ATTR_DB_NAMESPACE] = String(database);
  serverAttributes(attributes, context);
  return attributes;
}

/** The attributes of a messaging span (`messaging.*`, `server.*`). */
export function messagingAttributes(
  context: object,
  type: MessagingOperationType,
  operation: string,
  destination: string | undefined,
): Attributes {
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_REDIS,
    [ATTR_MESSAGING_OPERATION_TYPE]: type,
    [ATTR_MESSAGING_OPERATION_NAME]: operation,
  };
  put(attributes, ATTR_MESSAGING_DESTINATION_NAME, destination);
  const c = context as { group?: unknown; consumer?: unknown };
  put(attributes, ATTR_MESSAGING_CONSUMER_GROUP_NAME, text(c.group));
  put(attributes, ATTR_MESSAGING_CLIENT_ID, text(c.consumer));
  serverAttributes(attributes, context);
  return attributes;
}

/** The span kind the messaging conventions give an operation type. */
export function messagingKind(type: MessagingOperationType): SpanKind {
  switch (type) {
    case 'create':
    case 'send':
      return SpanKind.PRODUCER;
    case 'process':
      return SpanKind.CONSUMER;
    default:
      return SpanKind.CLIENT;
  }
}

/** A messaging span: `{operation} {destination}` (or the operation alone without one). */
export function messagingStart(
  context: object,
  type: MessagingOperationType,
  operation: string,
  destination: string | undefined,
  carriers?: readonly unknown[],
): OperationStart {
  return {
    name: destination !== undefined ? `${operation} ${destination}` : operation,
    kind: messagingKind(type),
    attributes: messagingAttributes(context, type, operation, destination),
    carriers,
  };
}

/** The low-cardinality attributes the messaging metrics keep. */
export const MESSAGING_METRIC_ATTRIBUTES: readonly string[] = [
  ATTR_MESSAGING_SYSTEM,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_CONSUMER_GROUP_NAME,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
];

/** The low-cardinality attributes `db.client.operation.duration` keeps. */
export const DB_METRIC_ATTRIBUTES: readonly string[] = [
  ATTR_DB_SYSTEM_NAME,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_NAMESPACE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
];
