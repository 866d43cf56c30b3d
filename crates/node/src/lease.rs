//! Leader leases per token, so two daemons on one PostgreSQL never both act on a token.
//!
//! On PostgreSQL a lease is a session-level advisory lock (`pg_try_advisory_lock`) held on
//! one dedicated connection: when the leader dies its session ends, PostgreSQL releases the
//! locks, and a standby's next `try` takes them over. The connection is checked every
//! cycle; if it breaks, every lease is dropped at once (the locks are gone with it).
//! SQLite is single-instance (one process owns the file), so its leases are always held.

use std::collections::BTreeSet;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Row};
use tokio::sync::Mutex;
use tracing::{info, warn};

use softstake_store::{Backend, Store};

/// The advisory-lock key of a token: the first 8 bytes of `sha256("softstake lease <TOKEN>")`.
pub fn lock_key(token: &str) -> i64 {
    let h = Sha256::digest(format!("softstake lease {token}"));
    i64::from_be_bytes(h[..8].try_into().unwrap_or([0; 8]))
}

/// What a `try_acquire` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Held before this call.
    Held,
    /// Taken by this call (recover the journal before acting).
    Acquired,
    /// Another instance holds it.
    Standby,
}

/// This instance's leases.
#[derive(Debug)]
pub struct Leases {
    store: Store,
    conn: Mutex<Option<PoolConnection<Postgres>>>,
    held: Mutex<BTreeSet<String>>,
}

impl Leases {
    /// Leases over `store`.
    pub fn new(store: Store) -> Leases {
        Leases {
            store,
            conn: Mutex::new(None),
            held: Mutex::new(BTreeSet::new()),
        }
    }

    /// Takes or confirms the lease of `token`.
    pub async fn try_acquire(&self, token: &str) -> Result<LeaseState> {
        if self.store.backend() == Backend::Sqlite {
            let mut held = self.held.lock().await;
            return Ok(if held.insert(token.to_string()) {
                LeaseState::Acquired
            } else {
                LeaseState::Held
            });
        }
        let mut conn = self.conn.lock().await;
        let mut held = self.held.lock().await;
        if let Some(c) = conn.as_mut() {
            if sqlx::query("SELECT 1").execute(&mut **c).await.is_err() {
                warn!("lease connection lost: every lease is dropped");
                *conn = None;
                held.clear();
            }
        }
        if conn.is_none() {
            // Held for the daemon's life: a connection in use is never reaped by the pool.
            let pool = self.store.pg_pool().context("leases on PostgreSQL need its pool")?;
            *conn = Some(pool.acquire().await.context("a connection for the leases")?);
        }
        if held.contains(token) {
            return Ok(LeaseState::Held);
        }
        let c = conn.as_mut().context("lease connection")?;
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS ok")
            .bind(lock_key(token))
            .fetch_one(&mut **c)
            .await?;
        let ok: bool = row.try_get("ok")?;
        if ok {
            info!(token = %token, "leader lease taken");
            held.insert(token.to_string());
            Ok(LeaseState::Acquired)
        } else {
            Ok(LeaseState::Standby)
        }
    }

    /// Releases every lease (graceful shutdown).
    pub async fn release_all(&self) {
        let mut conn = self.conn.lock().await;
        let mut held = self.held.lock().await;
        if let Some(c) = conn.as_mut() {
            for t in held.iter() {
                let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(lock_key(t))
                    .execute(&mut **c)
                    .await;
            }
        }
        held.clear();
        *conn = None;
    }
}
