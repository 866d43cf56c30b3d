//! # softstake-localchains
//!
//! Local chains of our own for the chains whose real node cannot be installed here: each
//! speaks the chain's real wire protocol (its RPC methods, encodings and error shapes),
//! verifies what an adapter sends (signature, nonce, expiry, balance) and keeps the
//! chain's staking rules over a clock the tests control. `near`: NEAR JSON-RPC and the
//! reference staking pool; `tron`: java-tron's HTTP API, TronGrid's history and Stake 2.0.
//!
//! ```text
//!  test ─▶ start(genesis) ─▶ 127.0.0.1:<port>  ◀── real adapter (its own RPC client)
//!        └▶ fast_forward / advance_epochs / advance_secs (the clock)
//! ```
#![deny(missing_docs)]

#[cfg(feature = "near")]
pub mod near;
#[cfg(feature = "tron")]
pub mod tron;
