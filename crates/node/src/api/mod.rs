//! The service's APIs: gRPC (tonic) with bearer-token roles, the Binance-compatible REST
//! API (axum), and Prometheus metrics with health endpoints.
//!
//! ```text
//!  gRPC :50051  ─▶ AuthLayer (bearer → roles per method) ─▶ Accounts, Balances, Rewards,
//!                                                           Treasury, Admin; health, reflection
//!  REST :8080   ─▶ X-MBX-APIKEY + HMAC-SHA256 signature + recvWindow ─▶ /sapi/v1/soft-staking/*
//!  HTTP :9100   ─▶ /metrics (Prometheus), /healthz, /readyz
//! ```

pub mod auth;
pub mod binance;
pub mod grpc;
pub mod limits;
pub mod metrics;
pub mod redact;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use softstake_core::Timestamp;
use softstake_store::Store;

use crate::chains::Chains;
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::NetworkConfig;

/// Code generated from `proto/softstake/v1/softstake.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unreachable_pub)]
pub mod pb {
    tonic::include_proto!("softstake.v1");

    /// The encoded descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("softstake_descriptor");
}

/// The daemon's clock: the wall clock, or a manual one moved through `Admin.SetClock`.
#[derive(Debug, Clone)]
pub enum DaemonClock {
    /// The system's clock.
    System(SystemClock),
    /// Moved only by `Admin.SetClock` (tests, drills).
    Manual(ManualClock),
}

impl Clock for DaemonClock {
    fn now(&self) -> Timestamp {
        match self {
            DaemonClock::System(c) => c.now(),
            DaemonClock::Manual(c) => c.now(),
        }
    }
}

/// What every API handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// The validated configuration.
    pub cfg: Arc<NetworkConfig>,
    /// The daemon's clock.
    pub clock: DaemonClock,
    /// The chains.
    pub chains: Arc<Chains>,
    /// True once the daemon has recovered its journal and serves.
    pub ready: Arc<AtomicBool>,
}
