/**
 * Continuous capture: the source's committed transactions, read from the capture's logical slot,
 * split by tenant and sealed into change segments on every copy; only then is the slot advanced.
 * The newest segment on the primary is the truth on restart, so a capture killed anywhere resumes
 * with no gap and no duplicate.
 */
import pg from 'pg';
import { errorMessage } from '../../errors.js';
import type { Storage } from '../../storage/types.js';
import { isErased, PLATFORM_SCOPE, classScope, supplierScope, weddingScope, type KeyScope } from '../api.js';
import { withClasses, type ClassMembers } from '../classes.js';
import {
  pinOutputSettings,
  readSequences,
  readTables,
  readTenancyFacts,
  type PgTableInfo,
  type SchemaSettings,
} from '../postgres/catalog.js';
import {
  advanceSlot,
  connectSource,
  createCaptureSlot,
  ddlTriggerInstalled,
  dropCaptureSlot,
  flushedWalLsn,
  lookupTenant,
  partitionRoots,
  schemaFingerprint,
  slotState,
} from '../postgres/pitr-source.js';
import { tableLabel, tenancySettings, type TenancySettings } from '../postgres/tenancy.js';
import { tenancyRecord, withTenancy } from '../postgres/tenancy-record.js';
import type { Repository } from '../repo/repository.js';
import type { SegmentManifest, TxnPart } from '../repo/segments.js';
import { peekTransactions } from './decode.js';
import { changeObjects, replicateObjects } from '../replicate.js';
import { compareLsn, type RowValues, type Txn, type TxnChange } from './types.js';

export interface CaptureCopy {
  target: string;
  storage: Storage;
}

export interface CaptureOptions {
  url: string;
  source: string;
  slot: string;
  segmentBytes: number;
  /** The source's schema and tenancy settings, as a backup gets them. */
  schema: SchemaSettings & Parameters<typeof tenancySettings>[0];
  classes?: readonly ClassMembers[] | undefined;
  /** The primary copy (its newest segment is the truth) and the others, written after it. */
  repo: Repository;
  copies: CaptureCopy[];
  /** Idle this long, an empty segment still records that nothing happened (so the RPO is known). */
  heartbeatMs?: number | undefined;
  /** A base backup is needed now: the slot was lost, or the schema changed without the DDL trigger. */
  onBaseNeeded?: ((reason: string) => Promise<void> | void) | undefined;
  onAlert?: ((kind: 'slot-lost' | 'schema-break' | 'copy-failed', message: string) => void) | undefined;
  clock?: (() => Date) | undefined;
}

export interface StepResult {
  /** The segment written, if any. */
  key?: string | undefined;
  txns: number;
  endLsn: string;
  lastCommit?: string | undefined;
  /** The peek stopped at its size bound: more is waiting, step again now rather than a period later. */
  more: boolean;
}

interface Last {
  endLsn: string;
  fingerprint: string;
  writtenAt: number;
}

export class Capture {
  private client: pg.Client | undefined;
  private last: Last | undefined;
  private tables = new Map<string, PgTableInfo>();
  private roots = new Map<string, string>();
  private fingerprint = '';
  private erased: { at: number; scopes: ReadonlySet<string> } | undefined;
  private readonly memo = new Map<string, string | null>();
  /** Copies that may lack segments: every one at start (a crash may have cut a put short). */
  private readonly behind: Set<string>;

  constructor(private readonly o: CaptureOptions) {
    this.behind = new Set(o.copies.map((c) => c.target));
  }

  private now = () => (this.o.clock ?? (() => new Date()))();

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const c = await connectSource(this.o.url);
    await pinOutputSettings(c);
    this.client = c;
    return c;
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  /** The newest segment on the primary: where the stream continues. */
  private async newest(): Promise<Last | undefined> {
    const keys = await this.o.repo.listSegmentKeys(this.o.source);
    const key = keys.at(-1);
    if (!key) return undefined;
    const s = await this.o.repo.segmentSummary(key);
    return { endLsn: s.endLsn, fingerprint: s.fingerprint, writtenAt: Date.parse(s.until) };
  }

  private async loadTables(c: pg.ClientBase): Promise<void> {
    const record = tenancyRecord(
      await readTenancyFacts(c),
      tenancySettings(this.o.schema) as TenancySettings,
    );
    const tables = withClasses(withTenancy(await readTables(c, this.o.schema), record), this.o.classes);
    this.tables = new Map(tables.map((t) => [tableLabel(t), t]));
    this.roots = await partitionRoots(c);
    this.memo.clear();
  }

  private async erasedScopes(): Promise<ReadonlySet<string>> {
    if (!this.erased || Date.now() - this.erased.at > 60_000) {
      this.erased = { at: Date.now(), scopes: await this.o.repo.erasedScopes() };
    }
    return this.erased.scopes;
  }

  /** One pass: at most one segment written (empty while idle, once a heartbeat is due). */
  async step(): Promise<StepResult> {
    const c = await this.connect();
    const { slot } = this.o;
    this.last ??= await this.newest();
    let state = await slotState(c, slot);
    let start: string;
    let gap: string | undefined;
    if (state.status !== 'ok') {
      if (state.status === 'lost') await dropCaptureSlot(c, slot);
      const created = await createCaptureSlot(c, slot);
      if (this.last) {
        gap = `capture slot ${slot} was ${state.status}; recreated at ${created}`;
        this.o.onAlert?.('slot-lost', gap);
      }
      state = { status: 'ok', confirmedLsn: created };
    }
    const confirmed = state.confirmedLsn!;
    // another capture (a standby that held the lease meanwhile) may have written since: read again
    if (this.last && !gap && compareLsn(confirmed, this.last.endLsn) > 0) this.last = await this.newest();
    if (this.last && !gap) {
      const cmp = compareLsn(confirmed, this.last.endLsn);
      // killed after a segment was stored and before the slot moved: move it now
      if (cmp < 0) await advanceSlot(c, slot, this.last.endLsn);
      if (cmp > 0)
        gap = `capture slot ${slot} is at ${confirmed}, past the newest segment's end ${this.last.endLsn}`;
    }
    start = this.last && !gap ? this.last.endLsn : confirmed;
    const fingerprint = await schemaFingerprint(c);
    if (gap) {
      // the hole is recorded as a segment of its own: a window and a feed see it, nobody papers over it
      await this.write(c, this.last!.endLsn, confirmed, [], { gap, fingerprint });
      start = confirmed;
      await this.o.onBaseNeeded?.(gap);
    }

    const trigger = await ddlTriggerInstalled(c);
    if (fingerprint !== this.fingerprint) {
      await this.loadTables(c);
      this.fingerprint = fingerprint;
    }
    const flushed = await flushedWalLsn(c);
    const limit = Math.max(500, Math.floor(this.o.segmentBytes / 150));
    const txns: Txn[] = [];
    let rows = 0;
    for await (const t of peekTransactions(c, slot, { uptoChanges: limit })) {
      rows += t.changes.length + 2;
      if (compareLsn(t.commitLsn, start) > 0) txns.push(t);
    }
    const lastCommit = txns.at(-1);
    // all committed up to the flush point read before peeking is in hand, unless the peek was cut short
    let end = lastCommit?.commitLsn ?? start;
    if (rows < limit && compareLsn(flushed, end) > 0) end = flushed;
    const heartbeat = this.o.heartbeatMs ?? 30_000;
    const idle = txns.length === 0;
    if (compareLsn(end, start) <= 0 || (idle && this.last && Date.now() - this.last.writtenAt < heartbeat)) {
      return { txns: 0, endLsn: start, more: false };
    }
    const schemaBreak =
      !trigger && this.last && this.last.fingerprint !== fingerprint
        ? { at: this.now().toISOString() }
        : undefined;
    const key = await this.write(c, start, end, txns, { fingerprint, trigger, schemaBreak });
    await advanceSlot(c, slot, end);
    if (schemaBreak) {
      const why = `the source's schema changed at about ${schemaBreak.at} and no DDL trigger wrote it into the stream`;
      this.o.onAlert?.('schema-break', why);
      await this.o.onBaseNeeded?.(why);
    }
    if (this.behind.size > 0) await this.catchUp();
    return { key, txns: txns.length, endLsn: end, lastCommit: lastCommit?.commitTime, more: rows >= limit };
  }

  private async write(
    c: pg.ClientBase,
    startLsn: string,
    endLsn: string,
    txns: Txn[],
    m: { fingerprint: string; trigger?: boolean; schemaBreak?: { at: string } | undefined; gap?: string },
  ): Promise<string> {
    const erased = await this.erasedScopes();
    const { parts, unresolved } = await this.split(c, txns, erased);
    const sequences = Object.fromEntries((await readSequences(c)).map((s) => [s.name, s.value]));
    const manifest: Omit<SegmentManifest, 'parts' | 'version'> = {
      source: this.o.source,
      startLsn,
      endLsn,
      firstCommit: txns[0]?.commitTime,
      lastCommit: txns.at(-1)?.commitTime,
      until: this.now().toISOString(),
      txns: txns.length,
      sequences,
      fingerprint: m.fingerprint,
      ddlTrigger: m.trigger ?? false,
      ...(m.schemaBreak ? { schemaBreak: m.schemaBreak } : {}),
      ...(m.gap ? { gap: { reason: m.gap } } : {}),
      unresolved,
    };
    const plain = new Map([...parts].map(([scope, list]) => [scope, Buffer.from(JSON.stringify(list))]));
    const written = await this.o.repo.saveSegment(manifest, plain);
    for (const copy of this.o.copies) {
      try {
        for (const w of written) await copy.storage.put(w.key, w.bytes, { size: w.bytes.length });
        await copy.storage.sync?.();
      } catch (err) {
        this.behind.add(copy.target);
        this.o.onAlert?.('copy-failed', `segment not written to ${copy.target}: ${errorMessage(err)}`);
      }
    }
    this.last = { endLsn, fingerprint: m.fingerprint, writtenAt: Date.now() };
    return written.at(-1)!.key;
  }

  /**
   * Copies what a copy missed while it failed: the segments and key objects it lacks, as any
   * replication carries them (keys first; an erased scope's keys never copied back).
   */
  async catchUp(): Promise<void> {
    const { repo } = this.o;
    for (const copy of this.o.copies) {
      if (!this.behind.has(copy.target)) continue;
      try {
        const erased = await repo.erasedScopes();
        await replicateObjects(repo.storage, copy.storage, await changeObjects(repo.storage), {
          keyObject: (key, bytes) => repo.withoutErasedKeys(key, bytes, erased),
        });
        this.behind.delete(copy.target);
      } catch (err) {
        this.o.onAlert?.('copy-failed', `segments not copied to ${copy.target}: ${errorMessage(err)}`);
      }
    }
  }

  /** Each transaction's changes by key scope, each change keeping its position; touches to the platform. */
  private async split(
    c: pg.ClientBase,
    txns: Txn[],
    erased: ReadonlySet<string>,
  ): Promise<{ parts: Map<KeyScope, TxnPart[]>; unresolved: number }> {
    const parts = new Map<KeyScope, TxnPart[]>();
    let unresolved = 0;
    for (const t of txns) {
      const mine = new Map<KeyScope, TxnPart>();
      const put = (scope: KeyScope, change: TxnChange, i: number) => {
        if (isErased(scope, erased)) return;
        let p = mine.get(scope);
        if (!p)
          mine.set(
            scope,
            (p = { xid: t.xid, commitLsn: t.commitLsn, commitTime: t.commitTime, changes: [] }),
          );
        p.changes.push({ ...change, i });
      };
      for (const [n, ch] of t.changes.entries()) {
        if (ch.kind !== 'row') {
          put(PLATFORM_SCOPE, ch, 2 * n + 1);
          continue;
        }
        const info = this.tableOf(ch.schema, ch.table);
        if (!info || info.scopeKind === 'platform') {
          put(PLATFORM_SCOPE, ch, 2 * n + 1);
          continue;
        }
        const tenant = await this.tenantOf(c, info, ch.op === 'DELETE' ? ch.old : ch.new);
        const scope = tenant === undefined ? undefined : this.scopeOf(info, tenant);
        if (ch.op !== 'INSERT') {
          const key = keyOf(info, ch.old ?? ch.new);
          if (key) {
            const touch: TxnChange = { kind: 'touch', schema: ch.schema, table: ch.table, key };
            if (ch.op === 'UPDATE') touch.scope = scope ?? PLATFORM_SCOPE;
            // a delete whose owner is known is in its part; one that is not is the touch alone
            if (ch.op === 'UPDATE' || scope === undefined) put(PLATFORM_SCOPE, touch, 2 * n);
          }
          if (ch.op === 'DELETE' && scope === undefined) continue;
        }
        if (scope === undefined) unresolved++;
        put(scope ?? PLATFORM_SCOPE, ch, 2 * n + 1);
        if (ch.new && tenant !== undefined) this.remember(info, ch.new, tenant);
      }
      for (const [scope, p] of mine) {
        const list = parts.get(scope);
        if (list) list.push(p);
        else parts.set(scope, [p]);
      }
    }
    return { parts, unresolved };
  }

  private tableOf(schema: string, name: string): PgTableInfo | undefined {
    const label = tableLabel({ schema, name });
    return this.tables.get(this.roots.get(label) ?? label);
  }

  private scopeOf(t: PgTableInfo, tenant: string | null): KeyScope {
    if (tenant === null) return PLATFORM_SCOPE;
    const scope = t.scopeKind === 'supplier' ? supplierScope(tenant) : weddingScope(tenant);
    return t.dataClass ? classScope(scope, t.dataClass) : scope;
  }

  private remember(t: PgTableInfo, row: RowValues, tenant: string | null): void {
    if (this.memo.size > 200_000) this.memo.clear();
    const key = t.primaryKey.map((k) => row[k]);
    if (key.every((v) => typeof v === 'string'))
      this.memo.set(`${tableLabel(t)}\u0000${JSON.stringify(key)}`, tenant);
  }

  /**
   * A row's tenant: its own column, or its path's first key followed to the parent (a row this
   * capture saw first, else the source now); null for a NULL key, undefined when it cannot be told.
   */
  private async tenantOf(
    c: pg.ClientBase,
    t: PgTableInfo,
    row: RowValues | undefined,
  ): Promise<string | null | undefined> {
    if (!row) return undefined;
    if (t.tenantColumn) return t.tenantColumn in row ? row[t.tenantColumn]! : undefined;
    const hop = t.tenantVia?.path[0];
    if (!hop) return undefined;
    const values = hop.columns.map((col) => row[col]);
    if (values.some((v) => v === undefined)) return undefined;
    if (values.some((v) => v === null)) return null;
    const parent = this.tables.get(tableLabel(hop.to));
    if (!parent) return undefined;
    const memoKey = `${tableLabel(parent)}\u0000${JSON.stringify(values)}`;
    const samePk = hop.toColumns.join('\u0000') === parent.primaryKey.join('\u0000');
    if (samePk && this.memo.has(memoKey)) return this.memo.get(memoKey);
    const tenant = await lookupTenant(c, parent, hop.toColumns, values as string[]);
    if (samePk && tenant !== undefined) this.memo.set(memoKey, tenant);
    return tenant;
  }
}

/** A row's primary key values, when the stream printed them all. */
function keyOf(t: PgTableInfo, row: RowValues | undefined): RowValues | undefined {
  if (!row || t.primaryKey.length === 0) return undefined;
  const key: RowValues = {};
  for (const k of t.primaryKey) {
    if (!(k in row)) return undefined;
    key[k] = row[k]!;
  }
  return key;
}

/**
 * The capture's slot alone, created when missing: before any repository exists (the first backup
 * creates it; the capture never does, so two processes never initialise one target at once), the
 * stream already starts here, and the first base point falls inside it.
 */
export async function ensureCaptureSlot(url: string, slot: string): Promise<void> {
  const c = await connectSource(url);
  try {
    if ((await slotState(c, slot)).status === 'missing') await createCaptureSlot(c, slot);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** The contract's name for the slot's lag and status (engine/pitr/status.ts reads it for GET /api/pitr). */
export { slotLag as captureLag } from './status.js';
