/** Bounds a call to another system: a request path answers "unavailable" instead of waiting on a dead dependency. */
import { ServiceUnavailableError, errorMessage } from './errors.js';

/** How long a request path waits on Redis or the catalog: /readyz must answer within 2 s. */
export const REQUEST_DEADLINE_MS = 1_500;

/**
 * Resolves as `promise` does, or rejects with a ServiceUnavailableError naming `what` after `ms`.
 * The call itself is not cancelled (neither ioredis nor pg can take back a sent command): callers
 * must stay correct if it completes later (see producers/backups.ts).
 */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ServiceUnavailableError(`${what} did not answer within ${ms} ms`, {
            details: { dependency: what },
          }),
        ),
      ms,
    );
  });
  // A late rejection of the abandoned call must not become an unhandled rejection.
  promise.catch(() => undefined);
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Like withDeadline, and a rejection of the call itself is also reported as `what` being unavailable. */
export async function dependency<T>(promise: Promise<T>, what: string, ms = REQUEST_DEADLINE_MS): Promise<T> {
  try {
    return await withDeadline(promise, ms, what);
  } catch (err) {
    throw unavailable(err, what);
  }
}

/** The error a request path reports when `what` failed it: a ServiceUnavailableError naming the dependency. */
export function unavailable(err: unknown, what: string): ServiceUnavailableError {
  if (err instanceof ServiceUnavailableError) return err;
  return new ServiceUnavailableError(`${what} is unavailable: ${errorMessage(err)}`, {
    details: { dependency: what },
    cause: err,
  });
}
