//! The daemon's schedule as a library: per token, lease, recovery, and the day's work.
//!
//! ```text
//!  every tick (business clock):
//!    for each token: lease? (fenced, see `lease`) ─ newly taken ─▶ reload chain state, recover the journal
//!      00:00 ─▶ close every ended day (in order), book custody
//!      every sync_interval (ops clock; and after a close) ─▶ sync, reconcile, plan:
//!           plan within approval ─▶ execute;  above ─▶ stored as proposed (ApprovePlan)
//!           approved plan still current ─▶ execute;  stale ─▶ superseded
//!      from distribute_after ─▶ distribute each closed day (sync first), retried until done;
//!      distribute_deadline passed and not paid ─▶ distribution_late alert
//! ```
//!
//! Every write for a token goes through the store fenced by the lease's generation, so a
//! stale leader's writes are refused ([`softstake_store::StoreError::Fenced`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use tokio::sync::watch;
use tracing::{error, info, warn};

use softstake_core::{Day, Timestamp, TokenConfig, TokenRegistry};
use softstake_store::{OperationState, PlanRecord, PlanStatus, Store};

use crate::chains::{ChainHandle, Chains};
use crate::clock::Clock;
use crate::lease::{LeaseState, Leases};
use crate::metrics;
use crate::treasury::executor::Executor;
use crate::treasury::{self as tr};

/// Renews the held leases every third of their life, so a long step (a large day close)
/// does not let them lapse.
pub fn spawn_renewer(
    leases: Arc<Leases>,
    ttl: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval((ttl / 3).max(Duration::from_millis(200)));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => leases.renew_all().await,
                _ = stop.changed() => break,
            }
        }
    })
}

/// What the scheduler needs of the configuration.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The token registry.
    pub registry: TokenRegistry,
    /// Per token: the treasury step's cadence (sync, reconcile, plan, execute), seconds.
    pub sync_interval_secs: BTreeMap<String, u64>,
    /// Distribution of day d starts this long after its end, seconds.
    pub distribute_after_secs: u64,
    /// A day not distributed this long after its end raises an alert, seconds.
    pub distribute_deadline_secs: u64,
    /// Reconciliation drift tolerated before moves freeze, bps.
    pub drift_tolerance_bps: u32,
    /// Days of net-outflow history the buffer planner reads.
    pub outflow_history_days: u32,
    /// Sanity bound on the accounts of one day close.
    pub max_accounts_per_close: usize,
}

/// The per-tick work of one instance: for each token, lease, recovery, then the day's
/// schedule. The daemon and the simulator run it with their own clock, store and chains.
#[derive(Debug)]
pub struct Scheduler {
    store: Store,
    chains: Arc<Chains>,
    /// Business time: days, payouts, chain time of simulated chains.
    clock: Arc<dyn Clock>,
    /// Operational time: the treasury step's cadence (the wall clock in the daemon).
    ops_clock: Arc<dyn Clock>,
    cfg: SchedulerConfig,
    leases: Arc<Leases>,
    /// When each token's treasury step last ran, on the operational clock.
    last_sync: BTreeMap<String, Timestamp>,
    /// Tokens led under the current lease whose journal was recovered; a token not in it
    /// is recovered (again) before anything else, so a failed take-over is retried.
    recovered: BTreeSet<String>,
    /// Reconciliations this instance completed, per token.
    reconciliations: BTreeMap<String, u64>,
}

impl Scheduler {
    /// A scheduler over `store` and `chains`, with `clock` for business time, `ops_clock`
    /// for the treasury cadence and `leases` for leadership.
    pub fn new(
        store: Store,
        chains: Arc<Chains>,
        clock: Arc<dyn Clock>,
        ops_clock: Arc<dyn Clock>,
        cfg: SchedulerConfig,
        leases: Arc<Leases>,
    ) -> Scheduler {
        Scheduler {
            store,
            chains,
            clock,
            ops_clock,
            cfg,
            leases,
            last_sync: BTreeMap::new(),
            recovered: BTreeSet::new(),
            reconciliations: BTreeMap::new(),
        }
    }

    /// This instance's leases.
    pub fn leases(&self) -> &Arc<Leases> {
        &self.leases
    }

    /// Reconciliations (ledger against the chain's positions) this instance completed for
    /// `token`: after one, the ledger equals the positions or a drift alert is open.
    pub fn reconciliations(&self, token: &str) -> u64 {
        self.reconciliations.get(token).copied().unwrap_or(0)
    }

    /// The chains.
    pub fn chains(&self) -> &Arc<Chains> {
        &self.chains
    }

    /// One tick: for each token, take or renew its lease, recover after a take-over, and
    /// run what is due. Errors are logged per token and retried on the next tick.
    pub async fn cycle(&mut self) {
        let now = self.clock.now();
        if let Err(e) = self.chains.advance_sims(now) {
            error!(error = %format!("{e:#}"), "advancing simulated chains");
        }
        let tokens: Vec<String> = self.chains.tokens().map(str::to_string).collect();
        for token in tokens {
            let generation = match self.leases.try_acquire(&token).await {
                Ok(LeaseState::Standby { .. }) => {
                    self.recovered.remove(&token);
                    metrics::record_leader(&token, false);
                    continue;
                }
                Ok(LeaseState::Acquired(g)) => {
                    self.recovered.remove(&token);
                    g
                }
                Ok(LeaseState::Held(g)) => g,
                Err(e) => {
                    self.recovered.remove(&token);
                    metrics::record_leader(&token, false);
                    error!(token = %token, error = %format!("{e:#}"), "leader lease");
                    continue;
                }
            };
            // Every write for the token this tick is fenced by the lease's generation.
            let store = self.store.fenced(&token, generation);
            if !self.recovered.contains(&token) {
                if let Err(e) = self.take_over(&store, &token).await {
                    error!(token = %token, generation, error = %format!("{e:#}"), "taking over the token; retried next tick");
                    continue;
                }
                self.recovered.insert(token.clone());
            }
            metrics::record_leader(&token, true);
            if let Err(e) = self.step(&store, &token, now).await {
                if e.is_fenced() {
                    warn!(token = %token, generation, error = %format!("{e:#}"), "lease lost mid-step: the write was refused; standing by");
                    self.recovered.remove(&token);
                    metrics::record_leader(&token, false);
                    continue;
                }
                error!(token = %token, error = %format!("{e:#}"), "daily cycle step failed; retried next tick");
            }
            // A stale leader must not overwrite what the new one saved.
            if store.check_fence().await.is_ok() {
                if let Err(e) = self.chains.save_token(&token) {
                    error!(token = %token, error = %format!("{e:#}"), "saving chain state");
                }
            }
        }
    }

    /// A lease just taken: continue from the chain state the previous leader saved, and
    /// resolve its open operations before anything else.
    async fn take_over(&mut self, store: &Store, token: &str) -> Result<()> {
        self.chains.reload(token)?;
        self.chains.advance_sims(self.clock.now())?;
        let handle = self.chains.get(token)?.clone();
        let recovered = Executor::new(store, handle.adapter.as_ref(), handle.exec.clone())
            .recover()
            .await?;
        info!(token = %token, generation = store.fence().map(|f| f.generation).unwrap_or(0), recovered = recovered.len(), "took over the token");
        self.last_sync.remove(token);
        Ok(())
    }

    async fn step(&mut self, store: &Store, token: &str, now: Timestamp) -> Result<()> {
        let registry = self.cfg.registry.clone();
        let t = registry.get(token)?;
        let closed = self.close_days(store, t, now).await?;
        let interval = self.cfg.sync_interval_secs.get(token).copied().unwrap_or(300);
        let ops_now = self.ops_clock.now();
        let due = self.last_sync.get(token).is_none_or(|last| {
            last.checked_add_secs(i64::try_from(interval).unwrap_or(i64::MAX))
                .is_ok_and(|next| ops_now >= next)
        });
        if closed || due {
            self.treasury(store, t, now).await?;
            self.last_sync.insert(token.to_string(), ops_now);
        }
        self.distribute(store, t, now).await
    }

    /// Closes every ended day not closed yet, in order (the first close is yesterday).
    async fn close_days(&self, store: &Store, t: &TokenConfig, now: Timestamp) -> Result<bool> {
        let cfg = &self.cfg;
        let yesterday = now.day().prev();
        let mut next = match store.last_closed_day(&t.symbol).await? {
            Some(last) => last.next(),
            None => yesterday,
        };
        let mut closed_any = false;
        for _ in 0..366 {
            if next > yesterday {
                break;
            }
            let started = Instant::now();
            let out = store
                .close_day(&cfg.registry, &t.symbol, next, now, cfg.max_accounts_per_close)
                .await?;
            metrics::record_day_close(&t.symbol, started.elapsed());
            let delta = store
                .record_custody_total(&t.symbol, next, out.total_balance, now)
                .await?;
            self.chains.mirror_custody(&t.symbol, delta)?;
            info!(token = %t.symbol, day = %next, eligible_accounts = out.eligible_accounts, "closed day");
            closed_any = true;
            next = next.next();
        }
        Ok(closed_any)
    }

    async fn treasury(&mut self, store: &Store, t: &TokenConfig, now: Timestamp) -> Result<()> {
        let cfg = &self.cfg;
        let handle = self.chains.get(&t.symbol)?.clone();
        let exec = handle.exec.clone();
        let chain = handle.adapter.as_ref();
        let frozen = store.frozen(&t.symbol).await?.is_some();
        drive_open(store, &handle, frozen).await?;
        // one read of the chain's positions serves the sync, the reconciliation and the plan
        let sync = tr::sync_token(store, chain, now).await?;
        let lines = if store.open_operations(Some(&t.symbol)).await?.is_empty() {
            let report = tr::reconcile_positions(store, t, &sync.positions, cfg.drift_tolerance_bps, now).await?;
            *self.reconciliations.entry(t.symbol.clone()).or_default() += 1;
            report.lines
        } else {
            tr::drift(store, &t.symbol, &sync.positions, cfg.drift_tolerance_bps).await?
        };
        metrics::record_drift(
            t,
            lines
                .iter()
                .map(|l| l.drift)
                .max_by_key(|d| d.unsigned_abs())
                .unwrap_or(0),
        );
        let plan = tr::plan_with_positions(store, chain, t, cfg.outflow_history_days, &sync.positions, now).await?;
        metrics::record_plan(t, &plan);
        // what the API's GetPoolStatus serves: reads never reach the chains
        store
            .save_pool_status(&t.symbol, &serde_json::to_string(&plan)?, now)
            .await?;
        tr::refresh_liquidity_alerts(store, &plan, now).await?;
        metrics::record_operations(&t.symbol, &store.operation_counts(&t.symbol).await?);
        if store.frozen(&t.symbol).await?.is_some() {
            return Ok(());
        }
        // Approved plans run only while they are still the current plan.
        for p in store
            .plans(Some(&t.symbol), 20)
            .await?
            .into_iter()
            .filter(|p| p.status == PlanStatus::Approved)
        {
            if p.plan_id == plan.plan_id {
                tr::execute_plan(
                    store,
                    chain,
                    &plan,
                    p.approved_by.as_deref().or(Some("api")),
                    exec.clone(),
                    now,
                )
                .await?;
                return Ok(());
            }
            store
                .set_plan_status(
                    &p.plan_id,
                    &[PlanStatus::Approved],
                    PlanStatus::Rejected,
                    Some("superseded: the state changed before it ran"),
                    now,
                )
                .await?;
            warn!(token = %t.symbol, plan = %p.plan_id, "approved plan superseded by a newer state");
        }
        if plan.ops.is_empty() {
            return Ok(());
        }
        if plan.needs_approval {
            if store.plan(&plan.plan_id).await?.is_none() {
                store
                    .save_plan(&PlanRecord {
                        plan_id: plan.plan_id.clone(),
                        token: plan.token.clone(),
                        epoch: plan.epoch,
                        created_at: now,
                        status: PlanStatus::Proposed,
                        moved: plan.moved,
                        needs_approval: true,
                        approved_by: None,
                        approved_at: None,
                        body: serde_json::to_string(&plan)?,
                    })
                    .await?;
                info!(token = %t.symbol, plan = %plan.plan_id, moved = %plan.moved, "plan proposed: waiting for approval");
            }
            return Ok(());
        }
        tr::execute_plan(store, chain, &plan, None, exec, now).await?;
        Ok(())
    }

    /// Pays every closed day whose payout window has opened; raises an alert after 08:00.
    async fn distribute(&self, store: &Store, t: &TokenConfig, now: Timestamp) -> Result<()> {
        let svc = &self.cfg;
        for day in store.undistributed_days(&t.symbol).await? {
            let opens = day.end().checked_add_secs(svc.distribute_after_secs as i64)?;
            if now < opens {
                break;
            }
            let chain = self.chains.get(&t.symbol)?.adapter.clone();
            tr::sync_token(store, chain.as_ref(), now).await?;
            match store.distribute(t, day, now).await {
                Ok(s) => {
                    info!(token = %t.symbol, day = %day, paid_accounts = s.eligible_accounts, "distributed day");
                    if let Some(apr) = s.apr {
                        metrics::record_apr(&t.symbol, apr);
                    }
                    store.resolve_alerts(&t.symbol, "distribution_late", now).await?;
                }
                Err(e) => {
                    self.flag_late(store, t, day, now).await?;
                    return Err(e.into());
                }
            }
        }
        match store.undistributed_days(&t.symbol).await?.first() {
            Some(day) => self.flag_late(store, t, *day, now).await,
            None => {
                metrics::record_distribution_late(&t.symbol, false);
                Ok(())
            }
        }
    }

    /// Raises the late-payout alert (and metric) when `day` is unpaid after 08:00 UTC.
    async fn flag_late(&self, store: &Store, t: &TokenConfig, day: Day, now: Timestamp) -> Result<()> {
        let late = self.deadline_passed(day, now)?;
        metrics::record_distribution_late(&t.symbol, late);
        if late {
            let msg = format!("{} {day} is not paid and 08:00 UTC has passed", t.symbol);
            store
                .raise_alert(
                    &t.symbol,
                    "distribution_late",
                    &msg,
                    Default::default(),
                    None,
                    false,
                    now,
                )
                .await?;
        }
        Ok(())
    }

    fn deadline_passed(&self, day: Day, now: Timestamp) -> Result<bool> {
        Ok(now > day.end().checked_add_secs(self.cfg.distribute_deadline_secs as i64)?)
    }
}

/// Drives the token's open operations every treasury step, not only when a new plan
/// runs: one still submitted after its polls (delayed finality) would otherwise stay open
/// until the next plan with operations, and while any is open the token is neither
/// reconciled nor credited position growth. While moves are frozen only submitted ones
/// are resolved; intents wait for the acknowledgement.
async fn drive_open(store: &Store, handle: &ChainHandle, frozen: bool) -> Result<()> {
    Executor::new(store, handle.adapter.as_ref(), handle.exec.clone())
        .recover_where(|op| !frozen || op.state == OperationState::Submitted)
        .await?;
    Ok(())
}
