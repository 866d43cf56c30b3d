//! # softstake-orchestrator
//!
//! The long-running part of softstake as a library, with everything it acts on injected:
//! the clock ([`clock::Clock`]), the store ([`softstake_store::Store`]), the chains
//! ([`chains::Chains`]) and the leases ([`lease::Leases`]). `softstake run` drives it with
//! the wall clock, PostgreSQL and real adapters; `softstake simulate` drives the same code
//! with a manual clock, simulated chains and injected faults.
//!
//! ```text
//!  Scheduler::cycle ─▶ per token: Leases (fenced generation) ─▶ Executor::recover
//!        │                └─ Store::fenced(token, generation): stale writes refused
//!        ├─ close days ─▶ Store::close_day ─▶ custody booking
//!        ├─ treasury  ─▶ sync ─▶ reconcile ─▶ plan ─▶ execute (journal) ─▶ ChainAdapter
//!        └─ distribute ─▶ Store::distribute (after the payout window opens)
//! ```
//!
//! Errors are one enum, [`OrchestratorError`], with a [`Result`] alias: the store's and
//! the adapters' typed errors are kept inside it, so a caller can tell a stale leader's
//! refused write ([`OrchestratorError::is_fenced`]) from a chain's answer.
#![deny(missing_docs)]

pub mod chains;
pub mod clock;
pub mod error;
pub mod lease;
pub mod metrics;
pub mod scheduler;
pub mod treasury;

pub use error::{OrchestratorError, Result};
