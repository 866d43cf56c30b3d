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

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rust_decimal::prelude::ToPrimitive;

use softstake_adapters::{AdapterError, CallObserver};
use softstake_core::plan::TreasuryPlan;
use softstake_core::{Amount, TokenConfig};

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

/// Token units as `f64`, for gauges only.
pub fn units(t: &TokenConfig, a: Amount) -> f64 {
    t.format_amount(a).parse::<f64>().unwrap_or(f64::NAN)
}

fn signed_units(t: &TokenConfig, v: i128) -> f64 {
    let u = units(t, Amount(v.unsigned_abs()));
    if v < 0 {
        -u
    } else {
        u
    }
}

/// Records a token's treasury gauges from its current plan.
pub fn record_plan(t: &TokenConfig, p: &TreasuryPlan) {
    let token = t.symbol.clone();
    gauge!("softstake_pool_custodial", "token" => token.clone()).set(units(t, p.custodial_total));
    gauge!("softstake_pool_eligible", "token" => token.clone()).set(units(t, p.total_eligible));
    for (state, a) in [
        ("activating", p.totals.activating),
        ("active", p.totals.active),
        ("deactivating", p.totals.deactivating),
        ("withdrawable", p.totals.withdrawable),
    ] {
        gauge!("softstake_staked", "token" => token.clone(), "state" => state).set(units(t, a));
    }
    let liquid = signed_units(t, p.forecast.available_now);
    let pool = units(t, p.custodial_total);
    gauge!("softstake_buffer_ratio", "token" => token).set(if pool > 0.0 { liquid / pool } else { 0.0 });
}

/// Records the latest APR.
pub fn record_apr(token: &str, apr: rust_decimal::Decimal) {
    gauge!("softstake_apr", "token" => token.to_string()).set(apr.to_f64().unwrap_or(0.0));
}

/// Records the largest absolute drift, token units.
pub fn record_drift(t: &TokenConfig, largest: i128) {
    gauge!("softstake_drift", "token" => t.symbol.clone()).set(signed_units(t, largest).abs());
}

/// Records journal counts by state.
pub fn record_operations(token: &str, counts: &std::collections::BTreeMap<String, u64>) {
    for state in ["intent", "submitted", "confirmed", "failed", "reconciled"] {
        let n = counts.get(state).copied().unwrap_or(0);
        gauge!("softstake_operations", "token" => token.to_string(), "state" => state).set(n as f64);
    }
}

/// Records whether this instance leads a token.
pub fn record_leader(token: &str, leader: bool) {
    gauge!("softstake_leader", "token" => token.to_string()).set(if leader { 1.0 } else { 0.0 });
}

/// Records a day close's duration.
pub fn record_day_close(token: &str, d: Duration) {
    histogram!("softstake_day_close_seconds", "token" => token.to_string()).record(d.as_secs_f64());
}

/// Records whether a day's payout is late.
pub fn record_distribution_late(token: &str, late: bool) {
    gauge!("softstake_distribution_late", "token" => token.to_string()).set(if late { 1.0 } else { 0.0 });
}

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
