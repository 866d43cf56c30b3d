-- softstake treasury (SQLite): plans, the operations journal, realized rewards,
-- alerts and the last positions read from each chain.

CREATE TABLE plans (
    plan_id        TEXT PRIMARY KEY,
    token          TEXT NOT NULL,
    epoch          BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('proposed', 'approved', 'executing', 'done', 'failed', 'rejected')),
    moved          TEXT NOT NULL,
    needs_approval BIGINT NOT NULL,
    approved_by    TEXT,
    approved_at    BIGINT,
    body           TEXT NOT NULL
);
CREATE INDEX plans_by_token ON plans (token, created_at);

-- Each side effect on a chain: intent → submitted (tx id) → confirmed | failed → reconciled.
CREATE TABLE operations (
    idempotency_key TEXT PRIMARY KEY,
    plan_id     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    token       TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('delegate', 'undelegate', 'withdraw', 'claim')),
    validator   TEXT NOT NULL,
    amount      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('intent', 'submitted', 'confirmed', 'failed', 'reconciled')),
    tx_id       TEXT,
    payload     TEXT,
    valid_until BIGINT,
    attempts    BIGINT NOT NULL,
    error       TEXT,
    epoch       BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX operations_by_state ON operations (token, state);
CREATE INDEX operations_by_plan ON operations (plan_id, seq);

CREATE TABLE operation_log (
    idempotency_key TEXT NOT NULL,
    at         BIGINT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    tx_id      TEXT,
    detail     TEXT
);
CREATE INDEX operation_log_by_key ON operation_log (idempotency_key);

CREATE TABLE reward_cursors (
    token      TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE realized_rewards (
    token     TEXT NOT NULL,
    validator TEXT NOT NULL,
    epoch     BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    amount    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    day       TEXT NOT NULL,
    PRIMARY KEY (token, validator, epoch, kind)
);

CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    token           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    message         TEXT NOT NULL,
    shortfall       TEXT NOT NULL,
    exit_eta        BIGINT,
    freezes_moves   BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT
);
CREATE INDEX alerts_open ON alerts (token, acknowledged_at);

CREATE TABLE position_snapshots (
    token     TEXT NOT NULL,
    validator TEXT NOT NULL,
    state     TEXT NOT NULL,
    amount    TEXT NOT NULL,
    eta       BIGINT,
    account   TEXT,
    at        BIGINT NOT NULL
);
CREATE INDEX position_snapshots_by_token ON position_snapshots (token);
