-- Repeated backup requests: an operation remembers which API key asked for it and a digest of what
-- it asked, so an identical request while it is queued or running returns it instead of a new one;
-- an Idempotency-Key names one request of one key for good.

ALTER TABLE backup_operations ADD COLUMN api_key_id uuid, ADD COLUMN request_hash text;
CREATE INDEX backup_operations_live_request ON backup_operations (api_key_id, request_hash)
  WHERE state IN ('queued', 'running');

CREATE TABLE idempotency_keys (
  api_key_id    uuid NOT NULL,
  key           text NOT NULL,
  request_hash  text NOT NULL,
  operation_id  uuid NOT NULL REFERENCES backup_operations (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (api_key_id, key)
);

-- Every wedding a database backup held, first seen in which point: POST /api/backups refuses a
-- weddingId only when neither the source nor any point knows it. Rows are only ever added (a
-- backup inserts its new weddings, nothing more), so a point of 20,000 weddings writes almost nothing.
CREATE TABLE backed_up_weddings (
  wedding_id         text PRIMARY KEY,
  recovery_point_id  text NOT NULL,
  first_seen_at      timestamptz NOT NULL DEFAULT now()
);
