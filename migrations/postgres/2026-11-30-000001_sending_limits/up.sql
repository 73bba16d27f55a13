-- Sending safety, limits (issue 13). A device's own limits (API fields of the same names; NULL
-- means off, or the server's time zone):
--   timezone              IANA name the daily cap and the window are reckoned in
--   daily_cap             most sends per local day
--   send_window_start/end local HH:MM between which it may send (end before start spans midnight)
--   recipient_hourly_cap  most sends to one contact an hour
--   simulate_typing       mark the chat seen and show "typing…" before each text
-- its pause (WhatsApp's reach-out timelock), set and cleared by the dispatcher or an operator:
--   paused_until          until when its messages are held; then one probe goes
--   pause_reason          why (a hold reason, e.g. reach_out_timelock)
-- and, per message, when a send of it was let through (what the caps count, under the device's
-- lock).
ALTER TABLE devices ADD COLUMN timezone TEXT;
ALTER TABLE devices ADD COLUMN daily_cap BIGINT;
ALTER TABLE devices ADD COLUMN send_window_start TEXT;
ALTER TABLE devices ADD COLUMN send_window_end TEXT;
ALTER TABLE devices ADD COLUMN recipient_hourly_cap BIGINT;
ALTER TABLE devices ADD COLUMN simulate_typing BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE devices ADD COLUMN paused_until TIMESTAMP;
ALTER TABLE devices ADD COLUMN pause_reason TEXT;
ALTER TABLE messages ADD COLUMN admitted_at TIMESTAMP;
CREATE INDEX messages_device_admitted ON messages (device_id, admitted_at)
    WHERE admitted_at IS NOT NULL;

-- Opt-outs: contacts a device must never message again. A send to one ends `failed`
-- (`opted_out`) instead of going out.
CREATE TABLE suppressions (
    id         BIGSERIAL PRIMARY KEY,
    device_id  BIGINT    NOT NULL REFERENCES devices (id),
    phone      TEXT      NOT NULL,
    reason     TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX suppressions_device_phone ON suppressions (device_id, phone);
