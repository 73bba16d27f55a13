-- Webhook ingest, second part (issue 15): inbound messages, conversations for the automations,
-- the integrator's signed webhooks and where each outbound message came from.
--
-- devices.webhook_secret        the Standard Webhooks secret (whsec_<base64>) events are signed
--                               with; shown once at creation and on rotation (kept readable: it
--                               signs, so it cannot be a hash)
-- devices.opt_out_keywords      JSON array of words that opt a contact out (NULL: the defaults)
-- devices.opt_out_confirmation  the text answering an opt-out (NULL: no answer)
-- messages.origin               api | opening_message | closing_message | auto_reply |
--                               auto_forward | opt_out_confirmation
ALTER TABLE devices ADD COLUMN webhook_secret TEXT;
ALTER TABLE devices ADD COLUMN opt_out_keywords TEXT;
ALTER TABLE devices ADD COLUMN opt_out_confirmation TEXT;
ALTER TABLE messages ADD COLUMN origin TEXT NOT NULL DEFAULT 'api';

-- What contacts sent a device (WAHA's `message` events), once per WhatsApp id.
--   sender       the contact's phone digits; NULL while only a lid is known
--   sender_lid   WhatsApp's hidden-number id (…@lid) when it used one
--   chat_id      WAHA's `from` (…@c.us, …@lid, …@g.us)
--   sent_at      when WhatsApp says it was sent
CREATE TABLE inbound_messages (
    id                  BIGSERIAL PRIMARY KEY,
    device_id           BIGINT    NOT NULL REFERENCES devices (id),
    session_id          TEXT      NOT NULL,
    provider_message_id TEXT      NOT NULL,
    chat_id             TEXT      NOT NULL,
    sender              TEXT,
    sender_lid          TEXT,
    is_group            BOOLEAN   NOT NULL DEFAULT FALSE,
    message_type        TEXT      NOT NULL,
    message             TEXT,
    has_media           BOOLEAN   NOT NULL DEFAULT FALSE,
    media_url           TEXT,
    media_mimetype      TEXT,
    media_filename      TEXT,
    sent_at             TIMESTAMP NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL,
    deleted_at          TIMESTAMP
);
CREATE UNIQUE INDEX inbound_messages_once ON inbound_messages (device_id, provider_message_id);
CREATE INDEX inbound_messages_device ON inbound_messages (device_id, id);

-- One row per device and contact: when their conversation opened, its last inbound message,
-- the last auto-reply, and when a closing message is owed (NULL: none).
CREATE TABLE conversations (
    id                 BIGSERIAL PRIMARY KEY,
    device_id          BIGINT    NOT NULL REFERENCES devices (id),
    contact            TEXT      NOT NULL,
    opened_at          TIMESTAMP NOT NULL,
    last_inbound_at    TIMESTAMP NOT NULL,
    last_auto_reply_at TIMESTAMP,
    closing_due_at     TIMESTAMP
);
CREATE UNIQUE INDEX conversations_contact ON conversations (device_id, contact);
CREATE INDEX conversations_closing_due ON conversations (closing_due_at)
    WHERE closing_due_at IS NOT NULL;

-- Events for the integrator's webhook, delivered by the dispatcher through the same durable
-- hand-off as messages (due_at / published_at / relay_lease_until for the relay, lease_until
-- for the dispatcher's claim), retried with backoff until give_up_at.
--   webhook_id   Standard Webhooks' `webhook-id` (msg_…), the same on every attempt
--   status       pending | delivered | failed
CREATE TABLE webhook_deliveries (
    id                BIGSERIAL PRIMARY KEY,
    device_id         BIGINT    NOT NULL REFERENCES devices (id),
    webhook_id        TEXT      NOT NULL,
    event             TEXT      NOT NULL,
    url               TEXT      NOT NULL,
    payload           TEXT      NOT NULL,
    status            TEXT      NOT NULL DEFAULT 'pending',
    attempts          INTEGER   NOT NULL DEFAULT 0,
    due_at            TIMESTAMP NOT NULL,
    published_at      TIMESTAMP,
    relay_lease_until TIMESTAMP,
    lease_until       TIMESTAMP,
    give_up_at        TIMESTAMP NOT NULL,
    last_status_code  INTEGER,
    last_error        TEXT,
    delivered_at      TIMESTAMP,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX webhook_deliveries_webhook_id ON webhook_deliveries (webhook_id);
CREATE INDEX webhook_deliveries_device ON webhook_deliveries (device_id, id);
CREATE INDEX webhook_deliveries_owed ON webhook_deliveries (due_at)
    WHERE status = 'pending' AND published_at IS NULL;

-- Every try of a delivery: when, how long, and what the receiver answered.
CREATE TABLE webhook_attempts (
    id            BIGSERIAL PRIMARY KEY,
    delivery_id   BIGINT    NOT NULL REFERENCES webhook_deliveries (id),
    attempted_at  TIMESTAMP NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    response_body TEXT,
    duration_ms   BIGINT    NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);
