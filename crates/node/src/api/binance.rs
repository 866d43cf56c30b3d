//! The Binance-compatible soft-staking REST API: the three user endpoints with Binance's
//! paths, parameters, JSON shapes, signature scheme and error codes, so exchanges and
//! their users keep their clients (tested with the official `binance-sdk-staking`).
//!
//! ```text
//!  GET /sapi/v1/soft-staking/list                   product list (per token, for this account)
//!  GET /sapi/v1/soft-staking/set?softStaking=…      the one-click activation (idempotent)
//!  GET /sapi/v1/soft-staking/history/rewardsRecord  the account's rewards, paid time window
//! ```
//!
//! Authentication (Binance's `USER_DATA` security type): `X-MBX-APIKEY` names the key;
//! `signature` is HMAC-SHA256, hex, over the query string without it; `timestamp` (ms,
//! checked on the wall clock) must satisfy `timestamp < now + 1000` and `now − timestamp ≤ recvWindow` (default
//! 5 000 ms, at most 60 000). Errors are `{"code": …, "msg": …}`: -2015 (HTTP 401) bad
//! key, -1022 bad signature, -1021 outside the recvWindow, -1102 missing parameter,
//! -1100/-1101 malformed or duplicated parameter, -1127 window too long (HTTP 400). The
//! signature is checked in constant time (`Mac::verify_slice`). A signed URL is accepted
//! once: the [`ReplayGuard`] refuses it again within its window (-1022), so a client
//! retrying signs again with a new `timestamp`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tracing::warn;

use softstake_core::{Amount, Timestamp};
use softstake_store::ApiKey;

use super::limits::{rest_weight, RestLimits};
use super::AppState;
use crate::clock::Clock;

/// Default `recvWindow`, ms.
pub const DEFAULT_RECV_WINDOW_MS: i64 = 5_000;
/// Largest `recvWindow`, ms.
pub const MAX_RECV_WINDOW_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// A Binance API error: HTTP status, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Binance error code.
    pub code: i32,
    /// Message.
    pub msg: String,
}

impl ApiError {
    fn bad(code: i32, msg: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            msg: msg.into(),
        }
    }
    fn missing(param: &str) -> ApiError {
        ApiError::bad(
            -1102,
            format!("Mandatory parameter '{param}' was not sent, was empty/null, or malformed."),
        )
    }
    fn illegal(param: &str) -> ApiError {
        ApiError::bad(
            -1100,
            format!("Illegal characters found in parameter '{param}'; legal range is '^[0-9]{{1,20}}$'."),
        )
    }
    fn key() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: -2015,
            msg: "Invalid API-key, IP, or permissions for action.".into(),
        }
    }
    /// Binance's -1003 (HTTP 429) for a weight budget of `per_minute` used up; `scope`
    /// names the budget (empty for the IP's, as Binance words it).
    pub(crate) fn weight_exceeded(per_minute: u32, scope: &str) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: -1003,
            msg: format!(
                "Too much request weight used; current limit is {per_minute} request weight per 1 MINUTE{scope}. Please use the websocket for live updates to avoid polling the API."
            ),
        }
    }
    fn too_many() -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: -1003,
            msg: "Too many requests; please use the websocket for live updates or retry later.".into(),
        }
    }
    fn internal(e: impl std::fmt::Display) -> ApiError {
        let id = super::redact::request_id();
        warn!(request_id = %id, error = %super::redact::redact_urls(&e.to_string()), "REST request failed");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: -1000,
            msg: format!("An unknown error occurred while processing the request. (request id {id})"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "code": self.code, "msg": self.msg }))).into_response()
    }
}

/// The routes, with a fresh [`ReplayGuard`] (unless `service.rest_replay_guard` is off)
/// and the limits of `[service.limits]` ([`super::limits`]): the outermost layer is the
/// request timeout, then the concurrency limit, the body limit and the per-IP weight;
/// the per-key weight is charged once the key is verified. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the per-IP limit sees the
/// client's address.
pub fn router(state: AppState) -> Router {
    let cfg = &state.cfg.service.limits;
    let limits = Arc::new(RestLimits::new(cfg));
    spawn_limit_cleanup(&limits);
    Router::new()
        .route("/sapi/v1/soft-staking/list", get(list))
        .route("/sapi/v1/soft-staking/set", get(set))
        .route("/sapi/v1/soft-staking/history/rewardsRecord", get(rewards_record))
        .layer(Extension(Arc::new(if state.cfg.service.rest_replay_guard {
            ReplayGuard::new(REPLAY_GUARD_MAX_ENTRIES)
        } else {
            ReplayGuard::new(0)
        })))
        .layer(Extension(limits.clone()))
        .layer(axum::middleware::from_fn_with_state(
            limits,
            super::limits::rest_ip_limit,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(cfg.max_request_bytes))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            cfg.max_concurrent_requests,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_millis(cfg.request_timeout_ms),
        ))
        .with_state(state)
}

/// Forgets idle rate-limit keys every minute, so the maps stay bounded by the clients
/// active in the last minute. Needs a Tokio runtime; without one nothing is spawned.
fn spawn_limit_cleanup(limits: &Arc<RestLimits>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = Arc::downgrade(limits);
    rt.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
        loop {
            every.tick().await;
            let Some(l) = weak.upgrade() else { break };
            l.ip.retain_recent();
            l.key.retain_recent();
        }
    });
}

/// Most signatures the replay guard remembers at once (about 200 bytes each); beyond it,
/// requests are refused with -1003 until entries expire.
pub const REPLAY_GUARD_MAX_ENTRIES: usize = 200_000;

/// Refuses a signed request seen before within its `recvWindow`: a captured
/// `set?softStaking=false` replayed later would otherwise switch an account off again.
/// Remembers `(API key, signature)` until the request's timestamp leaves its window, at
/// most `max_entries` of them. A client retrying must sign again (a new `timestamp`).
#[derive(Debug)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<(String, String), i64>>,
    max_entries: usize,
}

impl ReplayGuard {
    /// An empty guard holding at most `max_entries` signatures; 0 turns it off
    /// (`service.rest_replay_guard = false`).
    pub fn new(max_entries: usize) -> ReplayGuard {
        ReplayGuard {
            seen: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// Records `(key, signature)` valid until `expires_ms` (Unix ms) at `now_ms`.
    ///
    /// # Errors
    /// -1022 when it was seen and has not expired; -1003 when the guard is full of
    /// unexpired entries.
    pub fn admit(&self, key: &str, signature: &str, expires_ms: i64, now_ms: i64) -> Result<(), ApiError> {
        if self.max_entries == 0 {
            return Ok(());
        }
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let id = (key.to_string(), signature.to_ascii_lowercase());
        if seen.get(&id).is_some_and(|e| *e >= now_ms) {
            return Err(ApiError::bad(
                -1022,
                "Signature for this request was already used: sign the retry with a new timestamp.",
            ));
        }
        if seen.len() >= self.max_entries {
            seen.retain(|_, e| *e >= now_ms);
            if seen.len() >= self.max_entries {
                return Err(ApiError::too_many());
            }
        }
        seen.insert(id, expires_ms);
        Ok(())
    }
}

/// A verified request: the key's account and the query parameters.
struct Signed {
    account_id: String,
    params: HashMap<String, String>,
}

/// Removes `signature=…` from a raw query string, keeping the rest byte for byte.
fn without_signature(raw: &str) -> (String, Option<String>) {
    let mut kept = Vec::new();
    let mut sig = None;
    for part in raw.split('&') {
        match part.strip_prefix("signature=") {
            Some(v) => sig = Some(v.to_string()),
            None if !part.is_empty() => kept.push(part),
            None => {}
        }
    }
    (kept.join("&"), sig)
}

fn mac(secret: &str, payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(payload.as_bytes());
    mac
}

/// HMAC-SHA256 of `payload` with `secret`, lower-case hex.
pub fn sign(secret: &str, payload: &str) -> String {
    hex::encode(mac(secret, payload).finalize().into_bytes())
}

/// Checks a hex `signature` of `payload` in constant time (`Mac::verify_slice`); either
/// hex case is accepted, as Binance does.
pub fn verify_signature(secret: &str, payload: &str, signature: &str) -> bool {
    match hex::decode(signature) {
        Ok(bytes) => mac(secret, payload).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// The query's parameters; a name given twice is refused with -1101, as Binance does.
fn parse_params(raw: &str) -> Result<HashMap<String, String>, ApiError> {
    let mut params = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()).into_owned() {
        if params.contains_key(&k) {
            return Err(ApiError::bad(
                -1101,
                format!("Duplicate values for a parameter detected: '{k}'."),
            ));
        }
        params.insert(k, v);
    }
    Ok(params)
}

fn int_param(params: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    match params.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) if v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) => {
            v.parse().map(Some).map_err(|_| ApiError::illegal(name))
        }
        Some(_) => Err(ApiError::illegal(name)),
    }
}

/// The parts of a signed query [`check_signed_query`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedQuery {
    /// The parameters (each name once).
    pub params: HashMap<String, String>,
    /// The hex signature.
    pub signature: String,
    /// `timestamp`, Unix milliseconds.
    pub timestamp: i64,
    /// `recvWindow`, milliseconds (default 5 000, at most 60 000).
    pub window: i64,
}

/// The checks of a signed request that need no store: the raw query string `raw`
/// (untrusted client input, fuzzed by `fuzz/fuzz_targets/rest_query.rs`) parsed with each
/// parameter once (-1101), `signature` and `timestamp` present (-1102), numbers in bounds
/// (-1100, -1131), fresh against `now_ms` within its window (-1021), and the HMAC-SHA256
/// of the query without its signature equal to `signature` under `secret` (-1022,
/// constant time).
///
/// # Errors
/// The [`ApiError`] Binance answers, as listed.
pub fn check_signed_query(raw: &str, secret: &str, now_ms: i64) -> Result<CheckedQuery, ApiError> {
    let (payload, signature) = without_signature(raw);
    let params = parse_params(raw)?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::missing("signature"))?;
    let timestamp = int_param(&params, "timestamp")?.ok_or_else(|| ApiError::missing("timestamp"))?;
    let window = int_param(&params, "recvWindow")?.unwrap_or(DEFAULT_RECV_WINDOW_MS);
    if window > MAX_RECV_WINDOW_MS {
        return Err(ApiError::bad(-1131, "recvWindow must be less than 60000."));
    }
    if timestamp >= now_ms.saturating_add(1_000) {
        return Err(ApiError::bad(
            -1021,
            "Timestamp for this request was 1000ms ahead of the server's time.",
        ));
    }
    if now_ms.saturating_sub(timestamp) > window {
        return Err(ApiError::bad(
            -1021,
            "Timestamp for this request is outside of the recvWindow.",
        ));
    }
    if !verify_signature(secret, &payload, &signature) {
        return Err(ApiError::bad(-1022, "Signature for this request is not valid."));
    }
    Ok(CheckedQuery {
        params,
        signature,
        timestamp,
        window,
    })
}

async fn verify(
    state: &AppState,
    guard: &ReplayGuard,
    limits: &RestLimits,
    path: &str,
    headers: &HeaderMap,
    raw: Option<String>,
) -> Result<Signed, ApiError> {
    let raw = raw.unwrap_or_default();
    let key_name = headers
        .get("X-MBX-APIKEY")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(ApiError::key)?;
    let key: ApiKey = state
        .store
        .api_key(key_name)
        .await
        .map_err(ApiError::internal)?
        .filter(|k| k.usable_at(crate::clock::SystemClock.now()))
        .ok_or_else(ApiError::key)?;
    // Freshness guards the transport, so it is checked on the wall clock even when the
    // daemon's business clock is manual; business time (activation, windows) uses the
    // daemon clock.
    let now_ms = crate::clock::SystemClock.now().unix_millis();
    let CheckedQuery {
        params,
        signature,
        timestamp,
        window,
    } = check_signed_query(&raw, &key.secret, now_ms)?;
    limits
        .key
        .charge(&key.api_key, rest_weight(path))
        .map_err(|over| ApiError::weight_exceeded(over.per_minute, " for this API key"))?;
    guard.admit(key_name, &signature, timestamp.saturating_add(window), now_ms)?;
    Ok(Signed {
        account_id: key.account_id,
        params,
    })
}

fn paging(params: &HashMap<String, String>) -> Result<(u32, u32), ApiError> {
    let current = int_param(params, "current")?.unwrap_or(1);
    let size = int_param(params, "size")?.unwrap_or(10);
    if current < 1 {
        return Err(ApiError::bad(
            -1101,
            "Illegal value for parameter 'current': it starts at 1.",
        ));
    }
    if !(1..=100).contains(&size) {
        return Err(ApiError::bad(-1101, "Illegal value for parameter 'size': 1 to 100."));
    }
    let current = u32::try_from(current)
        .ok()
        .filter(|c| (c - 1).checked_mul(size as u32).is_some())
        .ok_or_else(|| {
            ApiError::bad(
                -1101,
                "Illegal value for parameter 'current': the page is beyond any result.",
            )
        })?;
    Ok((current, size as u32))
}

/// The row offset of page `current` (from 1) of `size` rows; [`paging`] checked it fits.
fn offset(current: u32, size: u32) -> u32 {
    (current - 1).saturating_mul(size)
}

fn asset(state: &AppState, params: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match params.get("asset").map(|a| a.trim().to_uppercase()) {
        None => Ok(None),
        Some(a) if a.is_empty() => Ok(None),
        Some(a) if state.cfg.registry.get(&a).is_ok() => Ok(Some(a)),
        Some(a) => Err(ApiError::bad(-1121, format!("Invalid asset {a}."))),
    }
}

async fn list(
    State(state): State<AppState>,
    Extension(guard): Extension<Arc<ReplayGuard>>,
    Extension(limits): Extension<Arc<RestLimits>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let req = verify(&state, &guard, &limits, uri.path(), &headers, q).await?;
    let (current, size) = paging(&req.params)?;
    let only = asset(&state, &req.params)?;
    let account = state.store.account(&req.account_id).await.map_err(ApiError::internal)?;
    let active = account.as_ref().is_some_and(|a| a.deactivated_at.is_none());
    let aprs = state.store.latest_apr().await.map_err(ApiError::internal)?;
    let prices = softstake_adapters::sim::data::usd_prices().ok();
    let mut rows = Vec::new();
    let mut total_usdt = Amount::ZERO; // 10^-8 USDT
    for t in state
        .cfg
        .registry
        .iter()
        .filter(|t| state.cfg.chains.contains_key(&t.symbol))
    {
        if only.as_ref().is_some_and(|a| a != &t.symbol) {
            continue;
        }
        let profit = state
            .store
            .total_paid(&req.account_id, &t.symbol)
            .await
            .map_err(ApiError::internal)?;
        let staked = state
            .store
            .latest_eligible(&req.account_id, &t.symbol)
            .await
            .map_err(ApiError::internal)?;
        if let Some((num, den)) = prices.and_then(|p| p.get(&t.symbol)) {
            let usdt = softstake_core::amount::mul_div_floor(
                profit.0,
                num.saturating_mul(100_000_000),
                den.saturating_mul(10u128.pow(u32::from(t.decimals))),
                "usdt",
            )
            .unwrap_or(0);
            total_usdt = total_usdt.checked_add(Amount(usdt), "usdt").unwrap_or(total_usdt);
        }
        rows.push(json!({
            "asset": t.symbol,
            "minAmount": t.format_amount(t.min_holding),
            "maxCap": t.format_amount(t.cap),
            "apr": aprs.iter().find(|a| a.token == t.symbol).and_then(|a| a.apr).map(|a| a.to_string()).unwrap_or_else(|| "0".into()),
            "stakedAmount": t.format_amount(staked),
            "totalProfit": t.format_amount(profit),
        }));
    }
    let total = rows.len();
    let page: Vec<Value> = rows
        .into_iter()
        .skip(offset(current, size) as usize)
        .take(size as usize)
        .collect();
    Ok(Json(json!({
        "status": active,
        "totalRewardsUsdt": total_usdt.to_units_string(8),
        "rows": page,
        "total": total,
    })))
}

async fn set(
    State(state): State<AppState>,
    Extension(guard): Extension<Arc<ReplayGuard>>,
    Extension(limits): Extension<Arc<RestLimits>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let req = verify(&state, &guard, &limits, uri.path(), &headers, q).await?;
    let on = match req.params.get("softStaking").map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(_) => {
            return Err(ApiError::bad(
                -1101,
                "Illegal value for parameter 'softStaking': true or false.",
            ))
        }
        None => return Err(ApiError::missing("softStaking")),
    };
    let now = state.clock.now();
    let result = if on {
        state.store.activate(&req.account_id, None, now).await.map(|_| ())
    } else {
        state.store.deactivate(&req.account_id, now).await.map(|_| ())
    };
    result.map_err(ApiError::internal)?;
    Ok(Json(json!({ "success": true })))
}

async fn rewards_record(
    State(state): State<AppState>,
    Extension(guard): Extension<Arc<ReplayGuard>>,
    Extension(limits): Extension<Arc<RestLimits>>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let req = verify(&state, &guard, &limits, uri.path(), &headers, q).await?;
    let (current, size) = paging(&req.params)?;
    let only = asset(&state, &req.params)?;
    let now = state.clock.now().unix_millis();
    let (start, end) = match (int_param(&req.params, "startTime")?, int_param(&req.params, "endTime")?) {
        (None, None) => (now - 30 * DAY_MS, now),
        (Some(s), None) => (
            s,
            s.checked_add(30 * DAY_MS)
                .ok_or_else(|| ApiError::illegal("startTime"))?,
        ),
        (None, Some(e)) => (e - 30 * DAY_MS, e),
        (Some(s), Some(e)) => (s, e),
    };
    if end < start {
        return Err(ApiError::bad(-1101, "startTime must not be after endTime."));
    }
    if end - start > 90 * DAY_MS {
        return Err(ApiError::bad(
            -1127,
            "More than 3 months between startTime and endTime.",
        ));
    }
    let to_ts = |ms: i64| Timestamp::from_unix_millis(ms).map_err(|_| ApiError::illegal("startTime"));
    let (rows, total) = state
        .store
        .rewards_record(
            &req.account_id,
            only.as_deref(),
            to_ts(start)?,
            to_ts(end)?,
            size,
            offset(current, size),
        )
        .await
        .map_err(ApiError::internal)?;
    let reg = &state.cfg.registry;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let fmt = |a: Amount| {
                reg.get(&r.token)
                    .map(|t| t.format_amount(a))
                    .unwrap_or_else(|_| a.to_string())
            };
            json!({
                "asset": r.token,
                "rewards": fmt(r.reward),
                "rewardAsset": r.token,
                "avgAmount": fmt(r.average),
                "time": r.paid_at.unix_millis(),
            })
        })
        .collect();
    Ok(Json(json!({ "rows": rows, "total": total })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_signature_over_query_without_signature() {
        // The example in Binance's "SIGNED endpoint" documentation.
        let secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j";
        let q = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559";
        assert_eq!(
            sign(secret, q),
            "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
        );
        let (payload, sig) = without_signature(&format!("{q}&signature=abc"));
        assert_eq!((payload.as_str(), sig.as_deref()), (q, Some("abc")));
        let good = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71";
        assert!(verify_signature(secret, q, good));
        assert!(verify_signature(secret, q, &good.to_uppercase()), "either hex case");
        assert!(!verify_signature(secret, q, &good.replace("c8", "c9")));
        assert!(!verify_signature(secret, q, "not hex"));
        assert!(!verify_signature(secret, q, &good[..62]), "a prefix is not a signature");
    }

    #[test]
    fn fail_duplicate_parameter() {
        let e = parse_params("asset=SOL&timestamp=1&asset=NEAR").unwrap_err();
        assert_eq!((e.code, e.status), (-1101, StatusCode::BAD_REQUEST));
        assert!(e.msg.contains("'asset'"), "{}", e.msg);
        assert_eq!(parse_params("a=1&b=2").unwrap().len(), 2);
    }

    #[test]
    fn fail_paging_beyond_u32_offset() {
        let p = |q: &str| parse_params(q).and_then(|p| paging(&p));
        assert_eq!(p("current=3&size=100").unwrap(), (3, 100));
        assert_eq!(offset(3, 100), 200);
        for q in [
            "current=99999999999999999999",
            "current=4294967295&size=100",
            "current=0",
            "size=101",
        ] {
            assert!(p(q).is_err(), "{q}");
        }
    }

    #[test]
    fn success_replay_guard_refuses_a_replay_until_expiry() {
        let g = ReplayGuard::new(2);
        g.admit("k", "ab", 1_000, 0).unwrap();
        assert_eq!(g.admit("k", "AB", 1_000, 500).unwrap_err().code, -1022, "replay");
        g.admit("other", "ab", 1_000, 500).unwrap();
        assert_eq!(g.admit("k", "cd", 1_000, 600).unwrap_err().code, -1003, "full");
        // once the first two expire, room again; the replay of an expired one is outside its
        // window anyway (the timestamp check refuses it first)
        g.admit("k", "cd", 3_000, 1_001).unwrap();
    }
}
