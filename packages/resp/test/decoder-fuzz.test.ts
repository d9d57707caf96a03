// The mutation fuzzer in the check: a fixed seed and a small budget, so every run checks the same
// inputs. `pnpm fuzz` runs the same target for as long as you like, with other seeds.
import { describe, expect, it } from 'vitest';
import { type FuzzSummary, type FuzzTarget, runFuzz } from '../../../scripts/fuzz/engine.ts';
import { RespDecoder, type RespDecoderOptions } from '../src/decoder.ts';
import { respDecoderTarget, respTarget } from './fuzz-target.ts';

const MUTATIONS = Number(process.env.RESP_FUZZ_MUTATIONS ?? 2000);

function shown(summary: FuzzSummary): string {
  return summary.findings
    .slice(0, 5)
    .map((f) => `${f.kind}: ${f.message.slice(0, 400)}\n  input (base64): ${f.input.slice(0, 200)}`)
    .join('\n');
}

describe('RESP decoder fuzzing', () => {
  it('survives the seeds truncated at every offset and mutated inputs: typed errors only, chunking-proof, bounded memory', () => {
    const summary = runFuzz(respDecoderTarget, { seed: 0x5eed1, maxMutations: MUTATIONS, maxLength: 16 * 1024 });
    expect(shown(summary)).toBe('');
    expect(summary.deterministic).toBeGreaterThan(5000);
    expect(summary.execs - summary.deterministic).toBe(MUTATIONS);
  });
});

describe('the fuzzer finds planted bugs (so a clean run means something)', () => {
  /** The real decoder, with `before` run on each chunk and replies passed through `reply`. */
  function planted(
    before: (chunk: Uint8Array) => void,
    reply: (value: unknown) => unknown = (value) => value,
  ): FuzzTarget {
    return respTarget((options: RespDecoderOptions) => {
      const decoder = new RespDecoder({ ...options, onReply: (value) => options.onReply(reply(value) as never) });
      const feed = decoder.feed.bind(decoder);
      decoder.feed = (chunk) => {
        before(chunk);
        feed(chunk);
      };
      return decoder;
    });
  }
  const fuzz = (target: FuzzTarget) =>
    runFuzz(target, { seed: 7, truncations: false, maxMutations: 20_000, maxLength: 4096, stopOnFinding: true });

  it('an error that is not a protocol error', () => {
    const summary = fuzz(
      planted((chunk) => {
        if (/%[0-9]{3,}\r\n/.test(Buffer.from(chunk).toString('latin1'))) throw new RangeError('planted');
      }),
    );
    expect(summary.findings[0]?.kind).toBe('untyped-error');
  });

  it('memory reserved for what a header declares', () => {
    const held: unknown[] = [];
    const summary = fuzz(
      planted((chunk) => {
        const match = /^\*([0-9]{7,})\r\n/.exec(Buffer.from(chunk).toString('latin1'));
        if (match) held.push(new Array(Math.min(Number(match[1]), 4_000_000)).fill(0));
      }),
    );
    held.length = 0;
    expect(summary.findings[0]?.kind).toBe('memory');
  });

  it('a value that depends on where the chunks are cut', () => {
    let cutAfterCR = false;
    const summary = fuzz(
      planted(
        (chunk) => {
          cutAfterCR = chunk[chunk.length - 1] === 13;
        },
        (value) => (cutAfterCR ? 'planted' : value),
      ),
    );
    // Whole against pieces, or a prefix against the whole: either oracle catches it.
    expect(summary.findings[0]?.kind).toMatch(/^(chunking|prefix)$/);
  });
});
