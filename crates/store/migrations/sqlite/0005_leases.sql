-- Leader leases with fencing tokens (M. Kleppmann, "How to do distributed locking", 2016).
-- One row per token. `generation` only grows: taking the lease increments it, and every
-- fenced write for the token checks, in its own transaction, that its writer's generation
-- is still the current one. `expires_at_ms` (Unix milliseconds, the holders' wall clock)
-- only decides when a standby may take over: safety comes from the generation, not time.
CREATE TABLE leases (
    token          TEXT PRIMARY KEY,
    generation     BIGINT NOT NULL CHECK (generation >= 0),
    holder         TEXT,
    acquired_at_ms BIGINT NOT NULL,
    expires_at_ms  BIGINT NOT NULL
);
