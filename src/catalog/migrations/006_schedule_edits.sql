-- Wedding-aware schedules: who last changed a schedule through the API (PUT /api/schedules/:id).
-- A start-up rebuild writes the defaults and the config's patterns only into rows nobody edited.
ALTER TABLE schedules ADD COLUMN edited_by text;
ALTER TABLE schedules ADD COLUMN edited_at timestamptz;
CREATE INDEX recovery_points_wedding_type ON recovery_points (wedding_id, type) WHERE deleted_at IS NULL;
