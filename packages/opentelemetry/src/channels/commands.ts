// Redis command spans: resp's own connection (`redis-events:resp:command`, used by pubsub,
// replication and the CLI) and ioredis's channels (`ioredis:command`, `ioredis:batch`, ioredis
// >= 5.11), which carry the commands of streams-driver, event-store and databroker.
import { type Attributes, SpanKind } from '@opentelemetry/api';
import { pick } from '../metrics.ts';
import type { OperationMapping } from '../operations.ts';
import { ATTR_DB_OPERATION_BATCH_SIZE } from '../semconv.ts';
import { type Attachment, commandAttributes, count, DB_METRIC_ATTRIBUTES, text } from './common.ts';

/** The context of `redis-events:resp:command` (see the resp README, "Diagnostics channels"). */
interface RespCommandContext {
  readonly command?: unknown;
  readonly argsCount?: unknown;
  readonly batchSize?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
  readonly database?: unknown;
}

/** The context of `ioredis:command` (ioredis's CommandTraceContext). */
interface IoredisCommandContext {
  readonly command?: unknown;
  readonly database?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
}

/** The context of `ioredis:batch` (ioredis's BatchOperationContext: MULTI only). */
interface IoredisBatchContext {
  readonly batchMode?: unknown;
  readonly batchSize?: unknown;
  readonly database?: unknown;
  readonly serverAddress?: unknown;
  readonly serverPort?: unknown;
}

function recordCommand(
  instruments: Parameters<NonNullable<OperationMapping['record']>>[0],
  _context: object,
  seconds: number,
  attributes: Attributes,
  errorType?: string,
): void {
  instruments.dbOperationDuration.record(seconds, pick(attributes, DB_METRIC_ATTRIBUTES, errorType));
}

/** A command name as the conventions want it: upper case, as issued. */
function commandName(value: unknown): string | undefined {
  const name = text(value);
  return name === undefined ? undefined : name.toUpperCase();
}

export const respCommand: OperationMapping<RespCommandContext> = {
  channel: 'redis-events:resp:command',
  command: true,
  begin(context) {
    const command = commandName(context.command);
    if (command === undefined) return undefined;
    const batch = count(context.batchSize);
    const attributes = commandAttributes(context, command);
    if (batch !== undefined && batch >= 2) attributes[ATTR_DB_OPERATION_BATCH_SIZE] = batch;
    return { name: command, kind: SpanKind.CLIENT, attributes };
  },
  record: recordCommand,
};

export const ioredisCommand: OperationMapping<IoredisCommandContext> = {
  channel: 'ioredis:command',
  command: true,
  begin(context) {
    const command = commandName(context.command);
    if (command === undefined) return undefined;
    return { name: command, kind: SpanKind.CLIENT, attributes: commandAttributes(context, command) };
  },
  record: recordCommand,
};

export const ioredisBatch: OperationMapping<IoredisBatchContext> = {
  channel: 'ioredis:batch',
  command: true,
  begin(context) {
    const mode = commandName(context.batchMode) ?? 'MULTI';
    const attributes = commandAttributes(context, mode);
    const size = count(context.batchSize);
    if (size !== undefined && size >= 2) attributes[ATTR_DB_OPERATION_BATCH_SIZE] = size;
    return { name: mode, kind: SpanKind.CLIENT, attributes };
  },
  record: recordCommand,
};

export function attachResp(attachment: Attachment): void {
  attachment.engine.attach(respCommand);
}

export function attachIoredis(attachment: Attachment): void {
  attachment.engine.attach(ioredisCommand);
  attachment.engine.attach(ioredisBatch);
}
