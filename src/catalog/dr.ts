/** Disaster recovery in the catalog: custom plans (built-in ones are code, policy/dr-plans.ts) and measured drills. */
import type { Db } from './db.js';

export interface StoredPlan {
  id: string;
  name: string;
  scenario: string;
  description: string | null;
  params: Record<string, unknown>;
  steps: unknown[];
  createdAt: Date;
}

const PLAN = `id::text, name, scenario, description, params, steps, created_at AS "createdAt"`;

export async function createPlan(db: Db, p: Omit<StoredPlan, 'createdAt'>): Promise<void> {
  await db.query(
    `INSERT INTO dr_plans (id, name, scenario, description, params, steps) VALUES ($1, $2, $3, $4, $5, $6)`,
    [p.id, p.name, p.scenario, p.description, JSON.stringify(p.params), JSON.stringify(p.steps)],
  );
}

export async function listPlans(db: Db): Promise<StoredPlan[]> {
  return (await db.query<StoredPlan>(`SELECT ${PLAN} FROM dr_plans ORDER BY created_at`)).rows;
}

export async function getPlan(db: Db, id: string): Promise<StoredPlan | undefined> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
  return (await db.query<StoredPlan>(`SELECT ${PLAN} FROM dr_plans WHERE id = $1`, [id])).rows[0];
}

export interface Drill {
  id: string;
  scenario: string;
  planId: string | null;
  trigger: string;
  state: 'running' | 'completed' | 'failed';
  startedAt: Date;
  finishedAt: Date | null;
  rtoS: number | null;
  rpoS: number | null;
  bytes: number | null;
  result: unknown;
}

const DRILL = `id, scenario, plan_id AS "planId", trigger, state, started_at AS "startedAt",
  finished_at AS "finishedAt", rto_s AS "rtoS", rpo_s AS "rpoS", bytes::float8 AS bytes, result`;

export async function startDrill(
  db: Db,
  d: { id: string; scenario: string; planId?: string | undefined; trigger: string },
): Promise<void> {
  await db.query(
    `INSERT INTO dr_drills (id, scenario, plan_id, trigger) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
    [d.id, d.scenario, d.planId ?? null, d.trigger],
  );
}

export async function finishDrill(
  db: Db,
  id: string,
  d: { state: 'completed' | 'failed'; rtoS?: number; rpoS?: number; bytes?: number; result: unknown },
): Promise<void> {
  await db.query(
    `UPDATE dr_drills SET state = $2, finished_at = now(), rto_s = $3, rpo_s = $4, bytes = $5, result = $6
      WHERE id = $1`,
    [id, d.state, d.rtoS ?? null, d.rpoS ?? null, d.bytes ?? null, JSON.stringify(d.result)],
  );
}

export async function listDrills(db: Db, f: { scenario?: string; limit?: number } = {}): Promise<Drill[]> {
  return (
    await db.query<Drill>(
      `SELECT ${DRILL} FROM dr_drills WHERE ($1::text IS NULL OR scenario = $1) ORDER BY started_at DESC LIMIT $2`,
      [f.scenario ?? null, f.limit ?? 100],
    )
  ).rows;
}

/** The last completed drill of a scenario: its measured throughput estimates the next RTO. */
export async function lastDrill(db: Db, scenario: string): Promise<Drill | undefined> {
  return (
    await db.query<Drill>(
      `SELECT ${DRILL} FROM dr_drills WHERE scenario = $1 AND state = 'completed' ORDER BY finished_at DESC LIMIT 1`,
      [scenario],
    )
  ).rows[0];
}
