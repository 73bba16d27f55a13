-- Single binary (issue 16): settings an instance decides for itself and keeps, e.g. the hash of
-- the operator token `wapim` generated at its first start (the token itself is shown once and
-- never stored).
CREATE TABLE instance_settings (
    name       TEXT      PRIMARY KEY,
    value      TEXT      NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
