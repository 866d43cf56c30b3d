//! [`Guarded`]: wraps any [`ChainAdapter`] so every call is rate limited (governor),
//! bounded in time, retried with exponential backoff and jitter on transient errors only
//! (backon), traced, and reported to a [`CallObserver`] (metrics).
//!
//! ```text
//!  call ─▶ rate limiter (per endpoint) ─▶ timeout ─▶ inner adapter
//!            ▲                                          │ Transient? ─ yes ─▶ backoff, again (bounded)
//!            └──────────────────────────────────────────┘ no ─▶ return (observer records latency, outcome)
//! ```
//!
//! Retrying `broadcast` is safe: it resends the same signed transaction, which the chain
//! deduplicates by id.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tracing::{debug, warn};

use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, Preflight, RewardsPage, SignedTx, TreasuryFlow, TxStatus,
    ValidatorCandidate,
};

/// Receives one record per attempt of a chain call (for Prometheus or logs).
pub trait CallObserver: Send + Sync + std::fmt::Debug {
    /// `method` on `chain` took `elapsed` and ended in `error` (None = success).
    fn observe(&self, chain: &str, token: &str, method: &str, elapsed: Duration, error: Option<&AdapterError>);
}

/// Limits of a guarded adapter.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Calls per second allowed on the endpoint.
    pub rate_per_sec: u32,
    /// Attempts after the first one, for transient errors.
    pub max_retries: usize,
    /// First backoff delay.
    pub min_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Time limit of one attempt.
    pub call_timeout: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            rate_per_sec: 10,
            max_retries: 5,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            call_timeout: Duration::from_secs(30),
        }
    }
}

/// A rate-limited, retrying, traced adapter.
#[derive(Debug)]
pub struct Guarded<A> {
    inner: A,
    limiter: DefaultDirectRateLimiter,
    cfg: GuardConfig,
    observer: Option<Arc<dyn CallObserver>>,
}

impl<A: ChainAdapter> Guarded<A> {
    /// Wraps `inner`.
    pub fn new(inner: A, cfg: GuardConfig, observer: Option<Arc<dyn CallObserver>>) -> Guarded<A> {
        let rate = NonZeroU32::new(cfg.rate_per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
        Guarded {
            inner,
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            cfg,
            observer,
        }
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    async fn call<T, F, Fut>(&self, method: &'static str, f: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let chain = self.inner.chain().to_string();
        let token = self.inner.token().to_string();
        let attempt = || async {
            self.limiter.until_ready().await;
            let start = Instant::now();
            let r = match tokio::time::timeout(self.cfg.call_timeout, f()).await {
                Ok(r) => r,
                Err(_) => Err(AdapterError::transient(
                    &chain,
                    format!("{method} timed out after {:?}", self.cfg.call_timeout),
                )),
            };
            let elapsed = start.elapsed();
            if let Some(o) = &self.observer {
                o.observe(&chain, &token, method, elapsed, r.as_ref().err());
            }
            debug!(chain = %chain, token = %token, method, elapsed_ms = elapsed.as_millis() as u64, ok = r.is_ok(), "chain call");
            r
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(self.cfg.min_backoff)
                    .with_max_delay(self.cfg.max_backoff)
                    .with_max_times(self.cfg.max_retries)
                    .with_jitter(),
            )
            .sleep(tokio::time::sleep)
            .when(AdapterError::is_transient)
            .notify(|e, d| warn!(chain = %self.inner.chain(), token = %self.inner.token(), method, error = %e, retry_in_ms = d.as_millis() as u64, "transient chain error, retrying"))
            .await
    }
}

#[async_trait]
impl<A: ChainAdapter> ChainAdapter for Guarded<A> {
    fn chain(&self) -> &str {
        self.inner.chain()
    }
    fn token(&self) -> &str {
        self.inner.token()
    }
    fn rewards_from_positions(&self) -> bool {
        self.inner.rewards_from_positions()
    }
    fn pooled_unbonding(&self) -> Option<&str> {
        self.inner.pooled_unbonding()
    }
    fn unbonding_returns_itself(&self) -> bool {
        self.inner.unbonding_returns_itself()
    }
    fn exits_from_journal(&self) -> bool {
        self.inner.exits_from_journal()
    }
    fn journal_exits(&self, undelegations: &[(String, String)], withdrawals: &[SignedTx]) {
        self.inner.journal_exits(undelegations, withdrawals)
    }
    fn rewards_net_of_flows(&self) -> bool {
        self.inner.rewards_net_of_flows()
    }
    async fn treasury_flow(&self, tx_id: &str, received: Option<Amount>) -> Result<Option<TreasuryFlow>> {
        self.call("treasury_flow", || self.inner.treasury_flow(tx_id, received))
            .await
    }
    fn give_treasury_flows(&self, flows: &[TreasuryFlow]) {
        self.inner.give_treasury_flows(flows)
    }
    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        self.call("liquidity_model", || self.inner.liquidity_model()).await
    }
    async fn epoch(&self) -> Result<EpochInfo> {
        self.call("epoch", || self.inner.epoch()).await
    }
    async fn now(&self) -> Result<Timestamp> {
        self.call("now", || self.inner.now()).await
    }
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        self.call("validators", || self.inner.validators()).await
    }
    async fn positions(&self) -> Result<Vec<Position>> {
        self.call("positions", || self.inner.positions()).await
    }
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        self.call("claimable", || self.inner.claimable()).await
    }
    async fn spendable(&self) -> Result<Amount> {
        self.call("spendable", || self.inner.spendable()).await
    }
    async fn delegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.call("delegate", || self.inner.delegate(key, validator, amount))
            .await
    }
    async fn undelegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.call("undelegate", || self.inner.undelegate(key, validator, amount))
            .await
    }
    async fn withdraw(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.call("withdraw", || self.inner.withdraw(key, validator, amount))
            .await
    }
    async fn claim_rewards(&self, key: &str, validator: &str) -> Result<SignedTx> {
        self.call("claim_rewards", || self.inner.claim_rewards(key, validator))
            .await
    }
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        self.call("broadcast", || self.inner.broadcast(tx)).await
    }
    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        self.call("tx_status", || self.inner.tx_status(tx)).await
    }
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        self.call("rewards_since", || self.inner.rewards_since(cursor)).await
    }
    async fn preflight(&self) -> Result<Preflight> {
        self.call("preflight", || self.inner.preflight()).await
    }
}

#[async_trait]
impl<T: ChainAdapter + ?Sized> ChainAdapter for Arc<T> {
    fn chain(&self) -> &str {
        (**self).chain()
    }
    fn token(&self) -> &str {
        (**self).token()
    }
    fn rewards_from_positions(&self) -> bool {
        (**self).rewards_from_positions()
    }
    fn pooled_unbonding(&self) -> Option<&str> {
        (**self).pooled_unbonding()
    }
    fn unbonding_returns_itself(&self) -> bool {
        (**self).unbonding_returns_itself()
    }
    fn exits_from_journal(&self) -> bool {
        (**self).exits_from_journal()
    }
    fn journal_exits(&self, undelegations: &[(String, String)], withdrawals: &[SignedTx]) {
        (**self).journal_exits(undelegations, withdrawals)
    }
    fn rewards_net_of_flows(&self) -> bool {
        (**self).rewards_net_of_flows()
    }
    async fn treasury_flow(&self, tx_id: &str, received: Option<Amount>) -> Result<Option<TreasuryFlow>> {
        (**self).treasury_flow(tx_id, received).await
    }
    fn give_treasury_flows(&self, flows: &[TreasuryFlow]) {
        (**self).give_treasury_flows(flows)
    }
    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        (**self).liquidity_model().await
    }
    async fn epoch(&self) -> Result<EpochInfo> {
        (**self).epoch().await
    }
    async fn now(&self) -> Result<Timestamp> {
        (**self).now().await
    }
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        (**self).validators().await
    }
    async fn positions(&self) -> Result<Vec<Position>> {
        (**self).positions().await
    }
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        (**self).claimable().await
    }
    async fn spendable(&self) -> Result<Amount> {
        (**self).spendable().await
    }
    async fn delegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        (**self).delegate(key, validator, amount).await
    }
    async fn undelegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        (**self).undelegate(key, validator, amount).await
    }
    async fn withdraw(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        (**self).withdraw(key, validator, amount).await
    }
    async fn claim_rewards(&self, key: &str, validator: &str) -> Result<SignedTx> {
        (**self).claim_rewards(key, validator).await
    }
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        (**self).broadcast(tx).await
    }
    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        (**self).tx_status(tx).await
    }
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        (**self).rewards_since(cursor).await
    }
    async fn preflight(&self) -> Result<Preflight> {
        (**self).preflight().await
    }
}
