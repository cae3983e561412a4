-- Erasures of one couple (or supplier) from every copy: the request, each target's outcome and the
-- signed certificate. The ledger that backups and restores obey lives in each repository
-- (ledger/<erasureId>); this is the service's record of it.
CREATE TABLE erasures (
  id            uuid PRIMARY KEY,
  -- the key scope erased: wedding:<id> or supplier:<id>
  scope         text NOT NULL,
  reason        text NOT NULL,
  requested_by  text NOT NULL,
  status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'completed', 'failed')),
  targets       jsonb NOT NULL DEFAULT '[]',
  certificate   jsonb,
  error         text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  completed_at  timestamptz
);
-- one open or done erasure per scope: the same request twice answers the first erasureId
CREATE UNIQUE INDEX erasures_scope ON erasures (scope) WHERE status <> 'failed';
