// Loaded with `node --import` before a README program runs (see readme-blocks.e2e.test.ts).
//
// 1. README programs talk to Redis at its default address (127.0.0.1:6379, `new Redis()`); the
//    test's server listens on a free port, README_REDIS_PORT. Connections to port 6379 on
//    loopback are sent there, so the programs run exactly as written.
// 2. `__readme.value` and `__readme.log` check the output that a `// => ...` comment states,
//    and README_PRINTS (JSON: { where, lines }) the lines of a `// prints:` comment, which must
//    appear in the program's output in that order; README_CHECKS lists the `// =>` lines,
//    each of which must have run. A mismatch is printed as one
//    README-MISMATCH line and fails the program (exit code 1).
import net from 'node:net';
import { format, inspect } from 'node:util';

const port = Number(process.env.README_REDIS_PORT);
const local = new Set([undefined, null, '', 'localhost', '127.0.0.1', '::1']);

function redirect(options) {
  if (options !== null && typeof options === 'object' && Number(options.port) === 6379 && local.has(options.host))
    options.port = port;
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connectToTheTestServer(...args) {
  // net.connect() passes its normalized [options, callback] array; a socket's own connect()
  // takes (options), (port, host) or (path)
  if (Array.isArray(args[0])) redirect(args[0][0]);
  else if (typeof args[0] === 'object') redirect(args[0]);
  else if (Number(args[0]) === 6379 && local.has(args[1])) args[0] = port;
  return connect.apply(this, args);
};

const squash = (s) => s.replace(/\s+/g, ' ').trim();
/** `expected` as a regular expression: white space squashed, `…` for any text. */
function pattern(expected, anchor) {
  const source = squash(expected)
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*?');
  return new RegExp(`${anchor}${source}${anchor ? '$' : ''}`, 's');
}

function matches(expected, actual) {
  return pattern(expected, '^').test(squash(actual));
}

const unchecked = new Set(process.env.README_CHECKS ? JSON.parse(process.env.README_CHECKS) : []);
process.on('exit', () => {
  for (const where of unchecked) check(where, '(this line to run)', '(it never ran)');
});

function check(where, expected, actual) {
  unchecked.delete(where);
  if (matches(expected, actual)) return;
  process.stderr.write(`README-MISMATCH ${JSON.stringify({ where, expected, actual })}\n`);
  process.exitCode = 1;
}

globalThis.__readme = {
  value(where, expected, value) {
    check(where, expected, inspect(value, { depth: 8, breakLength: Number.POSITIVE_INFINITY }));
    return value;
  },
  log(where, expected, ...args) {
    const text = format(...args);
    console.log(...args);
    check(where, expected, text);
  },
};

const prints = process.env.README_PRINTS ? JSON.parse(process.env.README_PRINTS) : undefined;
if (prints) {
  let printed = '';
  const write = process.stdout.write;
  process.stdout.write = function capture(chunk, ...rest) {
    printed += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return write.call(this, chunk, ...rest);
  };
  // compared as one text with white space squashed, so a value printed over several lines
  // matches a comment that states it on one
  process.on('exit', () => {
    const text = squash(printed);
    let at = 0;
    for (const expected of prints.lines) {
      const found = pattern(expected, '').exec(text.slice(at));
      if (!found) {
        check(prints.where, expected, `(not printed after what came before; the program printed:\n${printed})`);
        return;
      }
      at += found.index + found[0].length;
    }
  });
}
