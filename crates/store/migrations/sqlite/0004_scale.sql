-- softstake at exchange scale (SQLite, the embedded default).
--   * balance_events is clustered on the close's access path (token, day, account_id, ts):
--     a WITHOUT ROWID table is its primary-key B-tree, so a token's day is one contiguous
--     range, read by account then time (day = the UTC day number, ts div 86 400 s).
--   * Feed event ids move to balance_event_ids (one row per id).
--   * The APR is display-only and may be NULL (beyond Decimal's range).
-- Amounts stay decimal TEXT: SQLite has no 128-bit integer; they are summed in Rust.

CREATE TABLE balance_events_new (
    token      TEXT NOT NULL,
    day        BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    balance    TEXT NOT NULL,
    PRIMARY KEY (token, day, account_id, ts)
) WITHOUT ROWID;
INSERT INTO balance_events_new (token, day, account_id, ts, balance)
SELECT token, (ts - ((ts % 86400000000000) + 86400000000000) % 86400000000000) / 86400000000000, account_id, ts, balance
FROM balance_events;

CREATE TABLE balance_event_ids (
    event_id   TEXT PRIMARY KEY,
    token      TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    account_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX balance_event_ids_by_ts ON balance_event_ids (ts);
INSERT INTO balance_event_ids (event_id, token, ts, account_id)
SELECT event_id, token, ts, account_id FROM balance_events WHERE event_id IS NOT NULL;

DROP TABLE balance_events;
ALTER TABLE balance_events_new RENAME TO balance_events;

CREATE TABLE distributions_new (
    token            TEXT NOT NULL,
    day              TEXT NOT NULL,
    realized_reward  TEXT NOT NULL,
    fee              TEXT NOT NULL,
    carry_in         TEXT NOT NULL,
    distributable    TEXT NOT NULL,
    total_eligible   TEXT NOT NULL,
    carry_out        TEXT NOT NULL,
    apr              TEXT,
    eligible_accounts BIGINT NOT NULL,
    paid_at          BIGINT NOT NULL,
    PRIMARY KEY (token, day)
);
INSERT INTO distributions_new SELECT * FROM distributions;
DROP TABLE distributions;
ALTER TABLE distributions_new RENAME TO distributions;

-- Each account's closing balance is a column of its daily row (clustered by token, day,
-- account): the next day opens from the previous day's rows, so no table of closing
-- balances is rewritten per account each day. Rows of days before this migration keep
-- NULL except the last closed day's.
CREATE TABLE daily_balances_new (
    token      TEXT NOT NULL,
    day        TEXT NOT NULL,
    account_id TEXT NOT NULL,
    average    TEXT NOT NULL,
    eligible   TEXT NOT NULL,
    closing    TEXT,
    PRIMARY KEY (token, day, account_id)
) WITHOUT ROWID;
INSERT INTO daily_balances_new (token, day, account_id, average, eligible, closing)
SELECT d.token, d.day, d.account_id, d.average, d.eligible,
       CASE WHEN d.day = (SELECT MAX(c.day) FROM closed_days c WHERE c.token = d.token)
            THEN COALESCE(b.balance, '0') END
FROM daily_balances d LEFT JOIN balances b ON b.token = d.token AND b.account_id = d.account_id;
DROP TABLE daily_balances;
ALTER TABLE daily_balances_new RENAME TO daily_balances;
DROP TABLE balances;

CREATE TABLE payouts_new (
    token      TEXT NOT NULL,
    day        TEXT NOT NULL,
    account_id TEXT NOT NULL,
    average    TEXT NOT NULL,
    eligible   TEXT NOT NULL,
    reward     TEXT NOT NULL,
    paid_at    BIGINT NOT NULL,
    PRIMARY KEY (token, day, account_id)
) WITHOUT ROWID;
INSERT INTO payouts_new SELECT token, day, account_id, average, eligible, reward, paid_at FROM payouts;
DROP TABLE payouts;
ALTER TABLE payouts_new RENAME TO payouts;
CREATE INDEX payouts_by_account ON payouts (account_id, day);

-- Days whose events were exported and dropped (`softstake archive`).
CREATE TABLE archived_days (
    day         TEXT PRIMARY KEY,
    events      BIGINT NOT NULL,
    archived_at BIGINT NOT NULL
);
