/**
 * The snapshot one backup reads in: a coordinator transaction that exports it (or imports the new
 * change slot's), the copying sessions that import it, the slot, and their cleanup in one place.
 */
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import pg from 'pg';
import { FatalError, TransientError } from '../../errors.js';
import { childConnection, pinOutputSettings } from './catalog.js';
import { createChangeSlot, dropChangeSlot, dropStaleSlots, type ChangeSlot } from './changes.js';

export interface SnapshotHead {
  /** The exported snapshot's id, for SET TRANSACTION SNAPSHOT and pg_dump --snapshot. */
  snapshot: string;
  time: Date;
  lsn: string;
  version: string;
  db: string;
  /** pg_current_snapshot(): which transactions' rows the snapshot holds. */
  xids: string;
}

export interface SessionOptions {
  url: string;
  /** Create a change slot whose snapshot this backup reads (needs wal_level = logical). */
  changeSlot?: boolean | undefined;
  slotPrefix?: string | undefined;
  /** The parent's slot: kept when stale slots of the prefix are dropped. */
  parentSlot?: string | undefined;
}

/** Streams `pg_dump --schema-only --section=…` output of the exported snapshot. */
function schemaSection(source: string, snapshot: string, section: 'pre-data' | 'post-data'): Readable {
  const { url, env } = childConnection(source);
  const child = spawn(
    'pg_dump',
    ['--schema-only', `--section=${section}`, `--snapshot=${snapshot}`, '--no-owner', '-d', url],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.pipe(out, { end: false });
  child.on('error', (err) => out.destroy(new FatalError(`pg_dump could not start: ${err.message}`)));
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new TransientError(`pg_dump --section=${section} exited ${code}: ${stderr.trim()}`));
  });
  // A backup that failed elsewhere stops reading: pg_dump is stopped, and its error (the snapshot
  // is gone) reaches nobody instead of ending the process.
  out.on('error', () => undefined);
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
  });
  return out;
}

/** A worker connection inside the exported snapshot, tuned for long ordered scans. */
async function withSnapshot(url: string, snapshot: string, sortMemory: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await pinOutputSettings(c);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await c.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(snapshot)}`);
    // Sorting by (tenant, key) spills to disk at the default 4MB when no index gives the order.
    await c.query(`SELECT set_config('work_mem', $1, true)`, [sortMemory]);
    // Tables without any order keep heap order; a synchronised scan would start mid-table and
    // rotate the output, so every chunk would look new to the next backup.
    await c.query(`SELECT set_config('synchronize_seqscans', 'off', true)`);
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

export class SnapshotSession {
  private readonly workers: pg.Client[] = [];
  private slot: ChangeSlot | undefined;
  private started: SnapshotHead | undefined;
  private kept = false;

  private constructor(
    private readonly url: string,
    /** Holds the exported snapshot open until every session is done; reads the catalog. */
    readonly coordinator: pg.Client,
  ) {}

  static async open(o: SessionOptions): Promise<SnapshotSession> {
    const coordinator = new pg.Client({ connectionString: o.url });
    try {
      await coordinator.connect();
    } catch (err) {
      throw new TransientError(`source database unreachable: ${(err as Error).message}`, { cause: err });
    }
    const session = new SnapshotSession(o.url, coordinator);
    try {
      await session.start(o);
    } catch (err) {
      await session.close();
      throw err;
    }
    return session;
  }

  private async start(o: SessionOptions): Promise<void> {
    const c = this.coordinator;
    if (o.changeSlot) {
      await dropStaleSlots(c, o.slotPrefix ?? 'wedvault_', o.parentSlot);
      this.slot = await createChangeSlot(o.url, o.slotPrefix);
    }
    // The coordinator's transaction keeps the exported snapshot alive until every worker is done
    // (with a change slot, the slot's replication connection does, and every session imports it).
    await pinOutputSettings(c);
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    if (this.slot) await c.query(`SET TRANSACTION SNAPSHOT ${pg.escapeLiteral(this.slot.snapshot)}`);
    const head = await c.query<SnapshotHead>(
      `SELECT ${this.slot ? pg.escapeLiteral(this.slot.snapshot) : 'pg_export_snapshot()'} AS snapshot, now() AS time, pg_current_wal_lsn()::text AS lsn,
              current_setting('server_version') AS version, current_database() AS db,
              pg_current_snapshot()::text AS xids`,
    );
    this.started = head.rows[0]!;
  }

  get head(): SnapshotHead {
    if (!this.started) throw new FatalError('snapshot session not started');
    return this.started;
  }

  /** The change slot created with this snapshot (the next backup reads its changes there). */
  get changes(): { slot: string; lsn: string } | undefined {
    return this.slot ? { slot: this.slot.slot, lsn: this.slot.lsn } : undefined;
  }

  /** `count` sessions in the snapshot, each closed by close() (even when another failed to connect). */
  async connectWorkers(count: number, sortMemory: string): Promise<pg.Client[]> {
    const connected = await Promise.allSettled(
      Array.from({ length: count }, () => withSnapshot(this.url, this.head.snapshot, sortMemory)),
    );
    const made: pg.Client[] = [];
    for (const c of connected) if (c.status === 'fulfilled') made.push(c.value);
    this.workers.push(...made);
    for (const c of connected) if (c.status === 'rejected') throw c.reason;
    return made;
  }

  /** `pg_dump --schema-only` of one section, in the snapshot. */
  schema(section: 'pre-data' | 'post-data'): Readable {
    return schemaSection(this.url, this.head.snapshot, section);
  }

  /** The backup is whole: its change slot stays, for the next backup. */
  keep(): void {
    this.kept = true;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.end().catch(() => undefined)));
    await this.slot?.close();
    // a failed backup's slot would hold WAL for nothing; a finished one's is the next backup's
    if (this.slot && !this.kept) await dropChangeSlot(this.url, this.slot.slot).catch(() => undefined);
    await this.coordinator.end().catch(() => undefined);
  }
}
