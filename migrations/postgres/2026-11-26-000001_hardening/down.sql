ALTER TABLE messages DROP COLUMN cancel_reason;
ALTER TABLE messages DROP COLUMN revision;
ALTER TABLE devices DROP COLUMN revision;
DROP INDEX devices_session_id;
CREATE UNIQUE INDEX devices_live_session_id ON devices (session_id) WHERE deleted_at IS NULL;
