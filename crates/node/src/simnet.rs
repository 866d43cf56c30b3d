//! `softstake simnet`: one token's simulated chain served over HTTP, so several processes
//! (two daemons, a daemon and the CLI) act on one shared chain, as they would on a real
//! network. The daemons reach it through `adapter = "sim-remote"` with `rpc_url`.
//!
//! ```text
//!  daemon A ─┐  POST /rpc {"method": "build"|"broadcast"|…, "params": …}
//!  daemon B ─┴─────────────────────────────────▶ simnet ─▶ SimAdapter ─▶ SimChain
//!  test/drill ── advance, fund, effects ───────▶ (admin methods, same route)
//! ```
//!
//! Every call is answered `{"ok": …}` or `{"error": {"transient": bool, "message": …}}`;
//! the client maps errors back to [`AdapterError`] so the executor treats them as it
//! would a real node's. The chain keeps, per idempotency key, how many times an
//! operation took effect (`effects`): the failover drills assert it is never above one.
//! Devnet and tests only: it signs with the devnet key and listens on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::info;

use softstake_adapters::sim::{SimAdapter, SimChain};
use softstake_adapters::traits::{EpochInfo, LiquidityModel, OpKind, Position, ValidatorCandidate};
use softstake_adapters::{AdapterError, ChainAdapter, OperationRequest, RewardsPage, SignedTx, TxStatus};
use softstake_core::{Amount, Timestamp};

/// The chain name remote simulated chains report.
const CHAIN: &str = "sim-remote";

/// One call to the simnet: the adapter's methods, then the admin ones.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params", rename_all = "snake_case")]
pub enum Call {
    /// [`ChainAdapter::liquidity_model`].
    LiquidityModel,
    /// [`ChainAdapter::epoch`].
    Epoch,
    /// [`ChainAdapter::now`].
    Now,
    /// [`ChainAdapter::validators`].
    Validators,
    /// [`ChainAdapter::positions`].
    Positions,
    /// [`ChainAdapter::spendable`].
    Spendable,
    /// [`ChainAdapter::claimable`].
    Claimable,
    /// [`ChainAdapter::build`]: sign an operation with the chain's devnet treasury key.
    Build(OperationRequest),
    /// [`ChainAdapter::broadcast`].
    Broadcast(SignedTx),
    /// [`ChainAdapter::tx_status`].
    TxStatus(SignedTx),
    /// [`ChainAdapter::rewards_since`].
    RewardsSince(Option<String>),
    /// Admin: move chain time forward to this instant (earlier times are ignored).
    Advance(Timestamp),
    /// Admin: credit the treasury wallet, base units.
    Fund(Amount),
    /// Admin: effects per idempotency key.
    Effects,
}

/// What the server holds.
#[derive(Debug, Clone)]
struct Served {
    adapter: Arc<SimAdapter>,
    chain: Arc<SimChain>,
    latency: Duration,
}

/// The simnet's router over `chain`, signing with `adapter`, answering each call after
/// `latency` (a network round trip; drills use it to keep plans executing for a while).
pub fn router(chain: Arc<SimChain>, adapter: SimAdapter, latency: Duration) -> Router {
    Router::new().route("/rpc", post(rpc)).with_state(Served {
        adapter: Arc::new(adapter),
        chain,
        latency,
    })
}

/// Serves `router` on `listener` until the process ends.
///
/// # Errors
/// The server failed.
pub async fn serve(router: Router, listener: tokio::net::TcpListener) -> Result<()> {
    info!(addr = %listener.local_addr()?, "simnet listening");
    axum::serve(listener, router).await.context("simnet server")
}

async fn rpc(State(s): State<Served>, Json(call): Json<Call>) -> Json<Value> {
    if !s.latency.is_zero() {
        tokio::time::sleep(s.latency).await;
    }
    Json(match answer(&s, call).await {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": { "transient": e.is_transient(), "message": e.to_string() } }),
    })
}

fn to_value<T: Serialize>(v: T) -> Result<Value, AdapterError> {
    serde_json::to_value(v).map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))
}

async fn answer(s: &Served, call: Call) -> Result<Value, AdapterError> {
    let a = s.adapter.as_ref();
    match call {
        Call::LiquidityModel => to_value(a.liquidity_model().await?),
        Call::Epoch => to_value(a.epoch().await?),
        Call::Now => to_value(a.now().await?),
        Call::Validators => to_value(a.validators().await?),
        Call::Positions => to_value(a.positions().await?),
        Call::Spendable => to_value(a.spendable().await?),
        Call::Claimable => to_value(a.claimable().await?),
        Call::Build(req) => to_value(a.build(&req).await?),
        Call::Broadcast(tx) => to_value(a.broadcast(&tx).await?),
        Call::TxStatus(tx) => to_value(a.tx_status(&tx).await?),
        Call::RewardsSince(c) => to_value(a.rewards_since(c.as_deref()).await?),
        Call::Advance(t) => to_value(s.chain.advance_to(t)?),
        Call::Fund(amount) => to_value(s.chain.fund(amount)?),
        Call::Effects => to_value(s.chain.all_effects()),
    }
}

/// The [`ChainAdapter`] of a simulated chain served by `softstake simnet`.
#[derive(Debug, Clone)]
pub struct RemoteSim {
    token: String,
    url: String,
    http: reqwest::Client,
}

#[derive(Debug, Deserialize)]
struct Reply {
    ok: Option<Value>,
    error: Option<ReplyError>,
}

#[derive(Debug, Deserialize)]
struct ReplyError {
    transient: bool,
    message: String,
}

impl RemoteSim {
    /// A client of the simnet at `url` (`http://127.0.0.1:PORT`) for `token`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(token: &str, url: &str) -> Result<RemoteSim> {
        Ok(RemoteSim {
            token: token.to_string(),
            url: format!("{}/rpc", url.trim_end_matches('/')),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
        })
    }

    /// Makes one call; errors keep their kind (transient or not).
    ///
    /// # Errors
    /// Transport errors are transient; the chain's own errors as it reported them; an
    /// answer that does not decode is [`AdapterError::BadResponse`].
    pub async fn call<T: serde::de::DeserializeOwned>(&self, call: &Call) -> Result<T, AdapterError> {
        let reply: Reply = self
            .http
            .post(&self.url)
            .json(call)
            .send()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, e.to_string()))?
            .json()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, e.to_string()))?;
        match (reply.ok, reply.error) {
            (_, Some(e)) if e.transient => Err(AdapterError::transient(CHAIN, e.message)),
            (_, Some(e)) => Err(AdapterError::rejected(CHAIN, e.message)),
            // `"ok": null` (a call that returns nothing) reads as an absent `ok`
            (v, None) => serde_json::from_value(v.unwrap_or(Value::Null))
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("{call:?}: {e}"))),
        }
    }

    /// Effects per idempotency key (drills and tests).
    ///
    /// # Errors
    /// As [`RemoteSim::call`].
    pub async fn effects(&self) -> Result<BTreeMap<String, u32>, AdapterError> {
        self.call(&Call::Effects).await
    }

    async fn sign(&self, kind: OpKind, key: &str, validator: &str, amount: Amount) -> Result<SignedTx, AdapterError> {
        self.call(&Call::Build(OperationRequest {
            idempotency_key: key.to_string(),
            kind,
            validator: validator.to_string(),
            amount,
        }))
        .await
    }
}

#[async_trait]
impl ChainAdapter for RemoteSim {
    fn chain(&self) -> &str {
        CHAIN
    }
    fn token(&self) -> &str {
        &self.token
    }
    async fn liquidity_model(&self) -> Result<LiquidityModel, AdapterError> {
        self.call(&Call::LiquidityModel).await
    }
    async fn epoch(&self) -> Result<EpochInfo, AdapterError> {
        self.call(&Call::Epoch).await
    }
    async fn now(&self) -> Result<Timestamp, AdapterError> {
        self.call(&Call::Now).await
    }
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>, AdapterError> {
        self.call(&Call::Validators).await
    }
    async fn positions(&self) -> Result<Vec<Position>, AdapterError> {
        self.call(&Call::Positions).await
    }
    async fn spendable(&self) -> Result<Amount, AdapterError> {
        self.call(&Call::Spendable).await
    }
    async fn claimable(&self) -> Result<Vec<(String, Amount)>, AdapterError> {
        self.call(&Call::Claimable).await
    }
    async fn delegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx, AdapterError> {
        self.sign(OpKind::Delegate, key, validator, amount).await
    }
    async fn undelegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx, AdapterError> {
        self.sign(OpKind::Undelegate, key, validator, amount).await
    }
    async fn withdraw(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx, AdapterError> {
        self.sign(OpKind::Withdraw, key, validator, amount).await
    }
    async fn claim_rewards(&self, key: &str, validator: &str) -> Result<SignedTx, AdapterError> {
        self.sign(OpKind::Claim, key, validator, Amount::ZERO).await
    }
    async fn broadcast(&self, tx: &SignedTx) -> Result<(), AdapterError> {
        self.call(&Call::Broadcast(tx.clone())).await
    }
    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus, AdapterError> {
        self.call(&Call::TxStatus(tx.clone())).await
    }
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage, AdapterError> {
        self.call(&Call::RewardsSince(cursor.map(str::to_string))).await
    }
}
