-- Sending safety, pacing (issue 13). The device row holds its pacing state, changed only under
-- that row's lock by the claim that decides (so the rule holds across dispatcher replicas):
--   pace_last_send_at     when its last send finished (its start, while in flight)
--   pace_next_slot_at     the next free slot for a message that must wait
--   pace_in_flight_until  set while one of its sends is in flight (until that claim expires)
-- and the message the slot it holds and why it waits:
--   pace_slot_at          the slot reserved for it
--   hold_reason           why a pending message waits (e.g. `pacing`); NULL when it does not
ALTER TABLE devices ADD COLUMN pace_last_send_at TIMESTAMP;
ALTER TABLE devices ADD COLUMN pace_next_slot_at TIMESTAMP;
ALTER TABLE devices ADD COLUMN pace_in_flight_until TIMESTAMP;
-- The device's own pacing (API fields of the same names); NULL means the server's default.
ALTER TABLE devices ADD COLUMN pacing_min_interval_ms BIGINT;
ALTER TABLE devices ADD COLUMN pacing_jitter_ms BIGINT;
ALTER TABLE messages ADD COLUMN pace_slot_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN hold_reason TEXT;
