// Redis-style glob patterns (KEYS, SCAN MATCH): * any run, ? one byte, [abc] [a-z] [^a] a class,
// \x the byte x. Matched on bytes, so binary keys work. Iterative with backtracking on the last
// star: no recursion, linear in practice.

/** A matcher for one glob pattern. */
export function globMatcher(pattern: string): (subject: Uint8Array) => boolean {
  const p = Buffer.from(pattern);
  return (s) => globMatch(p, s);
}

function classMatch(p: Uint8Array, at: number, c: number): { matched: boolean; next: number } {
  let i = at + 1;
  const negate = p[i] === 0x5e; // ^
  if (negate) i++;
  let matched = false;
  let first = true;
  while (i < p.length && (p[i] !== 0x5d || first)) {
    first = false;
    let lo = p[i] as number;
    if (lo === 0x5c && i + 1 < p.length) lo = p[++i] as number;
    if (p[i + 1] === 0x2d && i + 2 < p.length && p[i + 2] !== 0x5d) {
      let hi = p[i + 2] as number;
      if (hi === 0x5c && i + 3 < p.length) {
        hi = p[i + 3] as number;
        i++;
      }
      if (c >= Math.min(lo, hi) && c <= Math.max(lo, hi)) matched = true;
      i += 3;
    } else {
      if (c === lo) matched = true;
      i++;
    }
  }
  return { matched: matched !== negate, next: i + 1 };
}

/** True when `s` matches the glob `p`. */
export function globMatch(p: Uint8Array, s: Uint8Array): boolean {
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < s.length) {
    const pc = p[pi];
    if (pc === 0x2a) {
      starP = pi++;
      starS = si;
      continue;
    }
    if (pc !== undefined) {
      const c = s[si] as number;
      if (pc === 0x3f) {
        pi++;
        si++;
        continue;
      }
      if (pc === 0x5b) {
        const { matched, next } = classMatch(p, pi, c);
        if (matched) {
          pi = next;
          si++;
          continue;
        }
      } else {
        const literal = pc === 0x5c && pi + 1 < p.length ? (p[pi + 1] as number) : pc;
        if (literal === c) {
          pi += pc === 0x5c && pi + 1 < p.length ? 2 : 1;
          si++;
          continue;
        }
      }
    }
    if (starP < 0) return false;
    pi = starP + 1;
    si = ++starS;
  }
  while (p[pi] === 0x2a) pi++;
  return pi === p.length;
}
