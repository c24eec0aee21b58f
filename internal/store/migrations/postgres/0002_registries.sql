-- Registries a team pulls from: credentials and trust per host.
CREATE TABLE registries (
    team        TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    host        TEXT NOT NULL,
    username    TEXT NOT NULL,
    password    TEXT NOT NULL,
    skip_verify BOOLEAN NOT NULL,
    plain_http  BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (team, host)
);
