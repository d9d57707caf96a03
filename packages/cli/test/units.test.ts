import { Writable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { globMatch } from '../src/glob.ts';
import { toJson } from '../src/json.ts';
import { colorEnabled, formatDuration, plural, Terminal } from '../src/terminal.ts';

const g = (pattern: string, subject: string) => globMatch(Buffer.from(pattern), Buffer.from(subject));

describe('glob', () => {
  it('matches like Redis KEYS', () => {
    expect(g('user:*', 'user:1')).toBe(true);
    expect(g('user:*', 'users')).toBe(false);
    expect(g('h?llo', 'hello')).toBe(true);
    expect(g('h[ae]llo', 'hallo')).toBe(true);
    expect(g('h[^e]llo', 'hello')).toBe(false);
    expect(g('h[a-b]llo', 'hbllo')).toBe(true);
    expect(g('a\\*b', 'a*b')).toBe(true);
    expect(g('a\\*b', 'axb')).toBe(false);
    expect(g('*a*b*c*', 'xxaxxbxxcxx')).toBe(true);
    expect(g('*', '')).toBe(true);
  });

  it('a pattern without specials matches only itself; * matches anything', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9:]{0,12}$/), fc.stringMatching(/^[a-z0-9:]{0,12}$/), (a, b) => {
        expect(g(a, b)).toBe(a === b);
        expect(g('*', b)).toBe(true);
        expect(g(`${a}*`, a + b)).toBe(true);
      }),
    );
  });
});

describe('JSON mapping', () => {
  it('keeps bytes, big numbers and special scores representable', () => {
    expect(toJson(Buffer.from('héllo'))).toBe('héllo');
    expect(toJson(Buffer.from([0xff]))).toEqual({ base64: '/w==' });
    expect(toJson(12345678901234567890n)).toBe('12345678901234567890');
    expect(toJson([Infinity, -Infinity, NaN, 1.5])).toEqual(['inf', '-inf', 'nan', 1.5]);
    expect(toJson(new Map([['a', 1]]))).toEqual({ a: 1 });
    expect(toJson(new Map([[1, 'x']]))).toEqual([[1, 'x']]);
    expect(toJson({ a: undefined, b: new Date(0) })).toEqual({ b: '1970-01-01T00:00:00.000Z' });
  });
});

describe('JSON mapping keeps names that are special in JavaScript', () => {
  it('keeps a __proto__ key as data', () => {
    const parsed = JSON.parse('{"__proto__":{"x":1},"constructor":2}') as object;
    expect(JSON.stringify(toJson(parsed))).toBe('{"__proto__":{"x":1},"constructor":2}');
    expect(JSON.stringify(toJson(new Map([['__proto__', 'v']])))).toBe('{"__proto__":"v"}');
  });
});

class FakeStream extends Writable {
  text = '';
  isTTY: boolean;
  columns = 120;
  constructor(isTTY: boolean) {
    super();
    this.isTTY = isTTY;
  }
  override _write(chunk: Buffer, _: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('colour', () => {
  const tty = { isTTY: true };
  const pipe = { isTTY: false };
  it('is on for a terminal, off for a pipe, by default', () => {
    expect(colorEnabled(tty, {})).toBe(true);
    expect(colorEnabled(pipe, {})).toBe(false);
    expect(colorEnabled(tty, { TERM: 'dumb' })).toBe(false);
  });
  it('NO_COLOR turns it off; FORCE_COLOR turns it on even into a pipe, or off with 0', () => {
    expect(colorEnabled(tty, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(tty, { NO_COLOR: '' })).toBe(true); // empty means unset (no-color.org)
    expect(colorEnabled(pipe, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorEnabled(pipe, { FORCE_COLOR: '3' })).toBe(true);
    expect(colorEnabled(tty, { FORCE_COLOR: '0' })).toBe(false);
    expect(colorEnabled(tty, { FORCE_COLOR: 'false' })).toBe(false);
    expect(colorEnabled(pipe, { FORCE_COLOR: '' })).toBe(false);
    expect(colorEnabled(pipe, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(true); // the explicit force wins, as in Node
  });
  it('--no-color beats everything', () => {
    expect(colorEnabled(tty, { FORCE_COLOR: '1' }, true)).toBe(false);
  });
});

describe('progress', () => {
  it('shows the rate and the time left on a terminal, and nothing on a pipe', () => {
    let now = 0;
    const err = new FakeStream(true);
    const terminal = new Terminal({ out: new FakeStream(false), err, env: {} }, { now: () => now });
    terminal.progress('reading dump.rdb', 0, 100 * 1024 * 1024);
    expect(err.text).toContain('measuring rate');
    now = 2_000;
    terminal.progress('reading dump.rdb', 20 * 1024 * 1024, 100 * 1024 * 1024);
    expect(terminal.progressText()).toBe(
      'reading dump.rdb [######........................]  20% 20.0 MiB of 100.0 MiB, 10.0 MiB/s, 8 s left',
    );
    // A data line into a pipe leaves the bar alone; a message clears it.
    const before = err.text.length;
    void terminal.line('{"k":1}');
    expect(err.text.length).toBe(before);
    terminal.info('note');
    expect(err.text.endsWith('\r\x1b[2Knote\n')).toBe(true);

    const piped = new FakeStream(false);
    const quiet = new Terminal({ out: new FakeStream(false), err: piped, env: {} });
    quiet.progress('reading', 10, 100);
    expect(piped.text).toBe('');
  });

  it('counts things when bytes are not known', () => {
    let now = 0;
    const terminal = new Terminal(
      { out: new FakeStream(false), err: new FakeStream(true), env: {} },
      { now: () => now },
    );
    terminal.progress('snapshot', 0, 50_000, { one: 'key', many: 'keys' });
    now = 4_000;
    terminal.progress('snapshot', 10_000, 50_000, { one: 'key', many: 'keys' });
    expect(terminal.progressText()).toMatch(/20% 10,000 of 50,000 keys, 2,500 keys\/s, 16 s left$/);
  });

  it('says "1 key", "2 keys"', () => {
    expect(plural(1, 'record')).toBe('1 record');
    expect(plural(2, 'record')).toBe('2 records');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
  });
});
