-- Transactions that moved the treasury account's own funds, on a chain whose reward is
-- balance growth with no event of its own (ApeChain native yield): the reward of a
-- window of blocks is the balance growth less these flows. `source` is 'journal' (an
-- operation softstake signed) or 'declared' (a transfer a treasury user named: custody
-- deposits and withdrawals the exchange makes). Amounts are base units (decimal TEXT here, NUMERIC(39,0) on PostgreSQL);
-- `nonce` is the treasury's account nonce when the treasury sent it.
CREATE TABLE treasury_flows (
    token       TEXT NOT NULL,
    tx_id       TEXT NOT NULL,
    block       BIGINT NOT NULL,
    nonce       BIGINT,
    received    TEXT NOT NULL,
    sent        TEXT NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('journal', 'declared')),
    note        TEXT,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (token, tx_id)
);
CREATE INDEX treasury_flows_block ON treasury_flows (token, block);
