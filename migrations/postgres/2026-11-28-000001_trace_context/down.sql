ALTER TABLE messages DROP COLUMN traceparent;
