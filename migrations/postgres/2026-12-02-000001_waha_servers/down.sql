DROP INDEX devices_waha_server;
ALTER TABLE devices DROP COLUMN waha_server_id;
DROP TABLE waha_servers;
