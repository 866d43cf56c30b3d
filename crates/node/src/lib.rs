//! # softstake-node
//!
//! The `softstake` binary's library: CLI commands, configuration, CSV inputs, reports,
//! the treasury loop and the demo. Errors inside are `anyhow` (this is the application
//! layer); the domain, the adapters and the store keep typed errors.
//!
//! ```text
//!  CLI (clap) ─▶ config (validated, then resolved) ─▶ store (sqlx) ─▶ core (pure)
//!                                                   └▶ adapters (ChainAdapter)
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod chains;
pub mod clock;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod feed;
pub mod files;
pub mod input;
pub mod lease;
pub mod progress;
pub mod report;
pub mod treasury;
pub mod treasury_cmd;
