/** The integrity validator's inputs and results, shared by its modules and by the workers that call it. */
import type { Storage } from '../../storage/types.js';

import type { ObjectRef, PointCheckOptions, ProblemKind } from '../repo/check.js';

export type { ObjectRef, ProblemKind };
export type ValidationMode = PointCheckOptions['mode'];

export interface Copy {
  target: string;
  storage: Storage;
}

export interface ValidateOptions {
  snapshotId: string;
  /** The point's objects as the catalog recorded them (Repository.objectsForSnapshot at backup time). */
  expected: ObjectRef[];
  copies: Copy[];
  masterKey: Buffer;
  mode: ValidationMode;
  /** Full mode only: the fraction (0..1) of packs read per target, chosen at random; default 1. */
  sample?: number;
  /** Replace damaged objects from a copy on another target proven healthy. */
  repair?: boolean;
  /** Packs read at once per target; default 4. */
  concurrency?: number;
}

export interface ValidationProblem {
  target: string;
  object: string;
  kind: ProblemKind;
  detail?: string;
  /** Set when repair was asked: true once the object was replaced and re-verified. */
  repaired?: boolean;
}

export interface Repair {
  target: string;
  object: string;
  from: string;
}

export interface TargetSummary {
  target: string;
  /** No problem left unrepaired on this target. */
  ok: boolean;
  objectsChecked: number;
  bytesRead: number;
}

export interface ValidationResult {
  /** passed when no problem remains (every one found was repaired). */
  status: 'passed' | 'failed';
  problems: ValidationProblem[];
  repairs: Repair[];
  perTarget: TargetSummary[];
}
