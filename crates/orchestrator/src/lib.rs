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
//! Errors are `anyhow` here as in the binary: this is the application layer, whose
//! errors are reported and retried, never matched on (the store's and adapters' typed
//! errors stay reachable through `downcast_ref`, as [`scheduler::is_fenced`] does).
#![deny(missing_docs)]

pub mod chains;
pub mod clock;
pub mod lease;
pub mod metrics;
pub mod scheduler;
pub mod treasury;
