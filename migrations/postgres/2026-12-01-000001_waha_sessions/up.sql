-- Devices on WAHA (issue 14). Each device's WAHA session is kept in line with its row by a
-- sync job through the same durable hand-off as messages: the row owes a sync while
-- `session_sync_due_at` is set and `session_sync_published_at` is not; the relay reserves it
-- (`session_sync_lease_until`) and publishes a `sync_session` job; the dispatcher makes WAHA
-- match the row and clears the debt only if no newer change owed another sync meanwhile.
--   webhook_hmac_key         the key WAHA signs this session's webhooks with (never shown)
--   session_sync_attempts    failed syncs since the last success (backoff)
--   session_sync_error       the last failure, for operators
--   session_synced_at        when WAHA last matched the row
ALTER TABLE devices ADD COLUMN webhook_hmac_key TEXT;
ALTER TABLE devices ADD COLUMN session_sync_due_at TIMESTAMP;
ALTER TABLE devices ADD COLUMN session_sync_published_at TIMESTAMP;
ALTER TABLE devices ADD COLUMN session_sync_lease_until TIMESTAMP;
ALTER TABLE devices ADD COLUMN session_sync_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN session_sync_error TEXT;
ALTER TABLE devices ADD COLUMN session_synced_at TIMESTAMP;
-- Every device that exists now is owed one sync: its session is created or brought in line.
UPDATE devices SET session_sync_due_at = created_at;
CREATE INDEX devices_session_sync_owed ON devices (session_sync_due_at)
    WHERE session_sync_due_at IS NOT NULL AND session_sync_published_at IS NULL;
