-- Several WAHA servers (issue 14). A WAHA session lives on the server that paired it, and one
-- server holds a bounded number of sessions: every device belongs to one server (NULL: the
-- default one, from WAPIM_WAHA__URL, registered at start-up) and all its WAHA calls go there.
--   capacity  live devices it may hold (new devices go to the active server with most room)
--   state     active | draining (keeps its devices, takes no new ones) | down (takes none)
CREATE TABLE waha_servers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT      NOT NULL,
    base_url   TEXT      NOT NULL,
    api_key    TEXT,
    capacity   BIGINT    NOT NULL,
    state      TEXT      NOT NULL DEFAULT 'active',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX waha_servers_base_url ON waha_servers (base_url);
CREATE UNIQUE INDEX waha_servers_name ON waha_servers (name);
ALTER TABLE devices ADD COLUMN waha_server_id BIGINT REFERENCES waha_servers (id);
CREATE INDEX devices_waha_server ON devices (waha_server_id);
