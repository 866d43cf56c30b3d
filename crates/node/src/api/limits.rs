//! Request limits in front of the APIs, from well-kept crates: `governor` (GCRA) for
//! weight-based rate limits, `tower`/`tower-http` for timeouts, concurrency and body
//! limits.
//!
//! ```text
//!  REST  ─▶ timeout ─▶ concurrency ─▶ body limit ─▶ per-IP weight (before any DB lookup)
//!          ─▶ verify key + signature ─▶ per-API-key weight ─▶ handler (store reads only)
//!          every answer carries X-MBX-USED-WEIGHT-1M; over the limit: 429, code -1003
//!  gRPC  ─▶ timeout, concurrency (per connection and global), message size
//!          ─▶ auth (bearer → roles) ─▶ per-client calls/s: RESOURCE_EXHAUSTED
//! ```
//!
//! Weights are Binance's: every soft-staking endpoint costs 50 of the IP's weight
//! (<https://developers.binance.com/docs/staking/soft-staking>), against 12 000 per
//! minute per IP, and the UID limit of 180 000 per minute applies per API key.

use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;

/// The header Binance reports the IP's used weight in, over the last minute.
pub const USED_WEIGHT_HEADER: &str = "x-mbx-used-weight-1m";

/// Weight of a REST path (Binance's: 50 for each soft-staking endpoint, 1 otherwise).
pub fn rest_weight(path: &str) -> u32 {
    if path.starts_with("/sapi/v1/soft-staking/") {
        50
    } else {
        1
    }
}

/// A keyed weight budget per minute (GCRA: the budget refills continuously).
#[derive(Debug)]
pub struct WeightLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K, StateInformationMiddleware>,
    per_minute: u32,
}

/// A charge refused: the budget and when it allows the charge again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    /// The budget per minute.
    pub per_minute: u32,
    /// Seconds until the charge would pass (at least 1).
    pub retry_after_secs: u64,
}

impl<K: Hash + Eq + Clone> WeightLimiter<K> {
    /// A budget of `per_minute` weight per key (at least 1).
    pub fn new(per_minute: u32) -> WeightLimiter<K> {
        let per_minute = per_minute.max(1);
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        WeightLimiter {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            per_minute,
        }
    }

    /// Charges `weight` to `key`: the weight used over the last minute after the charge,
    /// or [`OverLimit`] (nothing charged).
    pub fn charge(&self, key: &K, weight: u32) -> Result<u32, OverLimit> {
        let n = NonZeroU32::new(weight.max(1)).unwrap_or(NonZeroU32::MIN);
        let over = |secs: u64| OverLimit {
            per_minute: self.per_minute,
            retry_after_secs: secs.max(1),
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(state)) => Ok(self.per_minute.saturating_sub(state.remaining_burst_capacity())),
            Ok(Err(not_until)) => Err(over(
                not_until.wait_time_from(DefaultClock::default().now()).as_secs() + 1,
            )),
            Err(_) => Err(over(60)),
        }
    }

    /// Forgets keys whose budget is full again (bounds the map; called periodically).
    pub fn retain_recent(&self) {
        self.limiter.retain_recent();
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// The REST API's rate limits: weight per IP (checked before anything else) and per API
/// key (checked once the key is known).
#[derive(Debug)]
pub struct RestLimits {
    /// Per client IP.
    pub ip: WeightLimiter<IpAddr>,
    /// Per API key (`X-MBX-APIKEY`), charged after the key is verified.
    pub key: WeightLimiter<String>,
}

impl RestLimits {
    /// From `[service.limits]`.
    pub fn new(cfg: &LimitsConfig) -> RestLimits {
        RestLimits {
            ip: WeightLimiter::new(cfg.rest_ip_weight_per_min),
            key: WeightLimiter::new(cfg.rest_key_weight_per_min),
        }
    }
}

/// Binance's answer over a limit: HTTP 429, code -1003, `Retry-After`.
pub fn too_many(over: OverLimit) -> Response {
    let mut r = super::binance::ApiError::weight_exceeded(over.per_minute, "").into_response();
    if let Ok(v) = HeaderValue::from_str(&over.retry_after_secs.to_string()) {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    r
}

/// The per-IP weight check, as axum middleware: charges the path's weight to the client's
/// IP before any work, and reports the IP's used weight on every answer.
pub async fn rest_ip_limit(State(limits): State<Arc<RestLimits>>, req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let weight = rest_weight(req.uri().path());
    let (mut resp, used) = match limits.ip.charge(&ip, weight) {
        Ok(used) => (next.run(req).await, used),
        Err(over) => (too_many(over), over.per_minute),
    };
    if let Ok(v) = HeaderValue::from_str(&used.to_string()) {
        resp.headers_mut().insert(USED_WEIGHT_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_weight_budget_per_key() {
        let l = WeightLimiter::<u8>::new(120);
        assert_eq!(l.charge(&1, 50).unwrap(), 50);
        assert_eq!(l.charge(&1, 50).unwrap(), 100);
        let over = l.charge(&1, 50).unwrap_err();
        assert_eq!(over.per_minute, 120);
        assert!((1..=61).contains(&over.retry_after_secs), "{over:?}");
        assert_eq!(l.charge(&2, 50).unwrap(), 50, "another key has its own budget");
        assert!(l.charge(&3, 500).is_err(), "more than the whole budget never passes");
        assert!(l.len() >= 2 && !l.is_empty());
    }

    #[test]
    fn success_binance_weights() {
        assert_eq!(rest_weight("/sapi/v1/soft-staking/list"), 50);
        assert_eq!(rest_weight("/sapi/v1/soft-staking/history/rewardsRecord"), 50);
        assert_eq!(rest_weight("/other"), 1);
    }
}
