-- Hardening (issue 11).

-- A session id is never reused: a new device whose name slugs to a taken id (live or deleted)
-- gets `<slug>-2`, `-3`, …, so a restored device always gets its own id back and a new device
-- never inherits a WAHA session still logged in to someone's phone. Older rows that shared an id
-- (possible under the previous partial index) keep it on the live/newest row; the others are
-- renamed `<id>-<row id>` so the index below can be built.
DROP INDEX devices_live_session_id;
UPDATE devices d
   SET session_id = d.session_id || '-' || d.id
 WHERE d.deleted_at IS NOT NULL
   AND EXISTS (SELECT 1 FROM devices o
                WHERE o.session_id = d.session_id AND o.id <> d.id
                  AND (o.deleted_at IS NULL OR o.id > d.id));
CREATE UNIQUE INDEX devices_session_id ON devices (session_id);

-- Optimistic concurrency: every update bumps the revision and checks the one it read, so two
-- concurrent PATCHes never lose each other's changes.
ALTER TABLE devices ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- Why a message was cancelled ('message_deleted', 'device_deleted'): a restore brings back only
-- what its own deletion cancelled.
ALTER TABLE messages ADD COLUMN cancel_reason TEXT;
UPDATE messages SET cancel_reason = 'message_deleted'
 WHERE status = 'cancelled' AND deleted_at IS NOT NULL;

-- Reads show at most the last four characters of a token.
UPDATE devices
   SET secret_token_masked = repeat('*', length(secret_token_masked) - 4) || right(secret_token_masked, 4)
 WHERE length(secret_token_masked) > 8;
