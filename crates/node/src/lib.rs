//! # softstake-node
//!
//! The `softstake` binary's library: CLI commands, configuration, CSV inputs, reports,
//! the APIs, the daemon's process (servers, signals, feed) and the demo. The scheduler,
//! the treasury loop, the executor and the leases are `softstake-orchestrator`'s
//! (re-exported here as `clock`, `lease` and `treasury`, with its `OrchestratorError`).
//! Errors here are `anyhow` (this is the binary's layer); the domain, the adapters, the
//! store and the orchestrator keep typed errors.
//!
//! ```text
//!  CLI (clap) ─▶ config (validated, then resolved) ─▶ store (sqlx) ─▶ core (pure)
//!                                                   └▶ adapters (ChainAdapter)
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod chains;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod doctor;
pub mod feed;
pub mod files;
pub mod input;
#[cfg(feature = "pkcs11")]
pub mod keys;
pub mod progress;
pub mod report;
pub mod simnet;
pub mod simulate;
pub mod treasury_cmd;

pub use softstake_orchestrator::{clock, lease, treasury, OrchestratorError};
