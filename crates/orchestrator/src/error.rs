//! The orchestrator's one error type, [`OrchestratorError`], and its [`Result`] alias.
//!
//! The store's, the adapters' and the core's typed errors are kept as they are (matched on
//! by callers: [`OrchestratorError::is_fenced`] finds a stale leader's refused write), and
//! the orchestrator's own refusals say what to do next.

use std::path::PathBuf;

use softstake_adapters::AdapterError;
use softstake_core::CoreError;
use softstake_store::StoreError;

use crate::treasury::executor::Crashed;

/// `Result` with [`OrchestratorError`].
pub type Result<T, E = OrchestratorError> = std::result::Result<T, E>;

/// Everything the scheduler, the treasury loop, the executor and the leases can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The store's error; [`StoreError::Fenced`] when this instance's lease is stale.
    /// (Boxed, as the other foreign errors: it keeps every `Result` small.)
    #[error(transparent)]
    Store(Box<StoreError>),
    /// A chain's error while reading something for `token` (`doing` says what).
    #[error("{token}: {doing}: {source}")]
    Chain {
        /// Token.
        token: String,
        /// What was being read ("reading positions").
        doing: &'static str,
        /// The adapter's error.
        #[source]
        source: Box<AdapterError>,
    },
    /// A chain's error, as the adapter worded it (it names the chain).
    #[error(transparent)]
    Adapter(Box<AdapterError>),
    /// The core's error (an amount overflowing u128, a malformed day, the planner's).
    #[error(transparent)]
    Core(Box<CoreError>),
    /// A simulated chain's saved state could not be read or written.
    #[error("{doing} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing").
        doing: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The OS's error.
        #[source]
        source: std::io::Error,
    },
    /// A simulated chain's saved state does not load.
    #[error("loading {}: {source}", path.display())]
    SimState {
        /// The state file.
        path: PathBuf,
        /// Why it does not load.
        #[source]
        source: Box<AdapterError>,
    },
    /// A plan could not be serialized for the store.
    #[error("serializing a plan: {0}")]
    Json(#[from] serde_json::Error),
    /// No chain is configured for the token.
    #[error("no chain configured for {token}: add [chains.{token}] to the network config")]
    NoChain {
        /// Token.
        token: String,
    },
    /// A mutating command found the token's lease held by another instance.
    #[error("{token} is led by {holder} (lease generation {generation}, renewed until {until}): run this through that daemon's API, or stop it first")]
    LeaseHeld {
        /// Token.
        token: String,
        /// The holder's id (host, pid, command).
        holder: String,
        /// Its lease generation.
        generation: i64,
        /// When its lease runs out unless renewed (RFC 3339).
        until: String,
    },
    /// The request cannot run in the token's current state (moves frozen, an approval
    /// missing, operations still open, an alert of another token); the message says what
    /// to do.
    #[error("{0}")]
    Refused(String),
    /// The journal or the ledger holds what must not be there (a submitted operation
    /// without its transaction, a balance beyond ±2^127 base units).
    #[error("{0}")]
    Inconsistent(String),
    /// The executor stopped at an armed crash point (tests and drills).
    #[error(transparent)]
    Crashed(#[from] Crashed),
    /// `SOFTSTAKE_CRASH_AT` is malformed; the message names what is accepted.
    #[error("{0}")]
    Drill(String),
    /// A failover drill could not stop the process (SIGSTOP).
    #[error("raising SIGSTOP for a drill: {0}")]
    Signal(#[from] nix::errno::Errno),
}

impl From<StoreError> for OrchestratorError {
    fn from(e: StoreError) -> Self {
        OrchestratorError::Store(Box::new(e))
    }
}

impl From<AdapterError> for OrchestratorError {
    fn from(e: AdapterError) -> Self {
        OrchestratorError::Adapter(Box::new(e))
    }
}

impl From<CoreError> for OrchestratorError {
    fn from(e: CoreError) -> Self {
        OrchestratorError::Core(Box::new(e))
    }
}

impl OrchestratorError {
    /// True when a write was refused because this instance's lease is stale
    /// ([`StoreError::Fenced`]).
    pub fn is_fenced(&self) -> bool {
        matches!(self, OrchestratorError::Store(e) if matches!(**e, StoreError::Fenced { .. }))
    }

    /// An I/O error on `path` while `doing` it.
    pub(crate) fn io(doing: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| OrchestratorError::Io { doing, path, source }
    }

    /// A chain's error while `doing` something for `token`.
    pub(crate) fn chain<'a>(token: &'a str, doing: &'static str) -> impl FnOnce(AdapterError) -> Self + 'a {
        move |source| OrchestratorError::Chain {
            token: token.to_string(),
            doing,
            source: Box::new(source),
        }
    }
}
