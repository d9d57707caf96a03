// The fuzz targets by name. Each entry loads its target lazily, so `pnpm fuzz resp` does not load
// the other parsers. To add one (the RDB parser, say): write a FuzzTarget next to the package's
// tests (see packages/resp/test/fuzz-target.ts) and register it here.
import type { FuzzTarget } from './engine.ts';

export const TARGETS: Readonly<Record<string, () => Promise<FuzzTarget>>> = {
  resp: async () => (await import('../../packages/resp/test/fuzz-target.ts')).respDecoderTarget,
};
