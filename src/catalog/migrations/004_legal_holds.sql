-- Legal holds, forgotten recovery points and purge runs.

-- A hold freezes one recovery point, or every point holding one wedding, until it is released or
-- its `until` passes. recovery_point_id is text: recovery_points.id is the snapshot's id, not a uuid.
CREATE TABLE legal_holds (
  id                uuid PRIMARY KEY,
  wedding_id        text,
  recovery_point_id text REFERENCES recovery_points (id),
  reason            text NOT NULL,
  until             timestamptz,
  created_by        uuid,
  created_at        timestamptz NOT NULL DEFAULT now(),
  released_at       timestamptz,
  released_by       uuid,
  CHECK ((wedding_id IS NULL) <> (recovery_point_id IS NULL))
);
CREATE INDEX legal_holds_active ON legal_holds (created_at) WHERE released_at IS NULL;

-- A forgotten point keeps its row (replicas, tests, operations and audit rows name it): deleted_at
-- (since 001) says it is forgotten, and every listing already leaves such rows out. The repository
-- snapshots go after it, on every target; snapshots_removed_at says they are all gone, so a purge
-- that stopped half-way removes the rest next time.
ALTER TABLE recovery_points
  ADD COLUMN forget_reason        text,
  ADD COLUMN snapshots_removed_at timestamptz;
CREATE INDEX recovery_points_forgetting ON recovery_points (deleted_at)
  WHERE deleted_at IS NOT NULL AND snapshots_removed_at IS NULL;

-- One row per purge job run: what it forgot and what it kept.
CREATE TABLE purge_runs (
  id          uuid PRIMARY KEY,
  job_id      text,
  state       text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'completed', 'failed')),
  forgotten   jsonb NOT NULL DEFAULT '[]',
  kept        integer NOT NULL DEFAULT 0,
  error       jsonb,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
