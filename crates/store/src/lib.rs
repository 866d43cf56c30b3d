//! # softstake-store
//!
//! Persistence for softstake with two real backends behind one API: a SQLite file is the
//! embedded default, PostgreSQL the production store. Each backend has its own typed sqlx
//! pool; SQL that is the same on both is written once (the `db` module's dispatch macros), and
//! where speed or correctness needs it each backend has its own path: PostgreSQL loads
//! and unloads with binary `COPY`, keeps amounts in `NUMERIC(39,0)`, partitions
//! `balance_events` by day and serializes a token's day writers with an advisory lock;
//! SQLite keeps events in a clustered `WITHOUT ROWID` table and serializes every writer
//! with `BEGIN IMMEDIATE`.
//!
//! ```text
//!  accounts ─┐
//!  balance feed ─▶ ingest (batches, COPY) ─▶ balance_events (per-day partitions)
//!  daily_balances(d−1).closing ─┐
//!  events of d in time order ───┴▶ close_day (one 64-byte accumulator per account)
//!                                  ─▶ daily_balances(d) with closing (COPY), closed_days
//!  rewards ─────────────▶ distribute (two streamed passes) ─▶ payouts (COPY) +
//!                                             distributions + ledger
//!  operations journal (intent → submitted → confirmed | failed → reconciled)
//!  archive: closed days' events ─▶ CSV files, partitions dropped
//! ```
//!
//! Writers of one token's days (ingest, rewards record, close, distribute) take one lock
//! in their transaction (`lock_token_days`), so an event is either counted by its
//! day's close or refused as late, never lost.
//!
//! Amounts are `NUMERIC(39,0)` on PostgreSQL and decimal `TEXT` on SQLite (no 128-bit
//! integer there), checked when read back. Timestamps are BIGINT Unix nanoseconds (UTC);
//! days are TEXT `YYYY-MM-DD`.
//!
//! Every command that writes runs in one transaction: an error leaves the store as it was.
#![deny(missing_docs)]

mod accounts;
mod archive;
mod balances;
mod close;
mod db;
mod distribution;
pub mod error;
mod export;
mod filelock;
mod flows;
mod ingest;
mod journal;
mod lease;
mod ledger;
mod pg;
mod rewards;
mod service;
mod treasury;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::db::{on_pool, Pool, Tx};

pub use accounts::AccountsImport;
pub use archive::{ArchiveDay, ArchiveReport, ArchiveSink};
pub use balances::CloseOutcome;
pub use distribution::{AprRow, DistributionSummary, HistoryRow};
pub use error::{Result, StoreError};
pub use export::{ExportRow, PayoutExport};
pub use flows::{FlowSource, MAX_TREASURY_FLOWS, MAX_UNRESOLVED_JOURNAL_TXS};
pub use ingest::{Ingest, IngestEvent, IngestReport, MAX_DAYS_PER_INGEST};
pub use journal::{Expect, NewOperation, Operation, OperationState, MAX_EXIT_OPERATIONS};
pub use lease::{Fence, LeaseRecord, LeaseTake};
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
    pool: Pool,
    pauses: Pauses,
    /// The lease this handle's writes are fenced by ([`Store::fenced`]).
    fence: Option<std::sync::Arc<Fence>>,
    /// SQLite: this process's hold on the file's write lock, or why it has none.
    access: Option<filelock::Access>,
    /// Injected write failures (the simulator's store faults).
    faults: WriteFaults,
}

/// Write transactions to fail, by their ordinal from when they were armed (the
/// simulator's "store error" and "crash before commit" faults: the transaction never
/// starts, so nothing of it is written, as if the process died before its commit).
#[derive(Debug, Clone, Default)]
struct WriteFaults(std::sync::Arc<std::sync::Mutex<(u64, std::collections::BTreeSet<u64>)>>);

impl WriteFaults {
    fn hit(&self) -> Option<u64> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let n = g.0;
        g.1.remove(&n).then_some(n)
    }
}

/// Places where a writer can be held, inside its transaction and holding its locks, for
/// tests and drills of concurrent writers ([`Store::pause_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    /// A day close has streamed its events and not yet written or committed.
    CloseStreamed,
    /// A distribution has paid every account and not yet committed.
    DistributePaid,
    /// A rewards record has written its rows and not yet committed.
    RewardsRecorded,
    /// A chain's realized rewards and cursor are written and not yet committed.
    RealizedRecorded,
}

/// One armed pause: the point and the barrier the writer and the test meet at.
type ArmedPause = (PausePoint, std::sync::Arc<tokio::sync::Barrier>);

/// Armed pauses: each is taken by the first writer that reaches its point.
#[derive(Debug, Clone, Default)]
struct Pauses(std::sync::Arc<std::sync::Mutex<Vec<ArmedPause>>>);

impl Pauses {
    /// Holds the caller at `point` if a pause is armed there: meets the test at the
    /// barrier (reached), then again (released).
    async fn hold(&self, point: PausePoint) {
        let gate = {
            let mut armed = self.0.lock().unwrap_or_else(|p| p.into_inner());
            armed.iter().position(|(p, _)| *p == point).map(|i| armed.remove(i).1)
        };
        if let Some(b) = gate {
            b.wait().await;
            b.wait().await;
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long an SQLite writer waits for another's write lock before failing. A day close
/// of a large token holds it for as long as it streams, so this is generous.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(120);

impl Store {
    /// Connects to `url` (`sqlite://path/to/file.db` — created with its folder if missing —
    /// or `postgres://user@host:port/db`) and applies pending migrations.
    ///
    /// An SQLite file has one writing process: the first to open it takes its write lock
    /// (`<file>.lock`, see [`StoreError::ReadOnly`]); while that process runs, any other
    /// opens the file read-only and its writes are refused naming the holder.
    ///
    /// Errors: [`StoreError::UnsupportedUrl`] for other schemes, [`StoreError::Db`] when
    /// the database cannot be reached, [`StoreError::Migrate`] when the schema cannot be
    /// brought up to date, [`StoreError::Io`] when the SQLite lock file cannot be opened.
    pub async fn open(url: &str) -> Result<Store> {
        let mut access = None;
        let pool = if url.starts_with("sqlite:") {
            let (url, path) = prepare_sqlite_url(url)?;
            let lock = filelock::acquire(Path::new(&path))?;
            let writer = matches!(lock, filelock::Access::Write(_));
            access = Some(lock);
            let opts = SqliteConnectOptions::from_str(&url)?
                .foreign_keys(true)
                .read_only(!writer)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let opts = match writer {
                true => opts.journal_mode(SqliteJournalMode::Wal),
                false => opts,
            };
            // An SQLite connection lives in this process: pinging it before each use (sqlx's
            // default) only adds a round trip to its worker thread per statement.
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .test_before_acquire(false)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await?;
            if writer {
                SQLITE_MIGRATIONS.run(&pool).await?;
            }
            Pool::Sqlite(pool)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // JIT compiles each execution of a generic plan whose estimate is large (an
            // export page paid 160 ms of JIT for 50 ms of work); the store's statements
            // are index lookups and streamed scans, which it does not speed up.
            let opts = PgConnectOptions::from_str(url)?.options([("jit", "off")]);
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await?;
            POSTGRES_MIGRATIONS.run(&pool).await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        };
        Ok(Store {
            pool,
            pauses: Pauses::default(),
            fence: None,
            access,
            faults: WriteFaults::default(),
        })
    }

    /// Arms a one-shot pause at `point` for tests and drills: the next writer of this
    /// store (and its clones) that reaches it waits at `gate` (a two-party barrier) once
    /// to say it arrived, holding its transaction and locks, and again to go on.
    pub fn pause_at(&self, point: PausePoint, gate: std::sync::Arc<tokio::sync::Barrier>) {
        self.pauses
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((point, gate));
    }

    /// Makes write transactions of this store (and its clones) fail: the `k`-th write
    /// transaction started from now for each `k` in `ordinals` (1-based) fails with
    /// [`StoreError::Injected`] before it starts. For the simulator and drills.
    pub fn fail_writes(&self, ordinals: impl IntoIterator<Item = u64>) {
        let mut g = self.faults.0.lock().unwrap_or_else(|p| p.into_inner());
        let base = g.0;
        g.1 = ordinals.into_iter().map(|k| base + k).collect();
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// The PostgreSQL pool, when that is the backend (for the daemon's leader lease, which
    /// holds session advisory locks on a dedicated connection).
    pub fn pg_pool(&self) -> Option<&sqlx::PgPool> {
        match &self.pool {
            Pool::Postgres(p) => Some(p),
            Pool::Sqlite(_) => None,
        }
    }

    /// Checks that the database answers (`SELECT 1`).
    ///
    /// # Errors
    /// [`StoreError::Db`] when it does not.
    pub async fn ping(&self) -> Result<()> {
        on_pool!(self, |p| sqlx::query("SELECT 1").execute(p).await?.rows_affected());
        Ok(())
    }

    /// Starts a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write
    /// lock is taken up front, so a concurrent writer waits (`busy_timeout`) instead of
    /// failing with `SQLITE_BUSY` when a deferred transaction that has already read tries
    /// to upgrade to a write (sqlite.org/lang_transaction.html). PostgreSQL: plain `BEGIN`
    /// (READ COMMITTED); writers of a token's days also take [`Store::lock_token_days`].
    ///
    /// # Errors
    /// [`StoreError::Db`] when no connection can be acquired or the lock is not granted
    /// within the busy timeout.
    ///
    /// On a handle [`Store::fenced`] by a lease, the transaction starts with the fence
    /// check: [`StoreError::Fenced`] when the lease has moved on. On an SQLite file
    /// another process writes: [`StoreError::ReadOnly`].
    pub(crate) async fn write_tx(&self) -> Result<Tx> {
        let mut tx = self.unfenced_write_tx().await?;
        if let Some(f) = self.fence.as_deref() {
            lease::check_fence(&mut tx, f, true).await?;
        }
        Ok(tx)
    }

    /// [`Store::write_tx`] without the fence check (the lease calls themselves).
    pub(crate) async fn unfenced_write_tx(&self) -> Result<Tx> {
        if let Some(n) = self.faults.hit() {
            return Err(StoreError::Injected(n));
        }
        if let Some(filelock::Access::Read { path, holder }) = &self.access {
            return Err(StoreError::ReadOnly {
                path: path.clone(),
                holder: holder.clone(),
            });
        }
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// True when this handle may write (PostgreSQL, or the SQLite file's lock holder).
    pub fn writable(&self) -> bool {
        !matches!(self.access, Some(filelock::Access::Read { .. }))
    }

    /// Starts a read-only snapshot: SQLite's deferred `BEGIN`; PostgreSQL's
    /// `REPEATABLE READ, READ ONLY`, so several statements see one state.
    pub(crate) async fn read_tx(&self) -> Result<Tx> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?),
        })
    }

    /// Takes the lock that serializes the writers of `token`'s days (ingest, rewards record,
    /// close, distribute) until `tx` ends: `pg_advisory_xact_lock` on PostgreSQL; on SQLite
    /// `BEGIN IMMEDIATE` already serializes every writer. Lock several tokens in sorted order.
    pub(crate) async fn lock_token_days(tx: &mut Tx, token: &str) -> Result<()> {
        if let Tx::Postgres(t) = tx {
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(TOKEN_DAY_LOCK)
                .bind(token)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }
}

/// The advisory-lock namespace of token-day writers (`"SSK1"`); the second key is
/// `hashtext(token)`.
const TOKEN_DAY_LOCK: i32 = 0x5353_4B31;

/// Makes sure the SQLite file's folder exists and asks SQLite to create the file.
/// Returns the URL to connect with and the file's path.
fn prepare_sqlite_url(url: &str) -> Result<(String, String)> {
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
    let url = match query {
        Some(q) if q.contains("mode=") => format!("sqlite://{path}?{q}"),
        Some(q) => format!("sqlite://{path}?{q}&mode=rwc"),
        None => format!("sqlite://{path}?mode=rwc"),
    };
    Ok((url, path.to_string()))
}
