-- wedvault catalog, version 1: operations, recovery points, targets, replicas, tests, and room for
-- recoveries, schedules, disaster-recovery plans and erasure requests.

CREATE TABLE targets (
  name            text PRIMARY KEY,
  kind            text NOT NULL,
  labels          jsonb NOT NULL DEFAULT '{}',
  healthy         boolean NOT NULL DEFAULT true,
  last_ok_at      timestamptz,
  last_error_at   timestamptz,
  last_error      text,
  latency_ms      integer,
  error_count     integer NOT NULL DEFAULT 0,
  used_bytes      bigint,
  free_bytes      bigint,
  updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backup_operations (
  id                uuid PRIMARY KEY,
  type              text NOT NULL CHECK (type IN ('full', 'incremental', 'files')),
  state             text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'completed', 'failed')),
  priority          integer NOT NULL,
  wedding_id        text,
  components        jsonb NOT NULL DEFAULT '[]',
  recovery_point_id text,
  progress          real NOT NULL DEFAULT 0,
  bytes             bigint NOT NULL DEFAULT 0,
  error             jsonb,
  follow_ups        jsonb NOT NULL DEFAULT '[]',
  attempts          integer NOT NULL DEFAULT 0,
  requested_by      text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz
);
CREATE INDEX backup_operations_state ON backup_operations (state, created_at);

CREATE TABLE recovery_points (
  id               text PRIMARY KEY,
  -- One recovery point per operation: a retried job cannot create a second one.
  operation_id     uuid UNIQUE REFERENCES backup_operations (id),
  type             text NOT NULL,
  wedding_id       text,
  primary_target   text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  consistent_time  timestamptz,
  lsn              text,
  files            integer NOT NULL DEFAULT 0,
  bytes_read       bigint NOT NULL DEFAULT 0,
  bytes_new        bigint NOT NULL DEFAULT 0,
  bytes_stored     bigint NOT NULL DEFAULT 0,
  objects          jsonb NOT NULL DEFAULT '[]',
  checksum         text NOT NULL,
  summary          jsonb NOT NULL DEFAULT '{}',
  healthy          boolean NOT NULL DEFAULT true,
  deleted_at       timestamptz
);
CREATE INDEX recovery_points_created ON recovery_points (created_at);
CREATE INDEX recovery_points_wedding ON recovery_points (wedding_id, created_at);

CREATE TABLE replicas (
  recovery_point_id text NOT NULL REFERENCES recovery_points (id) ON DELETE CASCADE,
  target            text NOT NULL,
  state             text NOT NULL CHECK (state IN ('pending', 'replicated', 'verified', 'failed', 'missing')),
  objects           integer NOT NULL DEFAULT 0,
  bytes             bigint NOT NULL DEFAULT 0,
  copied_objects    integer NOT NULL DEFAULT 0,
  copied_bytes      bigint NOT NULL DEFAULT 0,
  checksum          text,
  error             text,
  replicated_at     timestamptz,
  verified_at       timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (recovery_point_id, target)
);

CREATE TABLE backup_tests (
  id                uuid PRIMARY KEY,
  recovery_point_id text NOT NULL,
  mode              text NOT NULL CHECK (mode IN ('quick', 'full', 'drill')),
  status            text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'passed', 'failed')),
  targets           text[] NOT NULL DEFAULT '{}',
  problems          jsonb NOT NULL DEFAULT '[]',
  repairs           jsonb NOT NULL DEFAULT '[]',
  rto_ms            integer,
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz
);
CREATE INDEX backup_tests_point ON backup_tests (recovery_point_id, created_at);

CREATE TABLE schedules (
  id           text PRIMARY KEY,
  queue        text NOT NULL,
  every_ms     bigint,
  pattern      text,
  tz           text,
  template     jsonb NOT NULL DEFAULT '{}',
  wedding_id   text,
  enabled      boolean NOT NULL DEFAULT true,
  updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recoveries (
  id                uuid PRIMARY KEY,
  state             text NOT NULL DEFAULT 'queued',
  target_time       timestamptz,
  components        jsonb NOT NULL DEFAULT '[]',
  wedding_id        text,
  target_database   text,
  dry_run           boolean NOT NULL DEFAULT false,
  recovery_point_id text,
  progress          real NOT NULL DEFAULT 0,
  achieved_rpo_s    integer,
  validation        jsonb,
  error             jsonb,
  created_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz
);

CREATE TABLE dr_plans (
  id          uuid PRIMARY KEY,
  name        text NOT NULL,
  scenario    text NOT NULL,
  steps       jsonb NOT NULL DEFAULT '[]',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE erasure_requests (
  id          uuid PRIMARY KEY,
  wedding_id  text NOT NULL,
  state       text NOT NULL DEFAULT 'queued',
  evidence    jsonb NOT NULL DEFAULT '[]',
  created_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);

CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  name         text NOT NULL UNIQUE,
  -- SHA-256 of the key; the key itself is shown once and never stored.
  key_hash     bytea NOT NULL UNIQUE,
  scopes       text[] NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);

CREATE TABLE audit_log (
  id          bigserial PRIMARY KEY,
  at          timestamptz NOT NULL DEFAULT now(),
  api_key_id  uuid,
  actor       text,
  method      text NOT NULL,
  path        text NOT NULL,
  status      integer NOT NULL,
  request_id  text,
  ip          text,
  resource    text,
  details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
