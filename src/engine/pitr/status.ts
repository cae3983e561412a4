/**
 * What point-in-time recovery can reach, seen from the repositories: each copy's recoverable
 * window (pitrWindow over its base points), and the capture's lag on the source.
 */
import { errorMessage } from '../../errors.js';
import type { Storage } from '../../storage/types.js';
import { connectSource, slotLagBytes, slotState } from '../postgres/pitr-source.js';
import { Repository } from '../repo/repository.js';
import { snapshotTree } from '../tree.js';
import { basePoints } from './base.js';
import { pitrWindow, type BasePoint, type PitrWindow } from './window.js';

export interface CopyWindow {
  target: string;
  bases: BasePoint[];
  window?: PitrWindow | undefined;
  /** Why the copy could not say (unreachable, no repository, segments unreadable). */
  error?: string | undefined;
}

/** Each copy's window; a copy whose segments cannot be read still names its base points. */
export async function copyWindows(
  copies: { target: string; storage: Storage }[],
  masterKey: Buffer,
  source: string,
): Promise<CopyWindow[]> {
  return Promise.all(
    copies.map(async ({ target, storage }): Promise<CopyWindow> => {
      let bases: BasePoint[] = [];
      try {
        const repo = await Repository.open(storage, masterKey);
        bases = await basePoints(repo);
        return { target, bases, window: await pitrWindow(repo, source, bases) };
      } catch (err) {
        return { target, bases, error: errorMessage(err) };
      }
    }),
  );
}

/**
 * The window a recovery can aim into, over every copy: from the earliest recoverable time any copy
 * offers to the latest. Where no copy reads its segments, the oldest base point bounds it below.
 */
export function overallWindow(ws: CopyWindow[]): { earliest?: string; latest?: string } {
  const earliest = ws.map((w) => w.window?.earliest ?? w.bases[0]?.time).filter((t): t is string => !!t);
  const latest = ws.map((w) => w.window?.latest).filter((t): t is string => !!t);
  const min = earliest.sort()[0];
  const max = latest.sort().at(-1);
  return { ...(min && { earliest: min }), ...(max && { latest: max }) };
}

/** The capture's slot on the source: bytes of WAL it has not confirmed, or that it is missing or lost. */
export async function slotLag(
  url: string,
  slot: string,
): Promise<{ lagBytes: number; slotStatus: 'ok' | 'missing' | 'lost' }> {
  const c = await connectSource(url);
  try {
    const state = await slotState(c, slot);
    if (state.status === 'missing') return { lagBytes: 0, slotStatus: 'missing' };
    return { lagBytes: (await slotLagBytes(c, slot)) ?? 0, slotStatus: state.status };
  } finally {
    await c.end();
  }
}

/**
 * The weddings whose ceremony falls in the next `days` days, from the newest database point of the
 * first copy that opens (the source may be the thing that was lost): a staged recovery's first stage.
 */
export async function upcomingWeddings(
  copies: { target: string; storage: Storage }[],
  masterKey: Buffer,
  days: number,
  now = new Date(),
): Promise<string[]> {
  const until = new Date(now.getTime() + days * 86_400_000).toISOString().slice(0, 10);
  const today = now.toISOString().slice(0, 10);
  for (const { storage } of copies) {
    try {
      const repo = await Repository.open(storage, masterKey);
      const bases = await basePoints(repo);
      const newest = bases.at(-1);
      if (!newest) continue;
      const tree = snapshotTree((await repo.loadSnapshot(newest.id)).tree).postgres;
      return (tree?.tenants ?? [])
        .filter((t) => t.ceremonyDate !== null && t.ceremonyDate >= today && t.ceremonyDate <= until)
        .map((t) => t.id);
    } catch {
      continue;
    }
  }
  return [];
}
