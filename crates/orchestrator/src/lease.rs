//! Leader leases per token with fencing tokens, so two daemons (or a daemon and a CLI)
//! on one store never both act on a token.
//!
//! A lease is a row of the store's `leases` table ([`softstake_store::LeaseRecord`]):
//! holder, expiry and a generation that grows at each take-over. The holder renews it
//! every tick and from a background task while a long step runs; a standby takes it once
//! it has expired. Every write the leader makes for the token goes through a store handle
//! [fenced](Store::fenced) by its generation, so a leader that was paused past its expiry
//! (SIGSTOP, a stalled VM) and wakes up after a take-over has each write refused
//! ([`softstake_store::StoreError::Fenced`]) instead of acting twice. This is the fencing
//! token of M. Kleppmann, "How to do distributed locking" (2016).
//!
//! ```text
//!  tick ─▶ held? ─ yes ─▶ renew ─ lost ─▶ drop it (stand by)
//!            └─ no ─▶ take (free or expired) ─▶ generation + 1 ─▶ recover, then act
//!                         └─ another holder renews it ─▶ standby
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{OrchestratorError, Result};
use tokio::sync::Mutex;
use tracing::{info, warn};

use softstake_store::{LeaseTake, Store};

use crate::clock::Clock;

/// What a `try_acquire` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// Held before this call, and renewed: act with the store fenced at this generation.
    Held(i64),
    /// Taken by this call at this generation (recover the journal before acting).
    Acquired(i64),
    /// Another instance holds it.
    Standby {
        /// Who.
        holder: String,
    },
}

/// How long a lease lasts without renewal; a standby takes over after it.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(30);

/// The wall clock in Unix milliseconds, for lease expiry (never the daemon's business
/// clock, which a drill may stop).
pub fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `role pid N on HOST (id)`: unique per process, readable in `leases` and in errors.
pub fn holder_id(role: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let nonce: u32 = rand::random();
    format!("{role} pid {} on {host} ({nonce:08x})", std::process::id())
}

/// This instance's leases.
#[derive(Debug)]
pub struct Leases {
    store: Store,
    holder: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    held: Mutex<BTreeMap<String, i64>>,
}

impl Leases {
    /// Leases over `store`, held as `holder` for `ttl` between renewals, expiring on
    /// `clock` (the wall clock in the daemon, the simulated one in the simulator).
    pub fn new(store: Store, holder: String, ttl: Duration, clock: Arc<dyn Clock>) -> Leases {
        Leases {
            store,
            holder,
            ttl,
            clock,
            held: Mutex::new(BTreeMap::new()),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().0 / 1_000_000
    }

    /// The tokens this instance leads, with their generations.
    pub async fn held(&self) -> BTreeMap<String, i64> {
        self.held.lock().await.clone()
    }

    /// Who this instance is in the `leases` table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Renews the lease of `token` if held, else tries to take it.
    ///
    /// # Errors
    /// A store error (the lease statements are bounded by a 5 s timeout); the caller
    /// does not act for the token this tick.
    pub async fn try_acquire(&self, token: &str) -> Result<LeaseState> {
        let mut held = self.held.lock().await;
        if let Some(generation) = held.get(token).copied() {
            let renewed = self
                .store
                .renew_lease(token, &self.holder, generation, self.ttl_ms(), self.now_ms())
                .await;
            match renewed {
                Ok(true) => return Ok(LeaseState::Held(generation)),
                Ok(false) => {
                    warn!(token = %token, generation, "leader lease lost to another instance");
                    held.remove(token);
                }
                Err(e) => {
                    // Unknown whether it is still ours: stop acting until it is renewed or
                    // retaken; the fence protects the writes either way.
                    held.remove(token);
                    return Err(e.into());
                }
            }
        }
        match self
            .store
            .take_lease(token, &self.holder, self.ttl_ms(), self.now_ms())
            .await?
        {
            LeaseTake::Taken { generation } => {
                info!(token = %token, generation, holder = %self.holder, "leader lease taken");
                held.insert(token.to_string(), generation);
                Ok(LeaseState::Acquired(generation))
            }
            LeaseTake::HeldBy(r) => Ok(LeaseState::Standby {
                holder: r.holder.unwrap_or_default(),
            }),
        }
    }

    /// Renews every held lease (the background renewer, so a long step does not let the
    /// lease lapse). Leases found lost are dropped.
    pub async fn renew_all(&self) {
        let mut held = self.held.lock().await;
        let tokens: Vec<(String, i64)> = held.iter().map(|(t, g)| (t.clone(), *g)).collect();
        for (token, generation) in tokens {
            match self
                .store
                .renew_lease(&token, &self.holder, generation, self.ttl_ms(), self.now_ms())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    warn!(token = %token, generation, "leader lease lost to another instance");
                    held.remove(&token);
                }
                Err(e) => warn!(token = %token, error = %e, "renewing the leader lease failed; retried"),
            }
        }
    }

    /// Releases every lease (graceful shutdown): a standby takes over at once.
    pub async fn release_all(&self) {
        let mut held = self.held.lock().await;
        for (token, generation) in held.iter() {
            if let Err(e) = self.store.release_lease(token, &self.holder, *generation).await {
                warn!(token = %token, error = %e, "releasing the leader lease");
            }
        }
        held.clear();
    }
}

/// A lease a CLI command holds on one token while it writes; released on
/// [`CliLease::release`].
#[derive(Debug)]
pub struct CliLease {
    store: Store,
    token: String,
    holder: String,
    generation: i64,
}

/// How long a CLI command's lease lasts: longer than any single command, short enough
/// that a crashed command does not stop the daemon for long.
const CLI_LEASE_TTL: Duration = Duration::from_secs(600);

impl CliLease {
    /// Takes `token`'s lease for a mutating CLI command, or refuses while another
    /// instance (a daemon) holds it, naming the holder.
    ///
    /// # Errors
    /// The lease is held by another instance; a store error.
    pub async fn take(store: &Store, token: &str, command: &str) -> Result<CliLease> {
        let holder = holder_id(&format!("softstake {command}"));
        let ttl = i64::try_from(CLI_LEASE_TTL.as_millis()).unwrap_or(i64::MAX);
        match store.take_lease(token, &holder, ttl, wall_ms()).await? {
            LeaseTake::Taken { generation } => Ok(CliLease {
                store: store.clone(),
                token: token.to_string(),
                holder,
                generation,
            }),
            LeaseTake::HeldBy(r) => Err(OrchestratorError::LeaseHeld {
                token: token.to_string(),
                holder: r.holder.unwrap_or_default(),
                generation: r.generation,
                until: chrono::DateTime::from_timestamp_millis(r.expires_at_ms)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            }),
        }
    }

    /// The store fenced by this lease: every write for the token through it is refused
    /// once another instance takes the lease.
    pub fn store(&self) -> Store {
        self.store.fenced(&self.token, self.generation)
    }

    /// Gives the lease up (a daemon takes it at its next tick, with a new generation).
    pub async fn release(self) -> Result<()> {
        self.store
            .release_lease(&self.token, &self.holder, self.generation)
            .await?;
        Ok(())
    }
}

/// Runs a mutating CLI command's work on `token` under the token's lease: `f` gets the
/// store fenced by it. Refuses (before `f` runs) while a daemon holds the lease, naming
/// it; the lease is released whatever `f` returns.
///
/// # Errors
/// The lease is held elsewhere; `f`'s error; a store error releasing the lease.
pub async fn under_lease<T, E: From<OrchestratorError>>(
    store: &Store,
    token: &str,
    command: &str,
    f: impl AsyncFnOnce(&Store) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let lease = CliLease::take(store, token, command).await?;
    let out = f(&lease.store()).await;
    let released = lease.release().await;
    let out = out?;
    released?;
    Ok(out)
}
