-- Liveness for the reconciler, and the replica state 'unverified' for 3-2-1 freshness.

-- A worker running an operation or a test touches heartbeat_at every few seconds in the catalog
-- (not in Redis, which may have lost everything): the reconciler only acts on rows nobody touches.
ALTER TABLE backup_operations
  ADD COLUMN job_id       text,
  ADD COLUMN heartbeat_at timestamptz,
  -- how many times the reconciler re-enqueued a lost job; it does so once, then fails the operation
  ADD COLUMN resumes      integer NOT NULL DEFAULT 0;

ALTER TABLE backup_tests
  ADD COLUMN job_id       text,
  ADD COLUMN heartbeat_at timestamptz,
  -- a drill's scratch database and directory, kept until they are dropped: {"database": …, "dir": …}
  ADD COLUMN scratch      jsonb;
CREATE INDEX backup_tests_open ON backup_tests (status) WHERE status IN ('queued', 'running') OR scratch IS NOT NULL;
CREATE INDEX backup_operations_open ON backup_operations (state) WHERE state IN ('queued', 'running');

-- unverified: the target was found to have lost its data; the copy is not counted until verified again.
ALTER TABLE replicas DROP CONSTRAINT replicas_state_check;
ALTER TABLE replicas ADD CONSTRAINT replicas_state_check
  CHECK (state IN ('pending', 'replicated', 'verified', 'failed', 'missing', 'unverified'));
CREATE INDEX replicas_target ON replicas (target, state);
