/** V8 heap settings shared by the wedvault processes (the service and the CLI). */
import v8 from 'node:v8';

/**
 * After each full collection V8 lets the old generation grow to a multiple of what survived, a
 * factor it picks between 1.1 and 4. A backup's main thread moves a gigabyte of rows through
 * short-lived objects, a few hundred MB of which live long enough to be promoted (segments waiting
 * on the encoder threads), so the heap ran at two to three times its live size and a scale-3 backup
 * peaked at 538-562 MiB. At a fixed 65% it peaks at 472-491 MiB (scale 1: 409-436 -> 341-350 MB)
 * for ~1.1 s more CPU and ~0.5 s more wall time at scale 1 (at 20% a scale-3 backup took 55 s of
 * CPU instead of 33). The flag is read at every collection, so setting it at start-up
 * takes effect.
 */
export function boundHeapGrowth(): void {
  v8.setFlagsFromString('--heap-growing-percent=65');
}
