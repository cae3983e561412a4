/**
 * Erasure of one couple (or supplier) from every copy: the ledger entry and the scope's keys
 * destroyed on each target (crypto-shredding, Repository.erase), then the proof that it took: a
 * blob of the scope, found before, no longer opens. The certificate lists it all, signed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { CorruptionError, NotFoundError } from '../errors.js';
import type { Storage } from '../storage/types.js';
import type { ContentRef } from './api.js';
import { deriveKey } from './repo/crypto.js';
import { Repository } from './repo/repository.js';
import { allContentRefs } from './repo/snapshot.js';

export interface ErasureRequest {
  erasureId: string;
  /** `wedding:<id>` or `supplier:<id>`. */
  scope: string;
  reason: string;
  requestedBy: string;
  requestedAt: string;
}

export interface TargetErasure {
  target: string;
  /** Key ids of the scope's key sets destroyed on this copy. */
  keysDestroyed: string[];
  /** Key objects deleted or rewritten without the scope. */
  objectsRemoved: number;
  verifiedAt: string;
  /** What the proof read: `blob <ref> no longer opens: erased`, or why there was nothing to read. */
  verification: string;
}

/** Snapshots searched for a blob of the scope, newest first. */
const PROBE_SNAPSHOTS = 5;

/** A content reference of `scope` in one of the newest snapshots (record lists are the platform's, so readable). */
async function refOfScope(repo: Repository, scope: string): Promise<ContentRef | undefined> {
  const reader = repo.reader();
  for (const s of (await repo.listSnapshots()).reverse().slice(0, PROBE_SNAPSHOTS)) {
    for await (const ref of allContentRefs((await repo.loadSnapshot(s.id)).tree, reader))
      if (ref.scope === scope) return ref;
  }
  return undefined;
}

/** Whether the content still opens; false when its key is gone (NotFoundError: "erased"). */
const opens = (repo: Repository, ref: ContentRef): Promise<boolean> =>
  repo
    .reader()
    .readBuffer(ref)
    .then(
      () => true,
      (err: unknown) => (err instanceof NotFoundError ? false : Promise.reject(err)),
    );

const describeRef = (ref: ContentRef) =>
  ref.inline !== undefined ? 'an inline record' : `blob ${ref.blobs[0]?.slice(0, 16) ?? '?'}…`;

/**
 * Erases the scope on one copy and proves it: a repository opened afresh (no key kept in memory
 * from before) must fail to open the probe with NotFoundError ("erased"). Waits up to `waitMs`
 * for running backups and replications of the copy (they hold its lock).
 */
export async function eraseOnTarget(
  target: string,
  storage: Storage,
  masterKey: Buffer,
  req: ErasureRequest,
  opts: { waitMs?: number } = {},
): Promise<TargetErasure> {
  const now = () => new Date().toISOString();
  let repo: Repository;
  try {
    repo = await Repository.open(storage, masterKey);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    return {
      target,
      keysDestroyed: [],
      objectsRemoved: 0,
      verifiedAt: now(),
      verification: 'no repository on this copy',
    };
  }
  const probe = await refOfScope(repo, req.scope);
  const { objects, keyIds } = await repo.erase(
    { erasureId: req.erasureId, scope: req.scope, reason: req.reason, time: now() },
    opts,
  );
  let verification = 'no blob of the scope in the newest snapshots of this copy';
  if (probe) {
    if (await opens(await Repository.open(storage, masterKey), probe))
      throw new CorruptionError(
        `${target}: ${describeRef(probe)} of ${req.scope} still opens after its keys went`,
      );
    verification = `${describeRef(probe)} of ${req.scope} no longer opens: erased`;
  }
  return { target, keysDestroyed: keyIds, objectsRemoved: objects.length, verifiedAt: now(), verification };
}

/** A re-check of a done erasure on one copy: its ledger entry is there and the probe still fails. */
export async function recheckTarget(
  target: string,
  storage: Storage,
  masterKey: Buffer,
  erasureId: string,
  scope: string,
): Promise<{ target: string; ledger: boolean; verification: string; ok: boolean }> {
  const repo = await Repository.open(storage, masterKey);
  const ledger = (await repo.ledger()).some((e) => e.erasureId === erasureId && e.scope === scope);
  const probe = await refOfScope(repo, scope);
  if (!probe) return { target, ledger, verification: 'no blob of the scope left to read', ok: ledger };
  const opened = await opens(repo, probe);
  const verification = `${describeRef(probe)} of ${scope} ${opened ? 'STILL OPENS' : 'no longer opens: erased'}`;
  return { target, ledger, verification, ok: ledger && !opened };
}

export interface ErasureCertificate {
  erasureId: string;
  scope: string;
  reason: string;
  requestedBy: string;
  requestedAt: string;
  completedAt: string;
  targets: TargetErasure[];
  /** The prune that followed, per target: the erased scopes' blobs it deleted (added then, signed again). */
  prune?: PruneRecord[];
  /** HMAC-SHA256 under a key derived from the master key, over the fields above in this order (keys sorted). */
  signature: { alg: 'HMAC-SHA256'; key: 'master-key/erasure-certificate'; value: string };
  /** The same, for a person: a few lines. */
  text: string;
}

export interface PruneRecord {
  target: string;
  prunedAt: string;
  /** Blobs of erased scopes (every erasure not pruned before) deleted or left out of repacked packs. */
  erasedBlobs: number;
  bytesFreed: number;
  /** Why the target was not pruned, when it was not. */
  error?: string;
}

const signingKey = (masterKey: Buffer) => deriveKey(masterKey, 'erasure-certificate');

/** JSON with every object's keys sorted: the same text after a trip through storage that reorders them (jsonb). */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );

function signed(c: Omit<ErasureCertificate, 'signature' | 'text'>, masterKey: Buffer): string {
  const body = canonical([
    c.erasureId,
    c.scope,
    c.reason,
    c.requestedBy,
    c.requestedAt,
    c.completedAt,
    c.targets,
    ...(c.prune ? [c.prune] : []),
  ]);
  return createHmac('sha256', signingKey(masterKey)).update(body).digest('hex');
}

export function certify(
  req: ErasureRequest,
  targets: TargetErasure[],
  masterKey: Buffer,
  completedAt = new Date().toISOString(),
): ErasureCertificate {
  const body = { ...req, completedAt, targets };
  const text = [
    `Erasure ${req.erasureId}: ${req.scope}, requested by ${req.requestedBy} at ${req.requestedAt} (${req.reason}).`,
    ...targets.map(
      (t) =>
        `- ${t.target}: ${t.keysDestroyed.length} key set(s) destroyed (${t.keysDestroyed.join(', ') || 'none held'}), ` +
        `${t.objectsRemoved} key object(s) removed; verified ${t.verifiedAt}: ${t.verification}.`,
    ),
    `Completed ${completedAt}. Blobs of the scope are deleted by the next prune.`,
  ].join('\n');
  return {
    ...body,
    signature: { alg: 'HMAC-SHA256', key: 'master-key/erasure-certificate', value: signed(body, masterKey) },
    text,
  };
}

/** The certificate with the prune that followed it, signed again; its text says what went. */
export function withPrune(
  c: ErasureCertificate,
  prune: PruneRecord[],
  masterKey: Buffer,
): ErasureCertificate {
  const { signature: _old, text, ...body } = c;
  const next = { ...body, prune };
  const lines = prune.map((p) =>
    p.error
      ? `- ${p.target}: not pruned at ${p.prunedAt}: ${p.error}`
      : `- ${p.target}: pruned ${p.prunedAt}: ${p.erasedBlobs} blob(s) of erased scopes deleted, ${p.bytesFreed} bytes freed.`,
  );
  return {
    ...next,
    signature: { alg: 'HMAC-SHA256', key: 'master-key/erasure-certificate', value: signed(next, masterKey) },
    text: [
      text.replace(/\nCompleted .*$/s, ''),
      ...lines,
      `Completed ${c.completedAt}; blobs deleted by the prune above.`,
    ].join('\n'),
  };
}

/** True when the certificate was signed under this master key and not changed since. */
export function certificateValid(c: ErasureCertificate, masterKey: Buffer): boolean {
  const want = Buffer.from(signed(c, masterKey), 'hex');
  const got = Buffer.from(c.signature?.value ?? '', 'hex');
  return want.length === got.length && timingSafeEqual(want, got);
}
