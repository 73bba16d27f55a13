-- Wapim's first schema in SQLite's dialect: the same tables, columns and indexes as
-- migrations/postgres/2026-11-25-000001_init. INTEGER PRIMARY KEY is SQLite's 64-bit rowid;
-- timestamps are stored as diesel writes them (text, UTC, sortable).

CREATE TABLE devices (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT      NOT NULL,
    session_id          TEXT      NOT NULL,
    phone_number        TEXT      NOT NULL,
    status              TEXT      NOT NULL DEFAULT 'scan_qr_code',
    secret_token_hash   TEXT      NOT NULL,
    secret_token_masked TEXT      NOT NULL,
    webhook_status      BOOLEAN   NOT NULL DEFAULT 0,
    webhook_url         TEXT,
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

CREATE UNIQUE INDEX devices_live_session_id ON devices (session_id) WHERE deleted_at IS NULL;

CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id           BIGINT    NOT NULL REFERENCES devices (id),
    session_id          TEXT      NOT NULL,
    batch_id            TEXT,
    is_queue            BOOLEAN   NOT NULL DEFAULT 1,
    recipient           TEXT      NOT NULL,
    message_type        TEXT      NOT NULL,
    message             TEXT,
    file_mimetype       TEXT,
    file_filename       TEXT,
    file_url            TEXT,
    calendar_type       TEXT      NOT NULL DEFAULT 'masehi',
    schedule_at         TIMESTAMP,
    status              TEXT      NOT NULL DEFAULT 'pending',
    is_sent             BOOLEAN   NOT NULL DEFAULT 0,
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

CREATE INDEX messages_device_id_id ON messages (device_id, id);
CREATE INDEX messages_batch_id ON messages (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX messages_status ON messages (status);
CREATE INDEX messages_created_at ON messages (created_at);

CREATE TABLE idempotency_keys (
    scope           TEXT      NOT NULL,
    idempotency_key TEXT      NOT NULL,
    request_hash    TEXT      NOT NULL,
    response_status INTEGER   NOT NULL,
    response_body   TEXT      NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, idempotency_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
