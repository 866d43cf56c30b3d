-- softstake at exchange scale (PostgreSQL).
--   * Amounts become NUMERIC(39,0) with CHECK (>= 0): exact for every u128, sorted and
--     summed in SQL, sent in binary.
--   * Ids that are sorted and joined on (account_id, token) use the "C" collation: byte
--     order, the order payouts and leftover units follow, and memcmp-fast.
--   * balance_events is partitioned by UTC day, then by token, each leaf keyed by the
--     close's access path (account_id, ts). Closed days are exported and dropped by
--     `softstake archive`. Feed event ids move to balance_event_ids (one row per id,
--     globally unique).

CREATE FUNCTION softstake_numeric_columns() RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
BEGIN
    FOR c IN SELECT * FROM (VALUES
        ('balances', 'balance'),
        ('closed_days', 'total_eligible'), ('closed_days', 'total_balance'),
        ('daily_balances', 'average'), ('daily_balances', 'eligible'),
        ('rewards', 'amount'),
        ('distributions', 'realized_reward'), ('distributions', 'fee'), ('distributions', 'carry_in'),
        ('distributions', 'distributable'), ('distributions', 'total_eligible'), ('distributions', 'carry_out'),
        ('payouts', 'average'), ('payouts', 'eligible'), ('payouts', 'reward'),
        ('ledger_postings', 'amount'),
        ('plans', 'moved'), ('operations', 'amount'), ('realized_rewards', 'amount'),
        ('alerts', 'shortfall'), ('position_snapshots', 'amount')) AS t(tbl, col)
    LOOP
        EXECUTE format('ALTER TABLE %I ALTER COLUMN %I TYPE NUMERIC(39,0) USING %I::NUMERIC(39,0)', c.tbl, c.col, c.col);
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I >= 0)', c.tbl, c.tbl || '_' || c.col || '_nonnegative', c.col);
    END LOOP;
END $$;
SELECT softstake_numeric_columns();
DROP FUNCTION softstake_numeric_columns();

-- The APR is display-only: NULL when beyond Decimal's range, never blocking a payout.
ALTER TABLE distributions ALTER COLUMN apr DROP NOT NULL;

ALTER TABLE accounts ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE balances ALTER COLUMN token TYPE TEXT COLLATE "C", ALTER COLUMN account_id TYPE TEXT COLLATE "C";
ALTER TABLE payouts ALTER COLUMN token TYPE TEXT COLLATE "C", ALTER COLUMN account_id TYPE TEXT COLLATE "C";
-- One unique index serves both the once-per-account-per-day guard and a user's history
-- (every payout is looked up by account); keeping a second B-tree doubled the cost of
-- writing a day's payouts.
ALTER TABLE payouts DROP CONSTRAINT payouts_pkey;
DROP INDEX payouts_by_account;
CREATE UNIQUE INDEX payouts_by_account ON payouts (account_id, day, token);

-- balance_events is partitioned by UTC day (RANGE on ts, nanoseconds), each day by token
-- (LIST); a leaf `balance_events_YYYYMMDD_<token>` has the close's access path as its
-- primary key, (account_id, ts) INCLUDE (token, balance): one token-day is one small
-- index, read by account then time (the close merges it with the previous day's closing
-- balances, one account at a time) by an index-only scan once its pages are all-visible
-- (a bulk load copies with FREEZE; the close vacuums the day's leaf first).
-- Leaves are created before rows go in (softstake_event_partition), or, by a bulk load,
-- filled while standalone and attached once indexed (see crates/store/src/ingest.rs).

-- Creates the day partition of the UTC day starting at day_start_ns if missing. CREATE
-- TABLE + ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which does not wait for
-- running reads or inserts. Returns its name.
CREATE FUNCTION softstake_event_day(day_start_ns BIGINT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    day_ns CONSTANT BIGINT := 86400000000000;
    name TEXT;
BEGIN
    IF day_start_ns % day_ns <> 0 THEN
        RAISE EXCEPTION 'softstake_event_day: % is not the start of a UTC day', day_start_ns;
    END IF;
    name := 'balance_events_' || to_char(to_timestamp(day_start_ns / 1000000000) AT TIME ZONE 'UTC', 'YYYYMMDD');
    -- One day creator at a time (transaction-scoped lock, namespace "SSK2").
    PERFORM pg_advisory_xact_lock(1397967666, 0);
    IF NOT softstake_table_exists(name) THEN
        EXECUTE format('CREATE TABLE %I (LIKE balance_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (token)', name);
        EXECUTE format('ALTER TABLE balance_events ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)',
                       name, day_start_ns, day_start_ns + day_ns);
    END IF;
    RETURN name;
END $$;

-- The name of the leaf of (day, token).
CREATE FUNCTION softstake_event_leaf_name(day_start_ns BIGINT, token TEXT) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF token !~ '^[A-Z0-9]{1,12}$' THEN
        RAISE EXCEPTION 'softstake_event_leaf_name: bad token symbol %', token;
    END IF;
    RETURN 'balance_events_' || to_char(to_timestamp(day_start_ns / 1000000000) AT TIME ZONE 'UTC', 'YYYYMMDD') || '_' || lower(token);
END $$;

-- The leaf's name, after taking the lock that serializes its creators until the
-- transaction ends (namespace "SSK3", keyed by the name), so a bulk load and a plain
-- insert never race to create it.
CREATE FUNCTION softstake_event_leaf(day_start_ns BIGINT, token TEXT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := softstake_event_leaf_name(day_start_ns, token);
BEGIN
    PERFORM pg_advisory_xact_lock(1397967667, hashtext(name));
    RETURN name;
END $$;

-- A standalone leaf table (not attached): the partition bounds as a CHECK, so ATTACH
-- needs no scan. With_key adds the primary key (rows inserted one by one keep it).
CREATE FUNCTION softstake_event_leaf_table(day_start_ns BIGINT, token TEXT, with_key BOOLEAN) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    day_ns CONSTANT BIGINT := 86400000000000;
    name TEXT := softstake_event_leaf(day_start_ns, token);
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE balance_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                   'CONSTRAINT %I CHECK (token = %L AND ts >= %s AND ts < %s))',
                   name, name || '_bounds', token, day_start_ns, day_start_ns + day_ns);
    IF with_key THEN
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (account_id, ts) INCLUDE (token, balance)', name, name || '_pkey');
    END IF;
    RETURN name;
END $$;

-- Attaches a leaf (with its primary key) under its day, creating the day if needed.
CREATE FUNCTION softstake_event_leaf_attach(day_start_ns BIGINT, token TEXT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := softstake_event_leaf(day_start_ns, token);
    day_name TEXT := softstake_event_day(day_start_ns);
BEGIN
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)', day_name, name, token);
    RETURN name;
END $$;

-- Whether a table of that name exists in the current schema, read from pg_class with the
-- statement's snapshot (to_regclass may answer from a catalog cache that predates a lock
-- just taken).
CREATE FUNCTION softstake_table_exists(name TEXT) RETURNS BOOLEAN LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.relname = name AND n.nspname = current_schema())
$$;

-- Creates (idempotently) and attaches the leaf of (day, token), ready for inserts.
CREATE FUNCTION softstake_event_partition(day_start_ns BIGINT, token TEXT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := softstake_event_leaf_name(day_start_ns, token);
BEGIN
    IF softstake_table_exists(name) THEN
        RETURN name;
    END IF;
    PERFORM softstake_event_leaf(day_start_ns, token);
    IF NOT softstake_table_exists(name) THEN
        PERFORM softstake_event_leaf_table(day_start_ns, token, true);
        PERFORM softstake_event_leaf_attach(day_start_ns, token);
    END IF;
    RETURN name;
END $$;

ALTER TABLE balance_events RENAME TO balance_events_unpartitioned;
ALTER INDEX balance_events_pkey RENAME TO balance_events_unpartitioned_pkey;
DROP INDEX balance_events_by_time;
DROP INDEX balance_events_by_event_id;

CREATE TABLE balance_events (
    token      TEXT COLLATE "C" NOT NULL,
    ts         BIGINT NOT NULL,
    account_id TEXT COLLATE "C" NOT NULL,
    balance    NUMERIC(39,0) NOT NULL CHECK (balance >= 0)
) PARTITION BY RANGE (ts);

CREATE TABLE balance_event_ids (
    event_id   TEXT PRIMARY KEY,
    token      TEXT COLLATE "C" NOT NULL,
    ts         BIGINT NOT NULL,
    account_id TEXT COLLATE "C" NOT NULL
);
CREATE INDEX balance_event_ids_by_ts ON balance_event_ids (ts);

SELECT softstake_event_partition(d, token)
FROM (SELECT DISTINCT token, ts - ((ts % 86400000000000) + 86400000000000) % 86400000000000 AS d
      FROM balance_events_unpartitioned) leaves;

INSERT INTO balance_events (token, ts, account_id, balance)
SELECT token, ts, account_id, balance::NUMERIC(39,0) FROM balance_events_unpartitioned;
INSERT INTO balance_event_ids (event_id, token, ts, account_id)
SELECT event_id, token, ts, account_id FROM balance_events_unpartitioned WHERE event_id IS NOT NULL;
DROP TABLE balance_events_unpartitioned;

-- Each account's closing balance is a column of its daily row: the next day opens from
-- the previous day's rows, so no table of closing balances is rewritten per account each
-- day. daily_balances is partitioned by day (RANGE on the 'YYYY-MM-DD' text), each day by
-- token (LIST): a close writes one new leaf `daily_balances_YYYYMMDD_<token>`, filled
-- unindexed (COPY FREEZE), then keyed by account_id and attached (crates/store/src/close.rs).
-- Rows of days before this migration keep NULL closings except the last closed day's.

-- The daily leaf of (day, token): its name; with lock, after the lock that serializes the
-- creators of its day partition ("SSK4").
CREATE FUNCTION softstake_daily_leaf_name(day TEXT, token TEXT) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF token !~ '^[A-Z0-9]{1,12}$' OR day !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        RAISE EXCEPTION 'softstake_daily_leaf_name: bad token % or day %', token, day;
    END IF;
    RETURN 'daily_balances_' || replace(day, '-', '') || '_' || lower(token);
END $$;

-- A standalone daily leaf (not attached), with the partition bounds as a CHECK.
CREATE FUNCTION softstake_daily_leaf_table(day TEXT, token TEXT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := softstake_daily_leaf_name(day, token);
BEGIN
    EXECUTE format('CREATE TABLE %I (LIKE daily_balances INCLUDING DEFAULTS INCLUDING CONSTRAINTS, '
                   'CONSTRAINT %I CHECK (token = %L AND day = %L))', name, name || '_bounds', token, day);
    RETURN name;
END $$;

-- Keys a filled daily leaf by account and attaches it under its day (created if needed).
CREATE FUNCTION softstake_daily_leaf_attach(day TEXT, token TEXT) RETURNS TEXT LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := softstake_daily_leaf_name(day, token);
    day_name TEXT := 'daily_balances_' || replace(day, '-', '');
BEGIN
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (account_id)', name, name || '_pkey');
    EXECUTE format('ANALYZE %I', name);
    PERFORM pg_advisory_xact_lock(1397967668, 0);
    IF NOT softstake_table_exists(day_name) THEN
        EXECUTE format('CREATE TABLE %I (LIKE daily_balances INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY LIST (token)', day_name);
        EXECUTE format('ALTER TABLE daily_balances ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       day_name, day, (day::date + 1)::text);
    END IF;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)', day_name, name, token);
    RETURN name;
END $$;

ALTER TABLE daily_balances RENAME TO daily_balances_unpartitioned;
ALTER INDEX daily_balances_pkey RENAME TO daily_balances_unpartitioned_pkey;
CREATE TABLE daily_balances (
    token      TEXT COLLATE "C" NOT NULL,
    day        TEXT COLLATE "C" NOT NULL,
    account_id TEXT COLLATE "C" NOT NULL,
    average    NUMERIC(39,0) NOT NULL CHECK (average >= 0),
    eligible   NUMERIC(39,0) NOT NULL CHECK (eligible >= 0),
    closing    NUMERIC(39,0) CHECK (closing >= 0)
) PARTITION BY RANGE (day);

CREATE FUNCTION softstake_migrate_daily() RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    k RECORD;
BEGIN
    FOR k IN SELECT DISTINCT day, token FROM daily_balances_unpartitioned LOOP
        PERFORM softstake_daily_leaf_table(k.day, k.token);
        EXECUTE format('INSERT INTO %I (token, day, account_id, average, eligible, closing) '
                       'SELECT d.token, d.day, d.account_id, d.average, d.eligible, '
                       '       CASE WHEN d.day = (SELECT MAX(c.day) FROM closed_days c WHERE c.token = d.token) '
                       '            THEN COALESCE(b.balance, 0) END '
                       'FROM daily_balances_unpartitioned d LEFT JOIN balances b ON b.token = d.token AND b.account_id = d.account_id '
                       'WHERE d.day = %L AND d.token = %L', softstake_daily_leaf_name(k.day, k.token), k.day, k.token);
        PERFORM softstake_daily_leaf_attach(k.day, k.token);
    END LOOP;
END $$;
SELECT softstake_migrate_daily();
DROP FUNCTION softstake_migrate_daily();
DROP TABLE daily_balances_unpartitioned;
DROP TABLE balances;

-- Days whose events were exported and dropped (`softstake archive`).
CREATE TABLE archived_days (
    day         TEXT PRIMARY KEY,
    events      BIGINT NOT NULL,
    archived_at BIGINT NOT NULL
);
