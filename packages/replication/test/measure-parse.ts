// Run as its own process by memory.test.ts: parses one RDB file and prints what it found and
// the process' peak resident memory, so the figure holds nothing but the parse.
import { parseRdbFile } from '../src/index.ts';
import { measureEvents } from './measure-events.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: measure-parse.ts <file.rdb>');
process.stdout.write(`${JSON.stringify(await measureEvents(() => parseRdbFile(path)))}\n`);
