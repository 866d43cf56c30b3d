//! # softstake-adapters
//!
//! One [`ChainAdapter`] trait that every chain implements, the [`Guarded`] wrapper that
//! rate limits, retries and traces every call, the [`Signer`] trait, and one module per
//! chain family behind a cargo feature (`sim`: the simulated chain; `solana`: stake
//! accounts through solana-client 3.1; `evm`: BNB, S, POL, AXS and APE through alloy;
//! `near`: staking-pool calls through nearcore's crates; `tron`: Stake 2.0 over java-tron's
//! HTTP API; `cosmos`: x/staking and x/distribution through cosmrs, gRPC and CometBFT; `cardano`:
//! stake keys and pool delegation certificates through pallas and Blockfrost; `sui`, `iota`: the
//! Move staking system over gRPC (`move_staking` holds what they share); `aptos`: delegation
//! pools over REST; `multiversx`: EGLD delegation contracts over the gateway's REST API; `algorand`:
//! our own accounts going online with participation keys (algonaut, algod and indexer REST); `pkcs11`:
//! treasury keys in an HSM through cryptoki).
//!
//! ```text
//!  treasury (journal) ─▶ Guarded<A> ─▶ A: ChainAdapter ─▶ chain RPC
//!                        governor, backon,    sim | solana | bsc | near | tron | cosmos | cardano | …
//!                        tracing, observer
//! ```
//!
//! Errors are typed ([`AdapterError`]): transient (retried), rejected by the chain with
//! its reason, insufficient funds, bad input, bad response (garbage from the chain).
#![deny(missing_docs)]

#[cfg(feature = "algorand")]
pub mod algorand;
#[cfg(feature = "aptos")]
pub mod aptos;
#[cfg(feature = "cardano")]
pub mod cardano;
#[cfg(feature = "cosmos")]
pub mod cosmos;
#[cfg(any(
    feature = "near",
    feature = "cardano",
    feature = "sui",
    feature = "aptos",
    feature = "iota",
    feature = "multiversx",
    feature = "algorand",
    feature = "ton"
))]
pub mod ed25519;
pub mod error;
#[cfg(feature = "evm")]
pub mod evm;
pub mod guard;
#[cfg(feature = "iota")]
pub mod iota;
#[cfg(any(feature = "sui", feature = "iota"))]
pub mod move_staking;
#[cfg(feature = "multiversx")]
pub mod multiversx;
#[cfg(feature = "near")]
pub mod near;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
pub mod preflight;
#[cfg(any(feature = "evm", feature = "tron"))]
pub mod secp256k1;
pub mod signer;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(feature = "solana")]
pub mod solana;
#[cfg(feature = "sui")]
pub mod sui;
#[cfg(feature = "ton")]
pub mod ton;
pub mod traits;
#[cfg(feature = "tron")]
pub mod tron;

pub use error::{AdapterError, Result};
pub use guard::{CallObserver, GuardConfig, Guarded};
pub use signer::{KeySource, SecretBytes, Signer, SimSigner, TreasuryKey};
pub use traits::{ChainAdapter, OperationRequest, RewardKind, RewardRecord, RewardsPage, SignedTx, TxStatus};
