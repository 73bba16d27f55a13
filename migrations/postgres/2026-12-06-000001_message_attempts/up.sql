-- The send attempts of each message (issue 18: a message's timeline shows each attempt): one row
-- per outcome of a claim — sent, failed, or given back to wait (with why and WAHA's answer). A
-- claim that ends exactly like the one before (a session that stays not ready, a cap that stays
-- full) only bumps that row's `repeats` and `last_at`, so a message held for hours keeps a short log.
CREATE TABLE message_attempts (
    id           BIGSERIAL PRIMARY KEY,
    message_id   BIGINT    NOT NULL REFERENCES messages (id),
    attempt      INTEGER   NOT NULL,
    outcome      TEXT      NOT NULL,
    hold_reason  TEXT,
    api_response TEXT,
    repeats      INTEGER   NOT NULL DEFAULT 1,
    first_at     TIMESTAMP NOT NULL,
    last_at      TIMESTAMP NOT NULL
);
CREATE INDEX message_attempts_message ON message_attempts (message_id, id);
