// The scanner behind "every optional property accepts undefined" finds what it must find.
import { describe, expect, it } from 'vitest';
import { scanDeclarations } from './declarations.ts';

describe('scanDeclarations', () => {
  it('reports optional properties and methods that reject undefined, and nothing else', () => {
    const text = [
      'export interface Options {',
      '  url?: string;',
      '  name?: string | undefined;',
      '  onError?: (err: Error) => void;',
      '  check?(value: number): void;',
      '  anything?: unknown;',
      '  nested?: { depth?: number } | undefined;',
      '  required: string;',
      '}',
      'export declare class Client {',
      '  readonly host?: string;',
      '  readonly port?: (number) | undefined;',
      '  connect(timeout?: number): Promise<void>;',
      '}',
      'export type Shape = { kind?: "a" | "b" };',
    ].join('\n');
    expect(scanDeclarations('x.d.ts', text).sort()).toEqual([
      'x.d.ts:11: readonly host?: string;',
      'x.d.ts:15: kind?: "a" | "b"',
      'x.d.ts:2: url?: string;',
      'x.d.ts:4: onError?: (err: Error) => void;',
      'x.d.ts:5: check?(value: number): void;',
      'x.d.ts:7: depth?: number',
    ]);
  });

  it('fails on a file that does not parse', () => {
    expect(() => scanDeclarations('bad.d.ts', 'export interface {')).toThrow(/does not parse/);
  });
});
