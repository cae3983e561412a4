/** V8 heap settings shared by the wedvault processes (the service and the CLI). */
import v8 from 'node:v8';

/**
 * After each full collection V8 lets the old generation grow to a multiple of what survived, a
 * factor it picks between 1.1 and 4. A backup's main thread moves a gigabyte of rows through
 * short-lived objects, a few hundred MB of which live long enough to be promoted (segments waiting
 * on the encoder threads), so the heap ran at two to three times its live size and a scale-3 backup
 * peaked at 538-562 MiB. At a fixed 65% it peaks at 472 MiB, for ~0.3 s more CPU at scale 1 (a
 * factor of 1.2 cost half as much CPU again). The flag is read at every collection, so setting it at
 * start-up takes effect.
 */
export function boundHeapGrowth(): void {
  v8.setFlagsFromString('--heap-growing-percent=65');
}
