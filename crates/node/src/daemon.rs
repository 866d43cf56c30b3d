//! `softstake run`: the long-running orchestrator.
//!
//! ```text
//!  start ─▶ open store ─▶ servers (gRPC, REST, metrics) ─▶ every tick (UTC clock):
//!    for each token: lease? ─ newly taken ─▶ reload chain state, recover the journal
//!      00:00 ─▶ close every ended day (in order), book custody
//!      every sync_interval (and after a close) ─▶ sync, reconcile, plan:
//!           plan within approval ─▶ execute;  above ─▶ stored as proposed (ApprovePlan)
//!           approved plan still current ─▶ execute;  stale ─▶ superseded
//!      from 00:05 ─▶ distribute each closed day (sync first), retried until done;
//!      08:00 passed and not paid ─▶ distribution_late alert
//!  SIGTERM/SIGINT ─▶ finish the running step, save chain state, release leases, stop servers
//! ```
//!
//! Time comes from [`DaemonClock`]: the wall clock, or a manual clock moved through
//! `Admin.SetClock` (`--manual-clock`, for tests and drills).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{error, info, warn};

use softstake_core::{Day, Timestamp, TokenConfig};
use softstake_store::{PlanRecord, PlanStatus, Store};

use crate::api::auth::AuthLayer;
use crate::api::grpc::Api;
use crate::api::metrics::{self, PrometheusObserver};
use crate::api::{binance, pb, AppState, DaemonClock};
use crate::chains::{Chains, SIM_GENESIS_UNIX_SECS};
use crate::clock::{Clock, ManualClock, SystemClock};
use crate::config::NetworkConfig;
use crate::lease::{LeaseState, Leases};
use crate::treasury::executor::Executor;
use crate::treasury::{self as tr};

/// Options of `softstake run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Database URL.
    pub db_url: String,
    /// Start with a manual clock at this time (moved by `Admin.SetClock`).
    pub manual_clock: Option<Timestamp>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(cfg: NetworkConfig, opts: RunOptions) -> Result<()> {
    let store = Store::open(&opts.db_url)
        .await
        .with_context(|| format!("opening the store at {}", crate::commands::redact_url(&opts.db_url)))?;
    let clock = match opts.manual_clock {
        Some(t) => DaemonClock::Manual(ManualClock::new(t)),
        None => DaemonClock::System(SystemClock),
    };
    let handle = metrics::install()?;
    let genesis = Timestamp::from_unix_secs(SIM_GENESIS_UNIX_SECS)?;
    let chains = Arc::new(Chains::build(&cfg, true, genesis, Some(Arc::new(PrometheusObserver)))?);
    let state = AppState {
        store: store.clone(),
        cfg: Arc::new(cfg),
        clock,
        chains,
        ready: Arc::new(AtomicBool::new(false)),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut servers = spawn_servers(&state, handle, stop_rx.clone()).await?;
    servers.extend(spawn_feed(&state, stop_rx.clone()).await?);
    let leases = Leases::new(store.clone());
    let mut scheduler = Scheduler {
        state: state.clone(),
        leases,
        last_sync: BTreeMap::new(),
    };
    state.ready.store(true, Ordering::SeqCst);
    info!(network = %state.cfg.network, tokens = state.chains.tokens().count(), "softstake daemon running");
    let mut tick = tokio::time::interval(Duration::from_secs(state.cfg.service.tick_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut signals = Signals::new()?;
    loop {
        tokio::select! {
            _ = tick.tick() => scheduler.cycle().await,
            why = signals.recv() => {
                info!(signal = why, "shutting down: the running step finished, saving chain state");
                break;
            }
        }
    }
    state.ready.store(false, Ordering::SeqCst);
    if let Err(e) = state.chains.save() {
        error!(error = %format!("{e:#}"), "saving chain state");
    }
    scheduler.leases.release_all().await;
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    store.close().await;
    info!("softstake daemon stopped");
    Ok(())
}

struct Signals {
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals> {
        Ok(Signals {
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    }
}

async fn spawn_servers(
    state: &AppState,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    stop: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let svc = &state.cfg.service;
    let grpc_addr: SocketAddr = svc
        .grpc_addr
        .parse()
        .with_context(|| format!("service.grpc_addr {:?}", svc.grpc_addr))?;
    let rest_addr: SocketAddr = svc
        .rest_addr
        .parse()
        .with_context(|| format!("service.rest_addr {:?}", svc.rest_addr))?;
    let metrics_addr: SocketAddr = svc
        .metrics_addr
        .parse()
        .with_context(|| format!("service.metrics_addr {:?}", svc.metrics_addr))?;
    let api = Api::new(state.clone());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::treasury_server::TreasuryServer<Api>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut builder = tonic::transport::Server::builder();
    if let (Some(cert), Some(key)) = (&svc.tls_cert, &svc.tls_key) {
        let cert = std::fs::read(cert).with_context(|| format!("service.tls_cert {cert}"))?;
        let key = std::fs::read(key).with_context(|| format!("service.tls_key {key}"))?;
        builder = builder.tls_config(
            tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(cert, key)),
        )?;
    }
    let router = builder
        .layer(AuthLayer::new(&svc.clients))
        .add_service(health)
        .add_service(reflection)
        .add_service(pb::accounts_server::AccountsServer::new(api.clone()))
        .add_service(pb::balances_server::BalancesServer::new(api.clone()))
        .add_service(pb::rewards_server::RewardsServer::new(api.clone()))
        .add_service(pb::treasury_server::TreasuryServer::new(api.clone()))
        .add_service(pb::admin_server::AdminServer::new(api));
    let grpc_listener = tokio::net::TcpListener::bind(grpc_addr)
        .await
        .with_context(|| format!("binding gRPC on {grpc_addr}"))?;
    let rest_listener = tokio::net::TcpListener::bind(rest_addr)
        .await
        .with_context(|| format!("binding REST on {rest_addr}"))?;
    let metrics_listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .with_context(|| format!("binding metrics on {metrics_addr}"))?;
    info!(grpc = %grpc_addr, rest = %rest_addr, metrics = %metrics_addr, "listening");
    let wait = |mut rx: watch::Receiver<bool>| async move {
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                break;
            }
        }
    };
    let g = tokio::spawn({
        let stop = stop.clone();
        async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(grpc_listener);
            if let Err(e) = router.serve_with_incoming_shutdown(incoming, wait(stop)).await {
                error!(error = %e, "gRPC server stopped");
            }
        }
    });
    let r = tokio::spawn({
        let (app, stop) = (binance::router(state.clone()), stop.clone());
        async move {
            if let Err(e) = axum::serve(rest_listener, app).with_graceful_shutdown(wait(stop)).await {
                error!(error = %e, "REST server stopped");
            }
        }
    });
    let m = tokio::spawn({
        let app = metrics::router(state.clone(), handle);
        async move {
            if let Err(e) = axum::serve(metrics_listener, app)
                .with_graceful_shutdown(wait(stop))
                .await
            {
                error!(error = %e, "metrics server stopped");
            }
        }
    });
    Ok(vec![g, r, m])
}

/// One balance-feed consumer per token when `[feed.nats]` is configured. Every instance
/// consumes (the durable consumer shares the messages out; ingest is idempotent and
/// serialized per token-day in the store), so it needs no lease.
async fn spawn_feed(state: &AppState, stop: watch::Receiver<bool>) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let Some(feed) = &state.cfg.feed else {
        return Ok(Vec::new());
    };
    let nats = &feed.nats;
    let tokens: Vec<String> = match &nats.tokens {
        Some(t) => t.clone(),
        None => state.chains.tokens().map(str::to_string).collect(),
    };
    let f = Arc::new(crate::feed::Feed::connect(nats, &state.cfg.registry, state.store.clone()).await?);
    Ok(tokens
        .into_iter()
        .map(|token| {
            let (f, stop) = (f.clone(), stop.clone());
            tokio::spawn(async move {
                if let Err(e) = f.run(&token, stop).await {
                    error!(token = %token, error = %format!("{e:#}"), "balance feed consumer stopped");
                }
            })
        })
        .collect())
}

/// The per-tick work.
struct Scheduler {
    state: AppState,
    leases: Leases,
    /// When each token's treasury step last ran, on the wall clock: the cadence is
    /// operational, while business time (days, payouts) follows the daemon clock.
    last_sync: BTreeMap<String, Instant>,
}

impl Scheduler {
    async fn cycle(&mut self) {
        let now = self.state.clock.now();
        if let Err(e) = self.state.chains.advance_sims(now) {
            error!(error = %format!("{e:#}"), "advancing simulated chains");
        }
        let tokens: Vec<String> = self.state.chains.tokens().map(str::to_string).collect();
        for token in tokens {
            match self.leases.try_acquire(&token).await {
                Ok(LeaseState::Standby) => {
                    metrics::record_leader(&token, false);
                    continue;
                }
                Ok(LeaseState::Acquired) => {
                    if let Err(e) = self.take_over(&token).await {
                        error!(token = %token, error = %format!("{e:#}"), "taking over the token");
                        continue;
                    }
                }
                Ok(LeaseState::Held) => {}
                Err(e) => {
                    error!(token = %token, error = %format!("{e:#}"), "leader lease");
                    continue;
                }
            }
            metrics::record_leader(&token, true);
            if let Err(e) = self.step(&token, now).await {
                error!(token = %token, error = %format!("{e:#}"), "daily cycle step failed; retried next tick");
            }
            if let Err(e) = self.state.chains.save_token(&token) {
                error!(token = %token, error = %format!("{e:#}"), "saving chain state");
            }
        }
    }

    /// A lease just taken: continue from the chain state the previous leader saved, and
    /// resolve its open operations before anything else.
    async fn take_over(&mut self, token: &str) -> Result<()> {
        self.state.chains.reload(token)?;
        self.state.chains.advance_sims(self.state.clock.now())?;
        let handle = self.state.chains.get(token)?.clone();
        let recovered = Executor::new(&self.state.store, handle.adapter.as_ref(), handle.exec.clone())
            .recover()
            .await?;
        info!(token = %token, recovered = recovered.len(), "took over the token");
        self.last_sync.remove(token);
        Ok(())
    }

    async fn step(&mut self, token: &str, now: Timestamp) -> Result<()> {
        let cfg = self.state.cfg.clone();
        let t = cfg.registry.get(token)?;
        let closed = self.close_days(t, now).await?;
        let interval = cfg.chains.get(token).map(|c| c.sync_interval_secs).unwrap_or(300);
        let due = self
            .last_sync
            .get(token)
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(interval));
        if closed || due {
            self.treasury(t, now).await?;
            self.last_sync.insert(token.to_string(), Instant::now());
        }
        self.distribute(t, now).await
    }

    /// Closes every ended day not closed yet, in order (the first close is yesterday).
    async fn close_days(&self, t: &TokenConfig, now: Timestamp) -> Result<bool> {
        let store = &self.state.store;
        let cfg = &self.state.cfg;
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
            self.state.chains.mirror_custody(&t.symbol, delta)?;
            info!(token = %t.symbol, day = %next, eligible_accounts = out.eligible_accounts, "closed day");
            closed_any = true;
            next = next.next();
        }
        Ok(closed_any)
    }

    async fn treasury(&self, t: &TokenConfig, now: Timestamp) -> Result<()> {
        let store = &self.state.store;
        let cfg = &self.state.cfg;
        let handle = self.state.chains.get(&t.symbol)?.clone();
        let exec = handle.exec.clone();
        let chain = handle.adapter.as_ref();
        let sync = tr::sync_token(store, chain, now).await?;
        let lines = tr::drift(store, &t.symbol, &sync.positions, cfg.treasury.drift_tolerance_bps).await?;
        metrics::record_drift(
            t,
            lines
                .iter()
                .map(|l| l.drift)
                .max_by_key(|d| d.unsigned_abs())
                .unwrap_or(0),
        );
        if store.open_operations(Some(&t.symbol)).await?.is_empty() {
            tr::reconcile_token(store, chain, t, cfg.treasury.drift_tolerance_bps, now).await?;
        }
        let plan = tr::plan_token(store, chain, t, cfg.treasury.outflow_history_days, now).await?;
        metrics::record_plan(t, &plan);
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
    async fn distribute(&self, t: &TokenConfig, now: Timestamp) -> Result<()> {
        let store = &self.state.store;
        let svc = &self.state.cfg.service;
        for day in store.undistributed_days(&t.symbol).await? {
            let opens = day.end().checked_add_secs(svc.distribute_after_secs as i64)?;
            if now < opens {
                break;
            }
            let chain = self.state.chains.get(&t.symbol)?.adapter.clone();
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
                    self.flag_late(t, day, now).await?;
                    return Err(e.into());
                }
            }
        }
        match store.undistributed_days(&t.symbol).await?.first() {
            Some(day) => self.flag_late(t, *day, now).await,
            None => {
                metrics::record_distribution_late(&t.symbol, false);
                Ok(())
            }
        }
    }

    /// Raises the late-payout alert (and metric) when `day` is unpaid after 08:00 UTC.
    async fn flag_late(&self, t: &TokenConfig, day: Day, now: Timestamp) -> Result<()> {
        let late = self.deadline_passed(day, now)?;
        metrics::record_distribution_late(&t.symbol, late);
        if late {
            let msg = format!("{} {day} is not paid and 08:00 UTC has passed", t.symbol);
            self.state
                .store
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
        Ok(now
            > day
                .end()
                .checked_add_secs(self.state.cfg.service.distribute_deadline_secs as i64)?)
    }
}
