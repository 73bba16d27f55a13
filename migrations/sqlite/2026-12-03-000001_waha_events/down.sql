DROP TABLE waha_events;
