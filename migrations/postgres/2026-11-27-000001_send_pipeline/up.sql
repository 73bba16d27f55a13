-- Send pipeline (issue 12): the message row is its own outbox.
--   due_at        when it may be sent: schedule_at, or the time it was accepted.
--   published_at  when its send job was confirmed by the broker; NULL = the relay still owes it.
--   relay_lease_until  a relay reserved it for publishing until then (another relay takes over
--                 after a crash: a job may be published twice, the dispatcher's claim sends once).
--   lease_until   a dispatcher claimed it (status processing) until then; an expired lease is
--                 reconciled (looked up on WAHA by its pre-generated id) before any resend.
--   wa_message_id the WhatsApp id generated before the send (NOWEB/GOWS), stored with the claim.
--   attempts      sends tried (holds while the session is not WORKING do not count).
ALTER TABLE messages ADD COLUMN due_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN published_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN relay_lease_until TIMESTAMP;
ALTER TABLE messages ADD COLUMN lease_until TIMESTAMP;
ALTER TABLE messages ADD COLUMN wa_message_id TEXT;
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET due_at = COALESCE(schedule_at, created_at);
ALTER TABLE messages ALTER COLUMN due_at SET NOT NULL;

-- What the relay scans: pending, live, not yet published, by due time. Partial, so it stays
-- as small as the backlog however large the table grows.
CREATE INDEX messages_outbox_due ON messages (due_at)
    WHERE status = 'pending' AND published_at IS NULL AND deleted_at IS NULL;
-- What the lease sweep scans.
CREATE INDEX messages_processing_lease ON messages (lease_until) WHERE status = 'processing';
-- Acks (ingest) find messages by WhatsApp id.
CREATE INDEX messages_provider_message_id ON messages (provider_message_id)
    WHERE provider_message_id IS NOT NULL;
