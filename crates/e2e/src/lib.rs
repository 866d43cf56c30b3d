//! # softstake-e2e
//!
//! End-to-end tests against real local nodes. Each node family sits behind a feature
//! (`solana-validator`: an in-process `solana-test-validator`), and every test starts the
//! node it needs itself. This library holds the shared harness.
#![deny(missing_docs)]
