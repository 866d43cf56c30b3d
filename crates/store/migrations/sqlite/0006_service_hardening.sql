-- API keys of the Binance-compatible REST API can expire and be revoked (both nanoseconds
-- since the Unix epoch, like every timestamp here). A key past either is refused as
-- Binance refuses an unknown one (-2015); rows are kept for the audit trail.
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN revoked_at BIGINT;

-- The pool's status as the leader's last treasury step computed it (the plan, JSON), so
-- API reads come from the store and never fan out to the chains.
CREATE TABLE pool_status (
    token       TEXT PRIMARY KEY,
    body        TEXT NOT NULL,
    computed_at BIGINT NOT NULL
);
