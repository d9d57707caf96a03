// The Logger type fits console and pino, and both print a (context, message) call sensibly.
import { Console } from 'node:console';
import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { isLogger, type Logger, noopLogger } from '../src/logger.ts';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('Logger', () => {
  it('accepts console and pino as they are', () => {
    expectTypeOf(console).toExtend<Logger>();
    expectTypeOf(pino()).toExtend<Logger>();
    expectTypeOf(pino().child({ component: 'x' })).toExtend<Logger>();
    expectTypeOf(noopLogger).toEqualTypeOf<Logger>();
    const use = (logger: Logger) => logger;
    use(console);
    use(pino({ enabled: false }));
  });

  it('console prints the context, then the message', () => {
    const out = capture();
    const logger: Logger = new Console({ stdout: out.stream, stderr: out.stream, colorMode: false });
    logger.warn({ package: '@redis-events/pubsub', attempt: 2 }, 'connection lost; reconnecting');
    expect(out.text()).toBe("{ package: '@redis-events/pubsub', attempt: 2 } connection lost; reconnecting\n");
  });

  it('pino merges the context into its line, with the message as msg and err serialised', () => {
    const out = capture();
    const logger: Logger = pino({ base: null, timestamp: false }, out.stream);
    const err = new Error('connect ECONNREFUSED 127.0.0.1:6379');
    logger.error({ package: '@redis-events/databroker', err }, 'change-log cleanup failed');
    logger.debug({ skipped: true }, 'below the level: not printed');
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 50,
      package: '@redis-events/databroker',
      msg: 'change-log cleanup failed',
      err: { type: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:6379' },
    });
  });

  it('noopLogger drops everything; isLogger checks the three methods', () => {
    noopLogger.debug({}, 'x');
    noopLogger.warn({}, 'x');
    noopLogger.error({}, 'x');
    expect(Object.isFrozen(noopLogger)).toBe(true);
    expect(isLogger(console)).toBe(true);
    expect(isLogger(pino({ enabled: false }))).toBe(true);
    expect(isLogger(noopLogger)).toBe(true);
    expect(isLogger({ debug() {}, warn() {} })).toBe(false);
    expect(isLogger(null)).toBe(false);
    expect(isLogger('console')).toBe(false);
  });
});
