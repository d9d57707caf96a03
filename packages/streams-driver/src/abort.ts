// AbortSignal support shared by every call that waits: the rejection is a StreamsError whose
// name is 'AbortError' (code ERR_STREAMS_ABORTED), carrying the signal's reason as its cause.
import { StreamsError, type StreamsErrorContext } from './errors.ts';

/** The error of a call given up by its signal. */
export function abortError(what: string, signal: AbortSignal, context: StreamsErrorContext = {}): StreamsError {
  return new StreamsError('ERR_STREAMS_ABORTED', `${what} was aborted by its AbortSignal`, {
    ...context,
    cause: signal.reason,
  });
}

/**
 * `promise`, or a rejection with {@link abortError} as soon as `signal` fires. The work behind
 * `promise` is not stopped (a command on the wire may still run); its outcome is ignored.
 */
export function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
  context: StreamsErrorContext = {},
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(what, signal, context));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(abortError(what, signal, context));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
