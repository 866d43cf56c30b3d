-- softstake service (PostgreSQL): API keys of the Binance-compatible REST API.
-- The secret is the HMAC-SHA256 key the client signs with, so it is stored as given
-- (as Binance does); protect the database accordingly.
CREATE TABLE api_keys (
    api_key    TEXT PRIMARY KEY,
    secret     TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX api_keys_by_account ON api_keys (account_id);
