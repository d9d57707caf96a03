// A do-nothing listener on diagnostics channels, for the "observed" rows: what observing costs
// compared with nobody listening (CONTRIBUTING "Diagnostics channels").
import { subscribe, tracingChannel } from 'node:diagnostics_channel';

const listener = (): void => {};
const handlers = { start: listener, end: listener, asyncStart: listener, asyncEnd: listener, error: listener };

/** Subscribes a listener to each channel: `tracing` ones as TracingChannels, the others as plain channels. */
export function observeChannels(tracing: readonly string[], plain: readonly string[] = []): void {
  for (const name of tracing) tracingChannel(name).subscribe(handlers);
  for (const name of plain) subscribe(name, listener);
}
