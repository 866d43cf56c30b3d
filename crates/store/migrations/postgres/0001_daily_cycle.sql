-- softstake daily cycle (PostgreSQL). Amounts are TEXT decimal strings of base units (u128
-- does not fit a 64-bit integer); timestamps are INTEGER Unix nanoseconds, UTC; days are
-- TEXT 'YYYY-MM-DD'.

CREATE TABLE accounts (
    account_id     TEXT PRIMARY KEY,
    jurisdiction   TEXT NOT NULL,
    activated_at   BIGINT NOT NULL,
    deactivated_at BIGINT
);

-- Raw balance feed: the new absolute balance of (account, token) at ts.
CREATE TABLE balance_events (
    token      TEXT NOT NULL,
    account_id TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    balance    TEXT NOT NULL,
    event_id   TEXT,
    PRIMARY KEY (token, account_id, ts)
);
CREATE INDEX balance_events_by_time ON balance_events (token, ts);
CREATE UNIQUE INDEX balance_events_by_event_id ON balance_events (event_id);

-- Closing balance of each (token, account) after the last closed day.
CREATE TABLE balances (
    token      TEXT NOT NULL,
    account_id TEXT NOT NULL,
    balance    TEXT NOT NULL,
    as_of_day  TEXT NOT NULL,
    PRIMARY KEY (token, account_id)
);

CREATE TABLE closed_days (
    token          TEXT NOT NULL,
    day            TEXT NOT NULL,
    closed_at      BIGINT NOT NULL,
    accounts       BIGINT NOT NULL,
    eligible_accounts BIGINT NOT NULL,
    total_eligible TEXT NOT NULL,
    -- Σ closing balances: the custodial total at the end of the day.
    total_balance  TEXT NOT NULL,
    PRIMARY KEY (token, day)
);

CREATE TABLE daily_balances (
    token      TEXT NOT NULL,
    day        TEXT NOT NULL,
    account_id TEXT NOT NULL,
    average    TEXT NOT NULL,
    eligible   TEXT NOT NULL,
    PRIMARY KEY (token, day, account_id)
);

-- Realized rewards attributed to a day; one row per (token, day, source).
CREATE TABLE rewards (
    token       TEXT NOT NULL,
    day         TEXT NOT NULL,
    source      TEXT NOT NULL,
    amount      TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (token, day, source)
);

CREATE TABLE distributions (
    token            TEXT NOT NULL,
    day              TEXT NOT NULL,
    realized_reward  TEXT NOT NULL,
    fee              TEXT NOT NULL,
    carry_in         TEXT NOT NULL,
    distributable    TEXT NOT NULL,
    total_eligible   TEXT NOT NULL,
    carry_out        TEXT NOT NULL,
    apr              TEXT NOT NULL,
    eligible_accounts BIGINT NOT NULL,
    paid_at          BIGINT NOT NULL,
    PRIMARY KEY (token, day)
);

CREATE TABLE payouts (
    token      TEXT NOT NULL,
    day        TEXT NOT NULL,
    account_id TEXT NOT NULL,
    average    TEXT NOT NULL,
    eligible   TEXT NOT NULL,
    reward     TEXT NOT NULL,
    paid_at    BIGINT NOT NULL,
    PRIMARY KEY (token, day, account_id)
);
CREATE INDEX payouts_by_account ON payouts (account_id, day);

CREATE TABLE ledger_entries (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind       TEXT NOT NULL,
    reference  TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE ledger_postings (
    entry_id BIGINT NOT NULL REFERENCES ledger_entries (id),
    account  TEXT NOT NULL,
    token    TEXT NOT NULL,
    side     TEXT NOT NULL CHECK (side IN ('D', 'C')),
    amount   TEXT NOT NULL
);
CREATE INDEX ledger_postings_by_account ON ledger_postings (token, account);
