DROP TABLE message_attempts;
