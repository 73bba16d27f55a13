DROP INDEX messages_provider_message_id;
DROP INDEX messages_processing_lease;
DROP INDEX messages_outbox_due;
ALTER TABLE messages DROP COLUMN attempts;
ALTER TABLE messages DROP COLUMN wa_message_id;
ALTER TABLE messages DROP COLUMN lease_until;
ALTER TABLE messages DROP COLUMN relay_lease_until;
ALTER TABLE messages DROP COLUMN published_at;
ALTER TABLE messages DROP COLUMN due_at;
