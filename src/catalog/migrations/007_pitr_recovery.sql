-- Point-in-time recovery and disaster recovery (issue 21): what a recovery aimed at and how it
-- ended, named restore points on the source, custom plans, and measured drills.
ALTER TABLE recoveries ADD COLUMN target_lsn text;
ALTER TABLE recoveries ADD COLUMN restore_point text;
ALTER TABLE recoveries ADD COLUMN mode text NOT NULL DEFAULT 'new';
ALTER TABLE recoveries ADD COLUMN inclusive boolean NOT NULL DEFAULT true;
ALTER TABLE recoveries ADD COLUMN base_point jsonb;
ALTER TABLE recoveries ADD COLUMN result jsonb;
ALTER TABLE recoveries ADD COLUMN plan_id text;
ALTER TABLE recoveries ADD COLUMN scenario text;
ALTER TABLE recoveries ADD COLUMN step text;
ALTER TABLE recoveries ADD COLUMN started_at timestamptz;
ALTER TABLE recoveries ADD COLUMN duration_ms bigint;
ALTER TABLE recoveries ALTER COLUMN achieved_rpo_s TYPE real;

CREATE TABLE restore_points (
  name       text PRIMARY KEY,
  lsn        text NOT NULL,
  time       timestamptz NOT NULL,
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE dr_plans ADD COLUMN description text;
ALTER TABLE dr_plans ADD COLUMN params jsonb NOT NULL DEFAULT '{}';

CREATE TABLE dr_drills (
  id           uuid PRIMARY KEY,
  scenario     text NOT NULL,
  plan_id      text,
  trigger      text NOT NULL DEFAULT 'demand',
  state        text NOT NULL DEFAULT 'running',
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  rto_s        real,
  rpo_s        real,
  bytes        bigint,
  result       jsonb
);
CREATE INDEX dr_drills_scenario ON dr_drills (scenario, started_at DESC);
