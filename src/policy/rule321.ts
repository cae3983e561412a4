/** The 3-2-1 rule for one recovery point: 3 verified copies, on 2 media, 1 of them offsite. */

export interface TargetLabels {
  media: string;
  location: string;
  offsite: boolean;
}

export interface CopyState {
  target: string;
  state: string;
}

export interface Rule321Result {
  meets321: boolean;
  reason321: string;
  copies: number;
  media: string[];
  offsite: number;
  /** Policy targets that do not hold a verified copy. */
  missing: string[];
}

/** Counts only verified copies: a replica nobody has read back is not yet a copy one can restore from. */
export function evaluate321(
  replicas: CopyState[],
  labels: Map<string, TargetLabels>,
  policyTargets: string[] = [...labels.keys()],
): Rule321Result {
  const good = replicas.filter((r) => r.state === 'verified' && labels.has(r.target));
  const media = [...new Set(good.map((r) => labels.get(r.target)!.media))].sort();
  const offsite = good.filter((r) => labels.get(r.target)!.offsite).length;
  const copies = good.length;
  const missing = policyTargets.filter((t) => !good.some((r) => r.target === t));
  const faults: string[] = [];
  if (copies < 3) faults.push(`${copies} ${copies === 1 ? 'copy' : 'copies'} of 3`);
  if (media.length < 2) faults.push(media.length === 0 ? 'media: none' : `media: ${media.join(', ')} only`);
  if (offsite < 1) faults.push('no offsite copy');
  const meets321 = faults.length === 0;
  const reason321 = meets321
    ? `${copies} copies; media: ${media.join(', ')}; ${offsite} offsite`
    : faults.join('; ') + (missing.length ? `; not verified on: ${missing.join(', ')}` : '');
  return { meets321, reason321, copies, media, offsite, missing };
}
