//! Driving operations through the journal so that a crash anywhere, followed by a
//! restart, never acts twice on a chain.
//!
//! ```text
//!  intent ──build+sign──▶ (persist) submitted(tx_id, payload) ──broadcast──▶ chain
//!     ▲                                    │
//!     │                         tx_status(tx), bounded polls
//!     │          Confirmed ─▶ (persist) confirmed + ledger entries
//!     │          Failed    ─▶ (persist) failed
//!     │          Pending   ─▶ stay submitted; the next run resolves it
//!     │          NotFound  ─▶ it can still land: send the same payload again (same id), poll on
//!     └───────── Expired   ─▶ it can never land: sign a new attempt
//! ```
//!
//! Every transition is persisted before the side effect it guards; on start,
//! [`Executor::recover`] resolves open operations by `tx_status` before anything new is
//! sent. [`CrashPoint`] makes the executor stop ("crash") between two steps, for tests.

use std::sync::Mutex;
use std::time::Duration;

use crate::error::{OrchestratorError, Result};
use tracing::{info, warn};

use softstake_adapters::traits::OpKind;
use softstake_adapters::{AdapterError, ChainAdapter, OperationRequest, SignedTx, TxStatus};
use softstake_core::ledger::{Entry, LedgerAccount};
use softstake_core::Timestamp;
use softstake_store::{Operation, OperationState, Store};

/// A place between two journal steps where a test can make the executor stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// After the intent is recorded, before signing.
    AfterIntent,
    /// After signing, before `submitted` is persisted.
    AfterSign,
    /// After `submitted` is persisted, before broadcasting.
    AfterSubmitted,
    /// After broadcasting, before reading the status.
    AfterBroadcast,
    /// After the chain confirmed, before `confirmed` is persisted.
    AfterConfirmedStatus,
}

impl CrashPoint {
    /// Every crash point, in journal order.
    pub const ALL: [CrashPoint; 5] = [
        CrashPoint::AfterIntent,
        CrashPoint::AfterSign,
        CrashPoint::AfterSubmitted,
        CrashPoint::AfterBroadcast,
        CrashPoint::AfterConfirmedStatus,
    ];
}

impl CrashPoint {
    /// Snake-case name (`after_submitted`), as `SOFTSTAKE_CRASH_AT` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CrashPoint::AfterIntent => "after_intent",
            CrashPoint::AfterSign => "after_sign",
            CrashPoint::AfterSubmitted => "after_submitted",
            CrashPoint::AfterBroadcast => "after_broadcast",
            CrashPoint::AfterConfirmedStatus => "after_confirmed_status",
        }
    }

    /// Parses [`CrashPoint::as_str`]'s output.
    pub fn parse(s: &str) -> Option<CrashPoint> {
        CrashPoint::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// What reaching an armed [`CrashPoint`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// The run ends with [`Crashed`] (in-process tests: the caller then "restarts").
    Error,
    /// The process aborts at once, as `kill -9` would stop it there (failover drills).
    Abort,
    /// The process stops itself with SIGSTOP, as a paused VM would, and goes on from
    /// there when sent SIGCONT (failover drills of a stale leader).
    Stop,
}

/// A one-shot process-level drill shared by every executor of a process: the first
/// operation to reach its point fires it.
#[derive(Debug, Default)]
pub struct Drill(Mutex<Option<(CrashPoint, CrashMode)>>);

impl Drill {
    /// A drill at `point` with `mode`.
    pub fn new(point: CrashPoint, mode: CrashMode) -> Drill {
        Drill(Mutex::new(Some((point, mode))))
    }

    /// Arms (or re-arms) the drill at `point` with `mode`.
    pub fn arm(&self, point: CrashPoint, mode: CrashMode) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((point, mode));
    }

    /// Disarms it; true when it was still armed (it did not fire).
    pub fn disarm(&self) -> bool {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take().is_some()
    }

    /// Takes the drill if it is armed at `point`.
    fn take_at(&self, point: CrashPoint) -> Option<CrashMode> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match *g {
            Some((p, mode)) if p == point => {
                *g = None;
                Some(mode)
            }
            _ => None,
        }
    }

    /// The drill of the `SOFTSTAKE_CRASH_AT` environment variable, read by `softstake
    /// run`: `abort:POINT` or `stop:POINT` (POINT as [`CrashPoint::as_str`]). For failover
    /// drills and tests only; unset in production.
    ///
    /// # Errors
    /// A malformed value names what is accepted.
    pub fn from_env() -> Result<Option<Drill>> {
        Ok(drill_from_env()?.map(|(p, m)| Drill::new(p, m)))
    }
}

fn drill_from_env() -> Result<Option<(CrashPoint, CrashMode)>> {
    let Ok(v) = std::env::var("SOFTSTAKE_CRASH_AT") else {
        return Ok(None);
    };
    let (mode, point) = v.split_once(':').unwrap_or(("", ""));
    let mode = match mode {
        "abort" => CrashMode::Abort,
        "stop" => CrashMode::Stop,
        _ => {
            return Err(OrchestratorError::Drill(format!(
                "SOFTSTAKE_CRASH_AT={v:?}: expected abort:POINT or stop:POINT"
            )))
        }
    };
    let point = CrashPoint::parse(point).ok_or_else(|| {
        let names: Vec<&str> = CrashPoint::ALL.iter().map(|p| p.as_str()).collect();
        OrchestratorError::Drill(format!(
            "SOFTSTAKE_CRASH_AT={v:?}: POINT is one of {}",
            names.join(", ")
        ))
    })?;
    Ok(Some((point, mode)))
}

/// The error an injected crash ends a run with.
#[derive(Debug, thiserror::Error)]
#[error("injected crash at {0:?}")]
pub struct Crashed(pub CrashPoint);

/// How an operation ended this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// Confirmed on chain (now or earlier).
    Confirmed,
    /// Failed, with the chain's reason.
    Failed(String),
    /// Still pending after the polls of this run; a later run resolves it.
    Pending,
}

/// Bounds of the executor's waiting.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Status polls per attempt before leaving the operation pending.
    pub max_polls: u32,
    /// Pause between polls.
    pub poll_interval: Duration,
    /// Signed attempts (after expiries) before giving up.
    pub max_attempts: u32,
    /// A process-level failover drill (tests and drills only).
    pub drill: Option<std::sync::Arc<Drill>>,
}

impl Default for ExecConfig {
    fn default() -> Self {
        ExecConfig {
            max_polls: 30,
            poll_interval: Duration::from_millis(0),
            max_attempts: 5,
            drill: None,
        }
    }
}

/// Runs journal operations against one chain.
#[derive(Debug)]
pub struct Executor<'a> {
    store: &'a Store,
    chain: &'a dyn ChainAdapter,
    cfg: ExecConfig,
    crash: Mutex<Option<(CrashPoint, CrashMode)>>,
}

impl<'a> Executor<'a> {
    /// An executor over `store` and `chain`.
    pub fn new(store: &'a Store, chain: &'a dyn ChainAdapter, cfg: ExecConfig) -> Executor<'a> {
        Executor {
            store,
            chain,
            cfg,
            crash: Mutex::new(None),
        }
    }

    /// Makes the next run stop at `point` (once) with [`Crashed`].
    pub fn crash_at(self, point: CrashPoint) -> Self {
        self.drill(point, CrashMode::Error)
    }

    /// Arms `point` (once) with `mode`.
    pub fn drill(self, point: CrashPoint, mode: CrashMode) -> Self {
        *self.crash.lock().unwrap_or_else(|p| p.into_inner()) = Some((point, mode));
        self
    }

    fn checkpoint(&self, point: CrashPoint) -> Result<()> {
        let armed = {
            let mut g = self.crash.lock().unwrap_or_else(|p| p.into_inner());
            match *g {
                Some((p, mode)) if p == point => {
                    *g = None;
                    Some(mode)
                }
                _ => None,
            }
        };
        let Some(mode) = armed.or_else(|| self.cfg.drill.as_ref().and_then(|d| d.take_at(point))) else {
            return Ok(());
        };
        match mode {
            CrashMode::Error => Err(Crashed(point).into()),
            CrashMode::Abort => {
                warn!(point = point.as_str(), "drill: aborting the process");
                std::process::abort()
            }
            CrashMode::Stop => {
                warn!(
                    point = point.as_str(),
                    "drill: stopping the process (SIGSTOP) until SIGCONT"
                );
                nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP)?;
                warn!(point = point.as_str(), "drill: continued after SIGSTOP");
                Ok(())
            }
        }
    }

    /// Resolves every open operation of the chain's token, oldest first. Call before
    /// anything new is sent.
    pub async fn recover(&self) -> Result<Vec<(String, OpOutcome)>> {
        self.recover_where(|_| true).await
    }

    /// [`Executor::recover`] for the open operations `keep` selects (e.g. only submitted
    /// ones while moves are frozen), oldest first.
    pub async fn recover_where(&self, keep: impl Fn(&Operation) -> bool) -> Result<Vec<(String, OpOutcome)>> {
        let open = self.store.open_operations(Some(self.chain.token())).await?;
        let mut out = Vec::with_capacity(open.len());
        for op in open.into_iter().filter(|o| keep(o)) {
            info!(token = %op.token, key = %op.idempotency_key, state = op.state.as_str(), "recovering operation");
            let o = self.run(&op.idempotency_key).await?;
            out.push((op.idempotency_key, o));
        }
        Ok(out)
    }

    /// Drives the operation with this key as far as it goes this run.
    pub async fn run(&self, key: &str) -> Result<OpOutcome> {
        self.checkpoint(CrashPoint::AfterIntent)?;
        for _ in 0..self.cfg.max_attempts.saturating_mul(4).max(4) {
            let op = self.load(key).await?;
            let step = match op.state {
                OperationState::Confirmed | OperationState::Reconciled => return Ok(OpOutcome::Confirmed),
                OperationState::Failed => return Ok(OpOutcome::Failed(op.error.unwrap_or_default())),
                OperationState::Intent => self.sign_and_send(&op).await?,
                OperationState::Submitted => self.resolve(&op).await?,
            };
            if let Some(outcome) = step {
                return Ok(outcome);
            }
        }
        Ok(OpOutcome::Pending)
    }

    async fn load(&self, key: &str) -> Result<Operation> {
        self.store
            .operation(key)
            .await?
            .ok_or_else(|| OrchestratorError::Inconsistent(format!("operation {key} is not in the journal")))
    }

    async fn chain_now(&self) -> Result<Timestamp> {
        Ok(self.chain.now().await?)
    }

    /// Signs a (new) attempt, persists it as submitted, broadcasts it. `None` = go on.
    async fn sign_and_send(&self, op: &Operation) -> Result<Option<OpOutcome>> {
        if op.attempts >= self.cfg.max_attempts {
            let reason = format!("gave up after {} expired attempts", op.attempts);
            self.store
                .mark_failed(&op.idempotency_key, op.expect(), &reason, self.chain_now().await?)
                .await?;
            return Ok(Some(OpOutcome::Failed(reason)));
        }
        let req = OperationRequest {
            idempotency_key: op.idempotency_key.clone(),
            kind: op.kind,
            validator: op.validator.clone(),
            amount: op.amount,
        };
        let signed = match self.chain.build(&req).await {
            Ok(s) => s,
            Err(e) if !e.is_transient() => return self.fail(op, &e).await.map(Some),
            Err(e) => return Err(e.into()),
        };
        self.checkpoint(CrashPoint::AfterSign)?;
        let now = self.chain_now().await?;
        self.store
            .mark_submitted(
                &op.idempotency_key,
                op.expect(),
                &signed.tx_id,
                &signed.payload,
                signed.valid_until,
                now,
            )
            .await?;
        self.checkpoint(CrashPoint::AfterSubmitted)?;
        let op = self.load(&op.idempotency_key).await?;
        self.send(&op, &signed).await
    }

    async fn send(&self, op: &Operation, signed: &SignedTx) -> Result<Option<OpOutcome>> {
        // The last moment a stale leader can be stopped before acting on the chain.
        self.store.check_fence().await?;
        match self.chain.broadcast(signed).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => {
                warn!(token = %op.token, key = %op.idempotency_key, error = %e, "broadcast outcome unknown; resolving by status");
            }
            Err(e) => {
                // Refused up front; make sure it did not land anyway before failing it.
                if matches!(
                    self.chain.tx_status(signed).await?,
                    TxStatus::NotFound | TxStatus::Expired
                ) {
                    return self.fail(op, &e).await.map(Some);
                }
            }
        }
        self.checkpoint(CrashPoint::AfterBroadcast)?;
        Ok(None)
    }

    async fn fail(&self, op: &Operation, e: &AdapterError) -> Result<OpOutcome> {
        let reason = e.to_string();
        warn!(token = %op.token, key = %op.idempotency_key, kind = op.kind.as_str(), reason = %reason, "operation failed");
        self.store
            .mark_failed(&op.idempotency_key, op.expect(), &reason, self.chain_now().await?)
            .await?;
        Ok(OpOutcome::Failed(reason))
    }

    /// Resolves a submitted operation by its transaction's status. `None` = go on.
    async fn resolve(&self, op: &Operation) -> Result<Option<OpOutcome>> {
        let signed = SignedTx {
            tx_id: op.tx_id.clone().ok_or_else(|| inconsistent(op, "tx id"))?,
            payload: op.payload.clone().ok_or_else(|| inconsistent(op, "payload"))?,
            valid_until: op.valid_until,
        };
        let tx_id = signed.tx_id.clone();
        for poll in 0..self.cfg.max_polls {
            if poll > 0 && !self.cfg.poll_interval.is_zero() {
                tokio::time::sleep(self.cfg.poll_interval).await;
            }
            match self.chain.tx_status(&signed).await? {
                TxStatus::Pending => continue,
                TxStatus::Confirmed { at } => {
                    self.checkpoint(CrashPoint::AfterConfirmedStatus)?;
                    self.store
                        .mark_confirmed(
                            &op.idempotency_key,
                            op.expect(),
                            &effect_entries(op, self.chain.pooled_unbonding()),
                            at,
                        )
                        .await?;
                    info!(token = %op.token, key = %op.idempotency_key, kind = op.kind.as_str(), validator = %op.validator, amount = %op.amount, tx = %tx_id, "operation confirmed");
                    return Ok(Some(OpOutcome::Confirmed));
                }
                TxStatus::Failed { reason } => {
                    self.store
                        .mark_failed(&op.idempotency_key, op.expect(), &reason, self.chain_now().await?)
                        .await?;
                    return Ok(Some(OpOutcome::Failed(reason)));
                }
                TxStatus::NotFound => {
                    if self.expired_by_time(&signed).await? {
                        info!(token = %op.token, key = %op.idempotency_key, tx = %tx_id, "transaction expired without landing; signing a new attempt");
                        return self.sign_and_send(op).await;
                    }
                    // Not visible yet, or never sent (a crash before broadcast): send the
                    // same transaction again (same id: the chain applies it at most once)
                    // and keep polling. A refusal of the resend is not final: the
                    // transaction may already be on its way; expiry decides.
                    self.store.check_fence().await?;
                    if let Err(e) = self.chain.broadcast(&signed).await {
                        warn!(token = %op.token, key = %op.idempotency_key, tx = %tx_id, error = %e, "resend refused; waiting for the status");
                    }
                    self.checkpoint(CrashPoint::AfterBroadcast)?;
                }
                TxStatus::Expired => {
                    info!(token = %op.token, key = %op.idempotency_key, tx = %tx_id, "transaction expired without landing; signing a new attempt");
                    return self.sign_and_send(op).await;
                }
            }
        }
        Ok(Some(OpOutcome::Pending))
    }

    /// For adapters that cannot tell expiry from the chain: the `valid_until` they gave.
    async fn expired_by_time(&self, signed: &SignedTx) -> Result<bool> {
        match signed.valid_until {
            Some(v) => Ok(self.chain_now().await? > v),
            None => Ok(false),
        }
    }
}

/// A submitted operation missing its transaction's `what`.
fn inconsistent(op: &Operation, what: &str) -> OrchestratorError {
    OrchestratorError::Inconsistent(format!("submitted operation {} has no {what}", op.idempotency_key))
}

/// The ledger entries of a confirmed operation's effect. `pooled_unbonding` is the
/// chain's [`ChainAdapter::pooled_unbonding`]: there an undelegation moves the stake to
/// that pooled account, from which the withdrawal is planned.
pub fn effect_entries(op: &Operation, pooled_unbonding: Option<&str>) -> Vec<Entry> {
    let e = Entry::new(op.kind.as_str(), &op.idempotency_key);
    match op.kind {
        OpKind::Delegate => vec![e.transfer(
            LedgerAccount::stake(&op.validator),
            LedgerAccount::buffer(),
            &op.token,
            op.amount,
        )],
        OpKind::Withdraw => vec![e.transfer(
            LedgerAccount::buffer(),
            LedgerAccount::stake(&op.validator),
            &op.token,
            op.amount,
        )],
        OpKind::Undelegate => match pooled_unbonding {
            Some(pool) if pool != op.validator => vec![e.transfer(
                LedgerAccount::stake(pool),
                LedgerAccount::stake(&op.validator),
                &op.token,
                op.amount,
            )],
            // Unbonding changes the state, not the owner.
            _ => vec![],
        },
        // Claims are booked by the reward sync.
        OpKind::Claim => vec![],
    }
}
