-- Send pipeline (issue 12); see migrations/postgres/2026-11-27-000001_send_pipeline for the
-- meaning of each column. SQLite cannot add a NOT NULL column without a default: due_at is
-- filled here and always written by inserts.
ALTER TABLE messages ADD COLUMN due_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN published_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN relay_lease_until TIMESTAMP;
ALTER TABLE messages ADD COLUMN lease_until TIMESTAMP;
ALTER TABLE messages ADD COLUMN wa_message_id TEXT;
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET due_at = COALESCE(schedule_at, created_at);

CREATE INDEX messages_outbox_due ON messages (due_at)
    WHERE status = 'pending' AND published_at IS NULL AND deleted_at IS NULL;
CREATE INDEX messages_processing_lease ON messages (lease_until) WHERE status = 'processing';
CREATE INDEX messages_provider_message_id ON messages (provider_message_id)
    WHERE provider_message_id IS NOT NULL;
