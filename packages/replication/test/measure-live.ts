// Run as its own process by listener-memory.test.ts: a listener takes a full sync from the
// master on the given port and this prints what it received and the process' peak resident
// memory, so the figure holds nothing but the listener.
import { ReplicaListener } from '../src/index.ts';
import { measureEvents } from './measure-events.ts';

const port = Number(process.argv[2]);
if (!port) throw new Error('usage: measure-live.ts <port>');
process.stdout.write(`${JSON.stringify(await measureEvents(() => new ReplicaListener({ port, aof: false })))}\n`);
