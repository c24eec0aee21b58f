-- Initial schema (SQLite). Times are UTC text in the fixed-width layout
-- 2006-01-02T15:04:05.000000Z, so comparing the text compares the times.
-- JSON columns hold encoded Go values; "null" stands for a nil slice or map.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE members (
    team       TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (team, name)
);

-- team is NULL for the admin token; member is NULL for a token that belongs
-- to no member, which leaves the member foreign key unchecked.
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    team         TEXT REFERENCES teams (name) ON DELETE CASCADE,
    member       TEXT,
    role         TEXT NOT NULL,
    admin        INTEGER NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    FOREIGN KEY (team, member) REFERENCES members (team, name) ON DELETE CASCADE
);
CREATE INDEX tokens_team_member ON tokens (team, member);

CREATE TABLE apps (
    id         TEXT PRIMARY KEY,
    team       TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    labels     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (team, name)
);

-- The app foreign key has no ON DELETE action: an app cannot be deleted
-- while it has components. spec holds the rest of the component as JSON.
-- version_seq is the highest version number handed out so far, so a deleted
-- version's number is never reused.
CREATE TABLE components (
    id             TEXT PRIMARY KEY,
    team           TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    app            TEXT NOT NULL,
    alias          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    desired        TEXT NOT NULL,
    deploy_version INTEGER NOT NULL,
    status         TEXT NOT NULL,
    status_message TEXT NOT NULL,
    spec           TEXT NOT NULL,
    revision       INTEGER NOT NULL,
    version_seq    INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (team, alias),
    FOREIGN KEY (team, app) REFERENCES apps (team, name)
);
CREATE INDEX components_team_app ON components (team, app);

CREATE TABLE dependencies (
    team       TEXT NOT NULL,
    from_alias TEXT NOT NULL,
    to_alias   TEXT NOT NULL,
    PRIMARY KEY (team, from_alias, to_alias),
    FOREIGN KEY (team, from_alias) REFERENCES components (team, alias) ON DELETE CASCADE ON UPDATE CASCADE,
    FOREIGN KEY (team, to_alias) REFERENCES components (team, alias) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX dependencies_to ON dependencies (team, to_alias);

CREATE TABLE versions (
    component_id TEXT NOT NULL REFERENCES components (id) ON DELETE CASCADE,
    number       INTEGER NOT NULL,
    image        TEXT NOT NULL,
    digest       TEXT NOT NULL,
    vcs_commit   TEXT NOT NULL,
    author       TEXT NOT NULL,
    message      TEXT NOT NULL,
    status       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (component_id, number)
);

-- Rules follow their component: deleted with it, renamed with it.
CREATE TABLE http_rules (
    id          TEXT PRIMARY KEY,
    team        TEXT NOT NULL,
    domain      TEXT NOT NULL,
    path        TEXT NOT NULL,
    component   TEXT NOT NULL,
    port        INTEGER NOT NULL,
    certificate TEXT NOT NULL,
    weight      INTEGER NOT NULL,
    headers     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    FOREIGN KEY (team, component) REFERENCES components (team, alias) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX http_rules_team_component ON http_rules (team, component);
CREATE INDEX http_rules_domain_path ON http_rules (domain, path);

CREATE TABLE tcp_rules (
    id           TEXT PRIMARY KEY,
    team         TEXT NOT NULL,
    gateway_port INTEGER NOT NULL UNIQUE,
    component    TEXT NOT NULL,
    port         INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    FOREIGN KEY (team, component) REFERENCES components (team, alias) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX tcp_rules_team_component ON tcp_rules (team, component);

CREATE TABLE certificates (
    id         TEXT PRIMARY KEY,
    team       TEXT NOT NULL REFERENCES teams (name) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    cert_pem   TEXT NOT NULL,
    key_pem    TEXT NOT NULL,
    domains    TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (team, name)
);

-- Events have no team foreign key: the history outlives the team. log_seq
-- is the last log seq handed out; AppendLog bumps it, which also serializes
-- concurrent appenders on the event row.
CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    team        TEXT NOT NULL,
    type        TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    log_seq     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX events_team_created ON events (team, created_at);
CREATE INDEX events_target ON events (target);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE event_logs (
    event_id TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    time     TEXT NOT NULL,
    level    TEXT NOT NULL,
    stage    TEXT NOT NULL,
    text     TEXT NOT NULL,
    PRIMARY KEY (event_id, seq)
) WITHOUT ROWID;

-- seq is the enqueue order ClaimTask goes by; id is the public name.
CREATE TABLE tasks (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    event_id    TEXT NOT NULL REFERENCES events (id),
    type        TEXT NOT NULL,
    team        TEXT NOT NULL,
    target      TEXT NOT NULL,
    payload     BLOB,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    owner       TEXT NOT NULL,
    lease_until TEXT,
    error       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX tasks_status_seq ON tasks (status, seq);
CREATE INDEX tasks_target_status ON tasks (target, status);
CREATE INDEX tasks_event ON tasks (event_id);
