DROP INDEX devices_session_sync_owed;
ALTER TABLE devices DROP COLUMN session_synced_at;
ALTER TABLE devices DROP COLUMN session_sync_error;
ALTER TABLE devices DROP COLUMN session_sync_attempts;
ALTER TABLE devices DROP COLUMN session_sync_lease_until;
ALTER TABLE devices DROP COLUMN session_sync_published_at;
ALTER TABLE devices DROP COLUMN session_sync_due_at;
ALTER TABLE devices DROP COLUMN webhook_hmac_key;
