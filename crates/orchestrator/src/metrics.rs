//! The scheduler's metrics, through the `metrics` facade (a no-op until a recorder is
//! installed: `softstake run` installs the Prometheus exporter; the simulator none).
//!
//! Gauges are in token units as `f64`: metrics are for dashboards and alerting; the
//! ledger, in integer base units, stays the source of truth.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use rust_decimal::prelude::ToPrimitive;

use softstake_core::plan::TreasuryPlan;
use softstake_core::{Amount, TokenConfig};

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

/// Records one scheduler cycle (every token's step) and how long it took:
/// `softstake_scheduler_cycles_total`, `softstake_scheduler_cycle_seconds`.
pub fn record_cycle(elapsed: Duration) {
    counter!("softstake_scheduler_cycles_total").increment(1);
    histogram!("softstake_scheduler_cycle_seconds").record(elapsed.as_secs_f64());
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
