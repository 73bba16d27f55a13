-- Hardening (issue 11); see migrations/postgres/2026-11-26-000001_hardening for the reasons.
DROP INDEX devices_live_session_id;
UPDATE devices
   SET session_id = session_id || '-' || id
 WHERE deleted_at IS NOT NULL
   AND EXISTS (SELECT 1 FROM devices o
                WHERE o.session_id = devices.session_id AND o.id <> devices.id
                  AND (o.deleted_at IS NULL OR o.id > devices.id));
CREATE UNIQUE INDEX devices_session_id ON devices (session_id);

ALTER TABLE devices ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

ALTER TABLE messages ADD COLUMN cancel_reason TEXT;
UPDATE messages SET cancel_reason = 'message_deleted'
 WHERE status = 'cancelled' AND deleted_at IS NOT NULL;

UPDATE devices
   SET secret_token_masked = substr(replace(hex(zeroblob(length(secret_token_masked))), '00', '*'), 1, length(secret_token_masked) - 4)
                             || substr(secret_token_masked, -4)
 WHERE length(secret_token_masked) > 8;
