//! # softstake-e2e
//!
//! End-to-end tests against real local nodes. Each node family sits behind a feature
//! (`solana-validator`: an in-process `solana-test-validator`; `evm-anvil`: anvil with our
//! Solidity stand-ins of the staking contracts), and every test starts the
//! node it needs itself. This library holds the shared harness.
#![deny(missing_docs)]

#[cfg(feature = "evm-anvil")]
pub mod evm;
