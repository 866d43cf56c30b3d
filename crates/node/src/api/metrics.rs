//! Prometheus metrics (the `metrics` facade with the Prometheus exporter) and the health
//! endpoints.
//!
//! Gauges are in token units as `f64`: metrics are for dashboards and alerting; the
//! ledger, in integer base units, stays the source of truth.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `softstake_pool_custodial` | token | custodial total P |
//! | `softstake_pool_eligible` | token | Σe of the last closed day |
//! | `softstake_staked` | token, state | stake by state (activating, active, deactivating, withdrawable) |
//! | `softstake_buffer_ratio` | token | liquid now / P |
//! | `softstake_apr` | token | the latest published APR |
//! | `softstake_drift` | token | largest absolute ledger-vs-chain drift of a validator |
//! | `softstake_operations` | token, state | journal operations by state |
//! | `softstake_leader` | token | 1 while this instance holds the token's lease |
//! | `softstake_rpc_latency_seconds` | chain, token, method | chain call latency (histogram) |
//! | `softstake_rpc_errors_total` | chain, token, method, kind | chain call errors |
//! | `softstake_day_close_seconds` | token | day close duration (histogram) |
//! | `softstake_distribution_late` | token | 1 when a day is not paid by 08:00 UTC |
//! | `softstake_scheduler_cycles_total` | | scheduler cycles run (the daemon's pace) |
//! | `softstake_scheduler_cycle_seconds` | | one cycle's duration (histogram) |

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics::{counter, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use softstake_adapters::{AdapterError, CallObserver};

use super::AppState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
        ])?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// `/metrics`, `/healthz` (the process answers) and `/readyz` (journal recovered, store
/// reachable).
pub fn router(state: AppState, handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(move || std::future::ready(handle.render())))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if !state.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "recovering");
    }
    match state.store.ping().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unreachable"),
    }
}

pub use softstake_orchestrator::metrics::*;

/// Feeds chain-call latency and errors into Prometheus.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrometheusObserver;

impl CallObserver for PrometheusObserver {
    fn observe(&self, chain: &str, token: &str, method: &str, elapsed: Duration, error: Option<&AdapterError>) {
        let labels = [
            ("chain", chain.to_string()),
            ("token", token.to_string()),
            ("method", method.to_string()),
        ];
        histogram!("softstake_rpc_latency_seconds", &labels).record(elapsed.as_secs_f64());
        if let Some(e) = error {
            let kind = match e {
                AdapterError::Transient { .. } => "transient",
                AdapterError::Rejected { .. } => "rejected",
                AdapterError::InsufficientFunds { .. } => "insufficient_funds",
                AdapterError::BadInput { .. } => "bad_input",
                AdapterError::BadResponse { .. } => "bad_response",
                AdapterError::Signer(_) => "signer",
            };
            counter!("softstake_rpc_errors_total", "chain" => chain.to_string(), "token" => token.to_string(), "method" => method.to_string(), "kind" => kind)
                .increment(1);
        }
    }
}
