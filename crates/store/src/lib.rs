//! # softstake-store
//!
//! Persistence for softstake over sqlx's `Any` driver: a SQLite file is the embedded
//! default, PostgreSQL the production store; the same SQL runs on both (`$n`
//! placeholders, `ON CONFLICT`), with one migration folder per dialect.
//!
//! ```text
//!  accounts ─┐
//!  balance_events ─▶ close_day (stream, one accumulator per account) ─▶ daily_balances
//!  balances (closing) ◀┘                                              closed_days
//!  rewards ─────────────────────────▶ distribute ─▶ payouts + distributions + ledger
//!  operations journal (intent → submitted → confirmed | failed → reconciled)
//! ```
//!
//! Amounts are stored as TEXT decimal strings of base units (u128 does not fit a 64-bit
//! integer column) and are parsed, with their invariants checked, when read back.
//! Timestamps are BIGINT Unix nanoseconds (UTC); days are TEXT `YYYY-MM-DD`.
//!
//! Every command that writes runs in one transaction: an error leaves the store as it was.
#![deny(missing_docs)]

mod accounts;
mod balances;
mod distribution;
pub mod error;
mod journal;
mod ledger;
mod rewards;
mod service;
mod sql;
mod treasury;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use balances::{CloseOutcome, IngestReport};
pub use distribution::{AprRow, DistributionSummary, HistoryRow};
pub use error::{Result, StoreError};
pub use journal::{NewOperation, Operation, OperationState};
pub use ledger::LedgerBalance;
pub use rewards::{RecordOutcome, RewardRow};
pub use service::ApiKey;
pub use treasury::{Alert, PlanRecord, PlanStatus, PositionSnapshot, RealizedReward, RewardCursor};

/// Which database the store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A handle on the database; cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` — created with its folder if missing —
    /// or `postgres://user@host:port/db`) and applies pending migrations.
    ///
    /// Errors: [`StoreError::UnsupportedUrl`] for other schemes, [`StoreError::Db`] when
    /// the database cannot be reached, [`StoreError::Migrate`] when the schema cannot be
    /// brought up to date.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 10 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA foreign_keys = ON; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        match backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying pool (for advanced callers such as the daemon's leader lease).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write
    /// lock is taken up front, so a concurrent writer waits (`busy_timeout`) instead of
    /// failing with `SQLITE_BUSY` when a deferred transaction that has already read tries
    /// to upgrade to a write (sqlite.org/lang_transaction.html). PostgreSQL: plain `BEGIN`.
    ///
    /// # Errors
    /// [`StoreError::Db`] when no connection can be acquired or the lock is not granted
    /// within the busy timeout.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Makes sure the SQLite file's folder exists and asks SQLite to create the file.
fn prepare_sqlite_url(url: &str) -> Result<String> {
    let rest = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::UnsupportedUrl(format!(
            "{url}: an in-memory SQLite database is not shared between pool connections; use a file"
        )));
    }
    if let Some(parent) = Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::UnsupportedUrl(format!("{url}: cannot create folder {}: {e}", parent.display()))
            })?;
        }
    }
    Ok(match query {
        Some(q) if q.contains("mode=") => format!("sqlite://{path}?{q}"),
        Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    })
}
