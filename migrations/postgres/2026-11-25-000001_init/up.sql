-- Wapim's first schema. Column types are the portable subset (BIGINT ids, TEXT, BOOLEAN,
-- TIMESTAMP holding UTC) so that the SQLite backend can use the same schema.rs; enums and JSON
-- are TEXT, UUIDs are TEXT.

CREATE TABLE devices (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT      NOT NULL,
    session_id          TEXT      NOT NULL,
    phone_number        TEXT      NOT NULL,
    status              TEXT      NOT NULL DEFAULT 'scan_qr_code',
    -- SHA-256 of the secret token; the token itself is never stored.
    secret_token_hash   TEXT      NOT NULL,
    -- What reads show: first and last four characters, the rest starred.
    secret_token_masked TEXT      NOT NULL,
    webhook_status      BOOLEAN   NOT NULL DEFAULT FALSE,
    webhook_url         TEXT,
    -- JSON array of WAHA event names, as text.
    webhook_options     TEXT,
    opening_message     TEXT,
    closing_message     TEXT,
    auto_reply          TEXT,
    auto_forward        TEXT,
    auto_forward_number TEXT,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    deleted_at          TIMESTAMP
);

-- A session id names one live device (WAHA knows sessions by this name); a soft-deleted
-- device frees its name, and restoring it checks the name is still free.
CREATE UNIQUE INDEX devices_live_session_id ON devices (session_id) WHERE deleted_at IS NULL;

CREATE TABLE messages (
    id                  BIGSERIAL PRIMARY KEY,
    device_id           BIGINT    NOT NULL REFERENCES devices (id),
    session_id          TEXT      NOT NULL,
    batch_id            TEXT,
    is_queue            BOOLEAN   NOT NULL DEFAULT TRUE,
    recipient           TEXT      NOT NULL,
    message_type        TEXT      NOT NULL,
    message             TEXT,
    file_mimetype       TEXT,
    file_filename       TEXT,
    file_url            TEXT,
    calendar_type       TEXT      NOT NULL DEFAULT 'masehi',
    schedule_at         TIMESTAMP,
    status              TEXT      NOT NULL DEFAULT 'pending',
    is_sent             BOOLEAN   NOT NULL DEFAULT FALSE,
    provider_message_id TEXT,
    api_response        TEXT,
    sent_at             TIMESTAMP,
    delivered_at        TIMESTAMP,
    read_at             TIMESTAMP,
    status_updated_at   TIMESTAMP,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    deleted_at          TIMESTAMP
);

-- A device's own listing (the common case for device credentials), newest first.
CREATE INDEX messages_device_id_id ON messages (device_id, id);
CREATE INDEX messages_batch_id ON messages (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX messages_status ON messages (status);
CREATE INDEX messages_created_at ON messages (created_at);

-- Replays of POST /messages and /messages-batch within the TTL return the first response.
CREATE TABLE idempotency_keys (
    -- Who used the key: 'admin' or 'device:<id>'; keys of different callers never collide.
    scope           TEXT      NOT NULL,
    idempotency_key TEXT      NOT NULL,
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash    TEXT      NOT NULL,
    response_status INTEGER   NOT NULL,
    response_body   TEXT      NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
