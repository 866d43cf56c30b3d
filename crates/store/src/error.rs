//! The store's one error type and its `Result` alias.

use softstake_core::CoreError;
use thiserror::Error;

/// `Result` with [`StoreError`].
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What the store refuses or fails at. State errors (`DayOrder`, `NotClosed`,
/// `AlreadyDistributed`, …) change nothing: the transaction is rolled back.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database failed or refused a statement.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// A schema migration failed.
    #[error("schema migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A domain rule refused the data.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// A row read back does not satisfy an invariant (corruption or a bug).
    #[error("corrupt row in {table}: {detail}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// Days must be closed in order, one after the other, per token.
    #[error("cannot close {token} {day}: {reason}")]
    DayOrder {
        /// Token symbol.
        token: String,
        /// The day asked for.
        day: String,
        /// Why not.
        reason: String,
    },
    /// A day must be closed before it is distributed.
    #[error("{token} {day} is not closed yet: run close-day first")]
    NotClosed {
        /// Token symbol.
        token: String,
        /// The day.
        day: String,
    },
    /// A day is paid at most once.
    #[error("{token} {day} was already distributed at {paid_at}; nothing was paid again")]
    AlreadyDistributed {
        /// Token symbol.
        token: String,
        /// The day.
        day: String,
        /// RFC 3339 time of the payout.
        paid_at: String,
    },
    /// Days are distributed in order, so carry-over flows forward.
    #[error("cannot distribute {token} {day}: {reason}")]
    DistributeOrder {
        /// Token symbol.
        token: String,
        /// The day.
        day: String,
        /// Why not.
        reason: String,
    },
    /// A balance event falls in a day that is already closed for its token.
    #[error("balance event for account {account_id} token {token} at {ts} is in a closed day (last closed {last_closed}); late events cannot change a closed day")]
    EventInClosedDay {
        /// Where the event came from (file line or feed position), when known.
        line: Option<u64>,
        /// Token symbol.
        token: String,
        /// Account id.
        account_id: String,
        /// RFC 3339 time.
        ts: String,
        /// The last closed day.
        last_closed: String,
    },
    /// An event at the same (token, account, ts) already exists with another balance.
    #[error("balance event for account {account_id} token {token} at {ts} already recorded with balance {existing}, new {new} (base units)")]
    ConflictingEvent {
        /// Where the new event came from (file line or feed position), when known.
        line: Option<u64>,
        /// Token symbol.
        token: Box<str>,
        /// Account id.
        account_id: Box<str>,
        /// RFC 3339 time.
        ts: Box<str>,
        /// The stored balance.
        existing: Box<str>,
        /// The new balance.
        new: Box<str>,
    },
    /// A feed event id was given to two different events.
    #[error("event id {event_id:?} was already used for another balance event")]
    EventIdReused {
        /// Where the event came from (file line or feed position), when known.
        line: Option<u64>,
        /// The id.
        event_id: String,
    },
    /// A reward with the same (token, day, source) exists with another amount.
    #[error("reward for {token} {day} from source {source_name:?} already recorded as {existing} base units (new {new}); record it under another --source to add to it")]
    RewardConflict {
        /// Token symbol.
        token: String,
        /// The day.
        day: String,
        /// Source label.
        source_name: String,
        /// Stored amount.
        existing: String,
        /// New amount.
        new: String,
    },
    /// Rewards cannot be added to a day that is already paid out.
    #[error("{token} {day} is already distributed; rewards realized later must be attributed to a later day")]
    RewardForDistributedDay {
        /// Token symbol.
        token: String,
        /// The day.
        day: String,
    },
    /// A reward for a day before the token's first closed day: it could never be paid.
    #[error("reward for {token} {day} is before the token's first closed day {first_closed}; it could never be paid (attribute it to {first_closed} or later)")]
    RewardBeforeFirstClosedDay {
        /// Token symbol.
        token: String,
        /// The day asked for.
        day: String,
        /// The token's first closed day.
        first_closed: String,
    },
    /// A bulk ingest found the same key twice in what it loaded for a new token-day;
    /// nothing was stored. Ingest again row by row ([`crate::Store::begin_ingest`]), which
    /// takes exact duplicates and names the line of a conflict.
    #[error("{token} {day}: the bulk load has the same (account, time) twice; nothing was stored (ingest row by row to find it)")]
    BulkDuplicates {
        /// Token symbol.
        token: String,
        /// The day.
        day: String,
    },
    /// A state transition that the journal does not allow.
    #[error("journal: {0}")]
    Journal(String),
    /// A fenced write whose writer no longer holds the token's lease: another instance
    /// took it (a higher generation), so this write was refused and changed nothing.
    #[error("{token}: this writer's lease (generation {generation}) is stale: the lease is at generation {current}, held by {holder}; nothing was written")]
    Fenced {
        /// Token.
        token: Box<str>,
        /// The writer's generation.
        generation: i64,
        /// The current generation (0 when the token has no lease row).
        current: i64,
        /// Who holds the current generation.
        holder: Box<str>,
    },
    /// Another process holds the SQLite store's write lock; this handle only reads.
    #[error("{path} is open for writing by another process ({holder}); this process can only read it: stop that process first")]
    ReadOnly {
        /// The database file.
        path: Box<str>,
        /// What the lock file says about its holder.
        holder: Box<str>,
    },
    /// A write failed on purpose ([`crate::Store::fail_writes`]: the simulator's store
    /// faults); nothing was written.
    #[error("injected store fault: write transaction {0} failed before it started")]
    Injected(u64),
    /// Something looked up is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// Input the store refuses before writing anything (an ingest batch, an archive
    /// request, an export), with what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// Writing or reading a file (archive, export) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Where the offending input came from (its file line or feed position), for the
    /// errors about one event; callers put it in front of the message in their own terms
    /// (`balances.csv:12`, `events[11]`).
    pub fn line(&self) -> Option<u64> {
        match self {
            StoreError::ConflictingEvent { line, .. }
            | StoreError::EventInClosedDay { line, .. }
            | StoreError::EventIdReused { line, .. } => *line,
            _ => None,
        }
    }

    pub(crate) fn corrupt(table: &'static str, detail: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            table,
            detail: detail.into(),
        }
    }
}
