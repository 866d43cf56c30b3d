//! `softstake run`: the long-running process around the orchestrator's
//! [`Scheduler`].
//!
//! ```text
//!  start ─▶ open store ─▶ servers (gRPC, REST, metrics), feed, lease renewer
//!        ─▶ first tick (leases taken, journals recovered) ─▶ /readyz ready
//!        ─▶ every tick_secs: Scheduler::cycle (close, sync, reconcile, plan, execute, distribute)
//!  SIGTERM/SIGINT ─▶ finish the running step, save chain state, release leases, stop servers
//! ```
//!
//! Time comes from [`DaemonClock`]: the wall clock, or a manual clock moved through
//! `Admin.SetClock` (`--manual-clock`, for tests and drills).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::{error, info, warn};

use softstake_core::Timestamp;
use softstake_orchestrator::scheduler::{spawn_renewer, Scheduler, SchedulerConfig};
use softstake_store::Store;

use crate::api::auth::AuthLayer;
use crate::api::grpc::Api;
use crate::api::metrics::{self, PrometheusObserver};
use crate::api::{binance, pb, AppState, DaemonClock};
use crate::chains::SIM_GENESIS_UNIX_SECS;
use crate::clock::{ManualClock, SystemClock};
use crate::config::NetworkConfig;
use crate::lease::{holder_id, Leases};
use crate::treasury::executor::Drill;

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
    cfg.check_deployment(opts.manual_clock.is_some())
        .map_err(anyhow::Error::msg)?;
    // One process-wide TLS provider (ring): with both rustls backends in the dependency
    // graph, a library asking rustls for "the default" (tonic's TLS) would otherwise panic.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Store::open(&opts.db_url)
        .await
        .with_context(|| format!("opening the store at {}", crate::commands::redact_url(&opts.db_url)))?;
    let clock = match opts.manual_clock {
        Some(t) => DaemonClock::Manual(ManualClock::new(t)),
        None => DaemonClock::System(SystemClock),
    };
    let handle = metrics::install()?;
    let genesis = Timestamp::from_unix_secs(SIM_GENESIS_UNIX_SECS)?;
    let mut chains = crate::chains::build(&cfg, true, genesis, Some(Arc::new(PrometheusObserver)))?;
    if let Some(drill) = Drill::from_env()? {
        warn!(drill = ?drill, "SOFTSTAKE_CRASH_AT is set: a failover drill is armed");
        chains.arm_drill(Arc::new(drill));
    }
    let chains = Arc::new(chains);
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
    let ttl = Duration::from_secs(state.cfg.service.lease_ttl_secs);
    let leases = Arc::new(Leases::new(
        store.clone(),
        holder_id("softstake run"),
        ttl,
        Arc::new(SystemClock),
    ));
    servers.push(spawn_renewer(leases.clone(), ttl, stop_rx.clone()));
    let mut scheduler = Scheduler::new(
        store.clone(),
        state.chains.clone(),
        Arc::new(state.clock.clone()),
        Arc::new(SystemClock),
        scheduler_config(&state.cfg),
        leases.clone(),
    );
    info!(network = %state.cfg.network, tokens = state.chains.tokens().count(), holder = %leases.holder(), "softstake daemon starting");
    // Ready only once every token this instance leads has its journal recovered.
    scheduler.cycle().await;
    state.ready.store(true, Ordering::SeqCst);
    info!(network = %state.cfg.network, "softstake daemon running");
    let mut tick = tokio::time::interval(Duration::from_secs(state.cfg.service.tick_secs.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut signals = Signals::new()?;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let started = std::time::Instant::now();
                scheduler.cycle().await;
                metrics::record_cycle(started.elapsed());
            }
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
    leases.release_all().await;
    let _ = stop_tx.send(true);
    for s in servers {
        let _ = s.await;
    }
    store.close().await;
    info!("softstake daemon stopped");
    Ok(())
}

/// What the scheduler reads of the network configuration.
pub fn scheduler_config(cfg: &NetworkConfig) -> SchedulerConfig {
    SchedulerConfig {
        registry: cfg.registry.clone(),
        sync_interval_secs: cfg
            .chains
            .iter()
            .map(|(t, c)| (t.clone(), c.sync_interval_secs))
            .collect::<BTreeMap<_, _>>(),
        distribute_after_secs: cfg.service.distribute_after_secs,
        distribute_deadline_secs: cfg.service.distribute_deadline_secs,
        drift_tolerance_bps: cfg.treasury.drift_tolerance_bps,
        outflow_history_days: cfg.treasury.outflow_history_days,
        max_accounts_per_close: cfg.max_accounts_per_close,
    }
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

/// The REST API's TLS settings when `service.tls_cert`/`tls_key` are set: rustls with the
/// ring provider, TLS 1.2 and 1.3, the certificate chain and key from PEM files.
///
/// # Errors
/// A file that cannot be read or holds no certificate or key; a key rustls refuses.
fn rest_tls_config(svc: &crate::config::ServiceConfig) -> Result<Option<axum_server::tls_rustls::RustlsConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&svc.tls_cert, &svc.tls_key) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("service.tls_cert {cert}: {e}"))?;
    if chain.is_empty() {
        anyhow::bail!("service.tls_cert {cert}: no certificate in the file");
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| anyhow::anyhow!("service.tls_key {key}: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("service.tls_cert/tls_key: rustls refused the pair")?;
    Ok(Some(axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(
        config,
    ))))
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
    let limits = &svc.limits;
    let mut builder = tonic::transport::Server::builder()
        .timeout(Duration::from_millis(limits.request_timeout_ms))
        .concurrency_limit_per_connection(limits.max_concurrent_requests);
    if let (Some(cert), Some(key)) = (&svc.tls_cert, &svc.tls_key) {
        let cert = std::fs::read(cert).with_context(|| format!("service.tls_cert {cert}"))?;
        let key = std::fs::read(key).with_context(|| format!("service.tls_key {key}"))?;
        builder = builder.tls_config(
            tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(cert, key)),
        )?;
    }
    let max_msg = limits.max_request_bytes;
    let router = builder
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(AuthLayer::new(&svc.clients).with_rate_limit(limits.grpc_calls_per_client_per_sec))
        .add_service(health)
        .add_service(reflection)
        .add_service(pb::accounts_server::AccountsServer::new(api.clone()).max_decoding_message_size(max_msg))
        .add_service(pb::balances_server::BalancesServer::new(api.clone()).max_decoding_message_size(max_msg))
        .add_service(pb::rewards_server::RewardsServer::new(api.clone()).max_decoding_message_size(max_msg))
        .add_service(pb::treasury_server::TreasuryServer::new(api.clone()).max_decoding_message_size(max_msg))
        .add_service(pb::admin_server::AdminServer::new(api).max_decoding_message_size(max_msg));
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
    let rest_tls = rest_tls_config(svc)?;
    let r = tokio::spawn({
        let (app, stop) = (binance::router(state.clone()), stop.clone());
        async move {
            let served = match rest_tls {
                None => {
                    axum::serve(rest_listener, app.into_make_service_with_connect_info::<SocketAddr>())
                        .with_graceful_shutdown(wait(stop))
                        .await
                }
                Some(tls) => {
                    let handle = axum_server::Handle::new();
                    tokio::spawn({
                        let handle = handle.clone();
                        async move {
                            wait(stop).await;
                            handle.graceful_shutdown(Some(Duration::from_secs(10)));
                        }
                    });
                    match rest_listener
                        .into_std()
                        .and_then(|l| axum_server::from_tcp_rustls(l, tls))
                    {
                        Ok(server) => {
                            server
                                .handle(handle)
                                .serve(app.into_make_service_with_connect_info::<SocketAddr>())
                                .await
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            if let Err(e) = served {
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
