/** `wedvault erase` and `wedvault erasure verify`: erasure of one couple or supplier from the command line. */
import { randomUUID } from 'node:crypto';
import { createPool, ensureDatabase, type Db } from '../catalog/db.js';
import { createErasure, getErasure, updateErasure } from '../catalog/erasures.js';
import { migrate } from '../catalog/migrate.js';
import type { Config } from '../config/index.js';
import { supplierScope, weddingScope } from '../engine/api.js';
import { certificateValid, recheckTarget, type ErasureCertificate } from '../engine/erase.js';
import { NotFoundError, ValidationError } from '../errors.js';
import { createStorage } from '../storage/factory.js';
import { carryOutErasure, ERASURE_LOCK_WAIT_MS, requestOf } from '../producers/erasure.js';

async function withCatalog<T>(config: Config, fn: (db: Db) => Promise<T>): Promise<T> {
  await ensureDatabase(config.databaseUrl);
  const db = createPool(config.databaseUrl, 1);
  try {
    await migrate(db);
    return await fn(db);
  } finally {
    await db.end();
  }
}

const storageOf = (config: Config, name: string) =>
  createStorage(
    config.targets.find((t) => t.name === name)!,
    config.credentialsEnv,
  );

export interface EraseOptions {
  wedding?: string;
  supplier?: string;
  reason: string;
  requestedBy: string;
}

/** Erases on every target now (the catalog records it as the service would); returns the certificate. */
export async function eraseNow(config: Config, o: EraseOptions) {
  if ((o.wedding === undefined) === (o.supplier === undefined))
    throw new ValidationError('name exactly one of --wedding and --supplier');
  const scope = o.wedding !== undefined ? weddingScope(o.wedding) : supplierScope(o.supplier!);
  return withCatalog(config, async (db) => {
    const { erasure } = await createErasure(db, {
      id: randomUUID(),
      scope,
      reason: o.reason,
      requestedBy: o.requestedBy,
    });
    if (erasure.status === 'completed' && erasure.certificate)
      return erasure.certificate as unknown as ErasureCertificate;
    try {
      return await carryOutErasure(
        { config, db, storage: (name) => storageOf(config, name) },
        requestOf(erasure),
        {
          waitMs: ERASURE_LOCK_WAIT_MS,
          onTarget: (target) => console.error(`wedvault: ${scope} erased on ${target}`),
        },
      );
    } catch (err) {
      await updateErasure(db, erasure.erasureId, { status: 'failed', error: String(err) });
      throw err;
    }
  });
}

/** The certificate's signature, and on every target the ledger entry and a failing read. */
export async function verifyErasure(config: Config, erasureId: string) {
  return withCatalog(config, async (db) => {
    const e = await getErasure(db, erasureId);
    if (!e?.certificate)
      throw new NotFoundError(`erasure ${erasureId} has no certificate (unknown or not completed)`);
    const signature = certificateValid(e.certificate as unknown as ErasureCertificate, config.masterKey);
    const targets = [];
    for (const t of config.targets)
      targets.push(
        await recheckTarget(t.name, storageOf(config, t.name), config.masterKey, erasureId, e.scope),
      );
    return { erasureId, scope: e.scope, signature, targets, ok: signature && targets.every((t) => t.ok) };
  });
}
