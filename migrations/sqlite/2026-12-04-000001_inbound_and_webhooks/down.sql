DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE conversations;
DROP TABLE inbound_messages;
ALTER TABLE messages DROP COLUMN origin;
ALTER TABLE devices DROP COLUMN opt_out_confirmation;
ALTER TABLE devices DROP COLUMN opt_out_keywords;
ALTER TABLE devices DROP COLUMN webhook_secret;
