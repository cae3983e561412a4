/**
 * Process-level safety for long-running roles: no fault ends the process silently, and none but a
 * configuration error keeps it from starting. Exit codes: 0 after SIGTERM/SIGINT, 64 bad flags,
 * 78 configuration error (do not restart), 70 an uncaught exception (restart: the state is unknown).
 */
import type { Logger } from './log.js';
import { ConfigError, errorMessage } from './errors.js';

export const EXIT_SOFTWARE = 70;

export function installProcessHandlers(log: Logger): void {
  // Every promise is meant to be handled; one that is not is a bug, but not one worth dropping every
  // in-flight job for: logged loudly, and the reconciler mends whatever it may have stranded.
  process.on('unhandledRejection', (reason) =>
    log.error({ err: reason }, 'BUG: unhandled promise rejection; the process carries on'),
  );
  // After an uncaught exception the process state is unknown: exit non-zero so the service manager
  // restarts it; in-flight jobs return to their queues when their locks expire.
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'BUG: uncaught exception; exiting for a restart');
    setTimeout(() => process.exit(EXIT_SOFTWARE), 200);
  });
}

/** Retries start-up steps that need the catalog or Redis: a dependency still booting is not a reason to exit. */
export async function untilReady<T>(
  what: string,
  fn: () => Promise<T>,
  log: Logger,
  everyMs = 5_000,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      log.warn({ attempt, err: errorMessage(err) }, `${what} not ready; retrying in ${everyMs} ms`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}
