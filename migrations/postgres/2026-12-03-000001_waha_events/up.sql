-- Webhook ingest (issue 15). Every event WAHA posts is recorded here before the ingest answers
-- 2xx (so a crash right after the answer loses nothing), once per WAHA event id (WAHA retries a
-- delivery with the same id: a replay changes nothing), and applied afterwards:
--   processed_at  when it was applied (NULL: still owed)
--   lease_until   a processor's reservation while it applies it
--   attempts      tries so far (an ack can arrive before its send is recorded: tried again)
CREATE TABLE waha_events (
    id           BIGSERIAL PRIMARY KEY,
    event_id     TEXT      NOT NULL,
    session_id   TEXT      NOT NULL,
    event        TEXT      NOT NULL,
    body         TEXT      NOT NULL,
    received_at  TIMESTAMP NOT NULL,
    processed_at TIMESTAMP,
    lease_until  TIMESTAMP,
    attempts     INTEGER   NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE UNIQUE INDEX waha_events_event_id ON waha_events (event_id);
CREATE INDEX waha_events_owed ON waha_events (id) WHERE processed_at IS NULL;
