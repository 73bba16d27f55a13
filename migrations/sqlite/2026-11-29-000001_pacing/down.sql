ALTER TABLE messages DROP COLUMN hold_reason;
ALTER TABLE messages DROP COLUMN pace_slot_at;
ALTER TABLE devices DROP COLUMN pacing_jitter_ms;
ALTER TABLE devices DROP COLUMN pacing_min_interval_ms;
ALTER TABLE devices DROP COLUMN pace_in_flight_until;
ALTER TABLE devices DROP COLUMN pace_next_slot_at;
ALTER TABLE devices DROP COLUMN pace_last_send_at;
