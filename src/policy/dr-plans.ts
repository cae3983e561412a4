/**
 * Disaster-recovery plans as data: for each scenario, the ordered steps, the copies they would use
 * and an RTO estimate from the last drill's measured throughput. Pure: the caller hands in what
 * the catalog knows (targets, points, the last drill) and executes the steps elsewhere.
 */

export const SCENARIOS = [
  'database-lost',
  'primary-target-lost',
  'region-lost',
  'corruption',
  'wedding-deleted',
  'catalog-lost',
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** How a step is carried out: the executor maps each to an engine call. */
export type StepAction =
  | 'stop-writes'
  | 'choose-point'
  | 'restore-point'
  | 'recover-to-target'
  | 'merge-wedding'
  | 'failover'
  | 'rebuild-catalog'
  | 'validate'
  | 'repoint-application'
  | 'replicate';

export interface PlanStep {
  n: number;
  action: StepAction;
  text: string;
}

export interface PlanTarget {
  name: string;
  location: string;
  healthy: boolean;
}

export interface PlanPoint {
  id: string;
  time: string;
  type: string;
  bytes: number;
  /** Targets with a sound copy (replicated or verified). */
  targets: string[];
  /** Its last verification or drill passed. */
  verified: boolean;
}

export interface PlanParams {
  /** primary-target-lost: the lost target (default the primary). */
  lostTarget?: string | undefined;
  /** region-lost: the lost location label (default the primary's). */
  region?: string | undefined;
  /** corruption: the newest point verified clean before this time (ISO). */
  before?: string | undefined;
  /** wedding-deleted: the wedding and the time it was deleted (recovered to one second before). */
  weddingId?: string | undefined;
  deletedAt?: string | undefined;
}

export interface PlanInput {
  targets: PlanTarget[];
  primaryTarget: string;
  /** Oldest first. */
  points: PlanPoint[];
  /** The last completed drill of the scenario: its duration and the bytes it moved. */
  lastDrill?: { rtoS: number | null; bytes: number | null; finishedAt?: string | Date | null } | undefined;
  now: Date;
}

export interface DrPlan {
  id: string;
  name: string;
  scenario: Scenario;
  builtIn: boolean;
  params: PlanParams;
  steps: PlanStep[];
  /** Targets the plan reads from, in order. */
  copies: string[];
  /** The recovery point it restores (the base point for a point-in-time recovery). */
  point?: { id: string; time: string } | undefined;
  /** Where the recovery aims, when it replays change segments. */
  targetTime?: string | undefined;
  rto: { estimateS: number | null; basis: string };
  warnings: string[];
}

const NAMES: Record<Scenario, string> = {
  'database-lost': 'The source database is lost',
  'primary-target-lost': 'The primary backup target is lost',
  'region-lost': 'A region is lost (every target with its location label)',
  corruption: 'Corruption or ransomware: back to the newest point verified clean',
  'wedding-deleted': 'One wedding deleted: merge it back as of just before',
  'catalog-lost': 'The catalog is lost: rebuild it from the repositories',
};

export function isScenario(s: string): s is Scenario {
  return (SCENARIOS as readonly string[]).includes(s);
}

/** The plan of a scenario given what the catalog knows now. */
export function buildPlan(
  scenario: Scenario,
  input: PlanInput,
  params: PlanParams = {},
  meta: { id?: string; name?: string } = {},
): DrPlan {
  const warnings: string[] = [];
  const primary = input.targets.find((t) => t.name === input.primaryTarget);
  const ordered = [...input.targets].sort(
    (a, b) =>
      Number(b.healthy) - Number(a.healthy) ||
      Number(b.name === input.primaryTarget) - Number(a.name === input.primaryTarget),
  );
  let usable = ordered;
  if (scenario === 'primary-target-lost') {
    const lost = params.lostTarget ?? input.primaryTarget;
    usable = ordered.filter((t) => t.name !== lost);
  }
  if (scenario === 'region-lost') {
    const region = params.region ?? primary?.location ?? 'local';
    usable = ordered.filter((t) => t.location !== region);
    if (usable.length === 0)
      warnings.push(`every target is in location ${region}: nothing survives its loss`);
  }
  const copies = usable.map((t) => t.name);
  const held = input.points.filter((p) => p.targets.some((t) => copies.includes(t)));
  const db = held.filter((p) => p.type !== 'files');
  let point: PlanPoint | undefined = db.at(-1);
  let targetTime: string | undefined;
  if (scenario === 'corruption') {
    const before = params.before ?? input.now.toISOString();
    point = db.filter((p) => p.verified && p.time < before).at(-1);
    if (!point) warnings.push(`no point verified clean before ${before}`);
  }
  if (scenario === 'wedding-deleted') {
    if (!params.weddingId) warnings.push('name the wedding (weddingId) and when it was deleted (deletedAt)');
    const deleted = params.deletedAt ? Date.parse(params.deletedAt) : input.now.getTime();
    targetTime = new Date(deleted - 1000).toISOString();
    point = db.filter((p) => p.time <= targetTime!).at(-1);
  }
  if (!point && scenario !== 'catalog-lost') warnings.push('no recovery point on the usable copies');
  const steps = stepsFor(scenario, { copies, point, targetTime, params });
  return {
    id: meta.id ?? scenario,
    name: meta.name ?? NAMES[scenario],
    scenario,
    builtIn: meta.id === undefined,
    params,
    steps: steps.map((text, i) => ({ n: i + 1, action: text[0], text: text[1] })),
    copies,
    ...(point && { point: { id: point.id, time: point.time } }),
    ...(targetTime && { targetTime }),
    rto: estimateRto(scenario, point, input.lastDrill),
    warnings,
  };
}

function stepsFor(
  scenario: Scenario,
  s: { copies: string[]; point?: PlanPoint | undefined; targetTime?: string | undefined; params: PlanParams },
): [StepAction, string][] {
  const from = s.copies.join(', ') || '(no copy left)';
  const pt = s.point ? `${s.point.id} (${s.point.time})` : '(none)';
  const validate: [StepAction, string] = [
    'validate',
    'validate the recovered database: row counts, foreign keys, payment totals',
  ];
  const repoint: [StepAction, string] = [
    'repoint-application',
    'point the application at the recovered database',
  ];
  switch (scenario) {
    case 'database-lost':
      return [
        ['choose-point', `newest base point on ${from}: ${pt}`],
        [
          'recover-to-target',
          'recover into a new database to the latest recoverable time (base point + change segments)',
        ],
        validate,
        repoint,
      ];
    case 'primary-target-lost':
      return [
        ['failover', `read from the surviving copies, in order: ${from}`],
        ['restore-point', `restore the newest point ${pt} into a new database to prove the copies`],
        validate,
        ['replicate', 'configure a replacement target and replicate every point to it'],
      ];
    case 'region-lost':
      return [
        ['failover', `read from the copies outside the lost region, in order: ${from}`],
        [
          'recover-to-target',
          `recover the database into the surviving region from ${pt} and the change segments`,
        ],
        validate,
        repoint,
        ['replicate', 'replicate every point to a target in a third location'],
      ];
    case 'corruption':
      return [
        ['stop-writes', 'stop the writers: the corruption must not spread into new points'],
        ['choose-point', `newest point verified clean before ${s.params.before ?? 'now'}: ${pt}`],
        ['restore-point', `restore ${pt} into a new database from ${from}`],
        validate,
        repoint,
      ];
    case 'wedding-deleted':
      return [
        ['choose-point', `base point before ${s.targetTime}: ${pt}`],
        [
          'merge-wedding',
          `merge wedding ${s.params.weddingId ?? '(weddingId)'} as of ${s.targetTime} into the live database, one transaction, refusing conflicts`,
        ],
        validate,
      ];
    case 'catalog-lost':
      return [
        [
          'rebuild-catalog',
          `rebuild recovery points, replicas and backed-up weddings from any one of: ${from}`,
        ],
        ['validate', 'compare the rebuilt points with each copy (wedvault check)'],
      ];
  }
}

/** Bytes of the point over the last drill's throughput; the drill's own duration without a size. */
function estimateRto(
  scenario: Scenario,
  point: PlanPoint | undefined,
  drill: PlanInput['lastDrill'],
): DrPlan['rto'] {
  if (!drill || drill.rtoS === null)
    return { estimateS: null, basis: `no drill of ${scenario} yet: run one` };
  if (drill.bytes && point && drill.rtoS > 0) {
    const bps = drill.bytes / drill.rtoS;
    return {
      estimateS: Math.ceil(point.bytes / bps),
      basis: `${point.bytes} bytes at the last drill's ${Math.round(bps)} B/s`,
    };
  }
  return { estimateS: Math.ceil(drill.rtoS), basis: 'the last drill’s measured duration' };
}
