//! `softstake simulate`: a deterministic whole-system simulator in the spirit of
//! TigerBeetle's VOPR and FoundationDB's simulation testing.
//!
//! One process runs the daemon's own [`Scheduler`] (the orchestrator crate: the same
//! code as `softstake run`) against the simulated chain of every token, a real store
//! (an SQLite file, or a fresh PostgreSQL database per seed with `--db`), a manual clock
//! and a balance feed drawn from the bundled real stake distribution (the demo's world).
//! Everything random comes from the seed, so a failing seed replays.
//!
//! ```text
//!  seed ─▶ world (accounts, holdings) ─▶ per day: feed (deposits, withdrawals, waves,
//!          late/duplicate/out-of-order delivery) ─▶ ticks 00:01 and 00:06:
//!          faults (crash + restart, crash at a journal step, store errors, a stale
//!          leader, clock jumps; chain timeouts/rejections/lost replies/delayed finality/
//!          slashing in the chain) ─▶ Scheduler::cycle ─▶ invariants
//!  quiet days (no faults) ─▶ final invariants: every closed day paid, effects exact
//! ```
//!
//! Invariants checked after every tick: conservation per token to the base unit (Σ
//! payouts + fees + carry = realized rewards), every accepted balance event counted by
//! its day's close (each closed total against a model of the accepted events), no day
//! paid twice, no operation with two on-chain effects, the ledger equal to the chain's
//! positions or a drift alert open, and the API's reads equal to the store's. At the
//! end, after the quiet days: every closed day paid, every confirmed operation with
//! exactly one effect and every failed one with none, and a settled buffer at its target
//! (within the planner's watermark) or an alert open.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tonic::Request;

use softstake_adapters::sim::FaultConfig;
use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp};
use softstake_orchestrator::chains::Chains;
use softstake_orchestrator::clock::{Clock, ManualClock};
use softstake_orchestrator::lease::{holder_id, Leases};
use softstake_orchestrator::scheduler::Scheduler;
use softstake_orchestrator::treasury::executor::{CrashMode, CrashPoint, Drill};
use softstake_orchestrator::treasury::{self as tr};
use softstake_store::{PlanStatus, Store, StoreError};

use crate::api::grpc::Api;
use crate::api::{pb, AppState, DaemonClock};
use crate::config::NetworkConfig;
use crate::demo::{DemoOptions, World};

/// Options of `softstake simulate`.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// Seeds to run.
    pub seeds: Range<u64>,
    /// Days per seed (with faults), before the quiet days.
    pub days: u32,
    /// Days at the end with no injected fault, after which every closed day must be paid.
    pub quiet_days: u32,
    /// Accounts in each seed's world.
    pub accounts: u32,
    /// Tokens (simulated chains of the network config).
    pub tokens: Vec<String>,
    /// Each seed simulates this many of `tokens`, drawn from the seed (default: all).
    pub tokens_per_seed: Option<usize>,
    /// A PostgreSQL server URL: each seed gets a new database on it (dropped after);
    /// default: an SQLite file per seed.
    pub pg_url: Option<String>,
    /// Seeds run at once.
    pub jobs: usize,
    /// Where to write the report (Markdown).
    pub report: Option<PathBuf>,
}

/// Mixed into a chain's seed for its reorg rate (a stream of its own).
const REORG_STREAM: u64 = 0x7265_6f72_6721;

/// Fault kinds, as counted in the report.
const FAULT_KINDS: [&str; 12] = [
    "crash_restart",
    "crash_at_journal_step",
    "store_write_error",
    "stale_leader",
    "day_skipped",
    "week_gap",
    "late_delivery",
    "duplicate_delivery",
    "out_of_order_delivery",
    "withdrawal_wave",
    "slashing",
    "chain_faults_armed",
];

/// What one seed did.
#[derive(Debug, Clone, Default)]
pub struct SeedStats {
    /// Simulated days.
    pub days: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Restarts after which the new leader recovered the journal.
    pub crashes_recovered: u64,
    /// Invariant checks made.
    pub checks: u64,
    /// Writes of a stale leader refused.
    pub stale_writes_refused: u64,
    /// Chain faults the simulated chains injected.
    pub chain_faults: u64,
    /// Transactions the simulated chains dropped in a reorg (then sent again).
    pub chain_reorgs: u64,
}

/// A seed that broke an invariant (or could not run).
#[derive(Debug, Clone)]
pub struct SeedFailure {
    /// The seed.
    pub seed: u64,
    /// What broke.
    pub message: String,
    /// The last steps before it, oldest first.
    pub trace: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    /// Seeds run.
    pub seeds: u64,
    /// Sum of the seeds' stats.
    pub total: SeedStats,
    /// Failures.
    pub failures: Vec<SeedFailure>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Ticks the new process gets to take a token over before a stale-leader check is dropped.
const MAX_TAKEOVER_TICKS: usize = 3;
/// Bound on the seconds a credit is moved to avoid an instant its account already has.
const MAX_CREDIT_SHIFT_SECS: usize = 3_600;
/// Steps kept for a failure's trace.
const TRACE_STEPS: usize = 40;
/// Lease time-to-live on the simulated clock.
const LEASE_TTL: Duration = Duration::from_secs(30);
/// Most delivery attempts of one feed batch (store faults are retried, as the feed does).
const MAX_DELIVERIES: u32 = 8;

/// Runs every seed (`jobs` at once) and prints the report; fails if any seed failed.
///
/// # Errors
/// A bad option, or any seed that broke an invariant (its replay command and trace are
/// printed first).
pub async fn run(cfg: &NetworkConfig, opts: SimulateOptions) -> Result<SimReport> {
    validate(cfg, &opts)?;
    let started = Instant::now();
    let pb = crate::progress::bar(opts.seeds.end - opts.seeds.start, "seeds");
    let cfg = Arc::new(cfg.clone());
    let opts = Arc::new(opts);
    let mut report = SimReport::default();
    let mut next = opts.seeds.start;
    let mut running = tokio::task::JoinSet::new();
    loop {
        while next < opts.seeds.end && running.len() < opts.jobs.max(1) {
            let (cfg, opts, seed) = (cfg.clone(), opts.clone(), next);
            running.spawn(async move { (seed, run_seed(&cfg, &opts, seed).await) });
            next += 1;
        }
        let Some(done) = running.join_next().await else { break };
        let (seed, outcome) = done.context("a seed's task panicked")?;
        report.seeds += 1;
        match outcome {
            Ok(s) => add(&mut report.total, &s),
            Err(f) => {
                pb.suspend(|| print_failure(&opts, &f));
                report.failures.push(SeedFailure { seed, ..f });
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    report.elapsed = started.elapsed();
    println!("{}", render(&opts, &report, false));
    if let Some(path) = &opts.report {
        std::fs::write(path, render(&opts, &report, true)).with_context(|| format!("writing {}", path.display()))?;
        println!("report written to {}", path.display());
    }
    if !report.failures.is_empty() {
        bail!("{} of {} seeds failed", report.failures.len(), report.seeds);
    }
    Ok(report)
}

fn validate(cfg: &NetworkConfig, opts: &SimulateOptions) -> Result<()> {
    if opts.seeds.is_empty() {
        bail!("--seeds {}..{} is empty", opts.seeds.start, opts.seeds.end);
    }
    if opts.days == 0 || opts.accounts == 0 || opts.tokens_per_seed == Some(0) || opts.jobs == 0 {
        bail!("--days, --accounts, --tokens-per-seed and --jobs must be at least 1");
    }
    for t in &opts.tokens {
        match cfg.chains.get(t) {
            Some(c) if c.adapter == "sim" => {}
            Some(c) => bail!(
                "--tokens: {t} runs on the {} adapter; the simulator needs simulated chains",
                c.adapter
            ),
            None => bail!("--tokens: {t} has no [chains.{t}] in {}", cfg.origin),
        }
    }
    Ok(())
}

fn add(total: &mut SeedStats, s: &SeedStats) {
    total.days += s.days;
    for (k, v) in &s.faults {
        *total.faults.entry(k).or_default() += v;
    }
    total.crashes_recovered += s.crashes_recovered;
    total.checks += s.checks;
    total.stale_writes_refused += s.stale_writes_refused;
    total.chain_faults += s.chain_faults;
    total.chain_reorgs += s.chain_reorgs;
}

fn replay_command(opts: &SimulateOptions, seed: u64) -> String {
    let db = match &opts.pg_url {
        Some(u) => format!(" --db {}", crate::commands::redact_url(u)),
        None => String::new(),
    };
    let per_seed = opts
        .tokens_per_seed
        .map(|n| format!(" --tokens-per-seed {n}"))
        .unwrap_or_default();
    format!(
        "softstake{db} simulate --seed {seed} --days {} --quiet-days {} --accounts {} --tokens {}{per_seed}",
        opts.days,
        opts.quiet_days,
        opts.accounts,
        opts.tokens.join(",")
    )
}

fn print_failure(opts: &SimulateOptions, f: &SeedFailure) {
    eprintln!("\nseed {} FAILED: {}", f.seed, f.message);
    eprintln!("replay: {}", replay_command(opts, f.seed));
    eprintln!("last {} steps:", f.trace.len());
    for t in &f.trace {
        eprintln!("  {t}");
    }
}

/// The report as a terminal table, or as Markdown (`--report`).
fn render(opts: &SimulateOptions, r: &SimReport, markdown: bool) -> String {
    let mut t = crate::report::table(&["", "value"]);
    if markdown {
        t.load_preset(comfy_table::presets::ASCII_MARKDOWN)
            .set_content_arrangement(comfy_table::ContentArrangement::Disabled);
    }
    let row = |t: &mut comfy_table::Table, k: &str, v: String| {
        t.add_row(vec![k.to_string(), v]);
    };
    row(
        &mut t,
        "seeds",
        format!("{} ({}..{})", r.seeds, opts.seeds.start, opts.seeds.end),
    );
    row(
        &mut t,
        "simulated days",
        format!(
            "{} ({} + {} quiet per seed, tokens {})",
            r.total.days,
            opts.days,
            opts.quiet_days,
            opts.tokens.join(",")
        ),
    );
    for k in FAULT_KINDS {
        row(
            &mut t,
            &format!("faults: {k}"),
            r.total.faults.get(k).copied().unwrap_or(0).to_string(),
        );
    }
    row(
        &mut t,
        "chain faults injected by the simulated chains",
        r.total.chain_faults.to_string(),
    );
    row(
        &mut t,
        "of which reorgs that dropped a landed transaction",
        r.total.chain_reorgs.to_string(),
    );
    row(&mut t, "crashes recovered", r.total.crashes_recovered.to_string());
    row(
        &mut t,
        "stale-leader writes refused",
        r.total.stale_writes_refused.to_string(),
    );
    row(&mut t, "invariant checks", r.total.checks.to_string());
    row(&mut t, "failures", r.failures.len().to_string());
    row(&mut t, "wall time", format!("{:.1} s", r.elapsed.as_secs_f64()));
    let mut out = format!(
        "softstake simulate: {} seeds × {} days\n{t}",
        r.seeds,
        opts.days + opts.quiet_days
    );
    for f in &r.failures {
        out.push_str(&format!(
            "\nseed {}: {}\n  replay: {}",
            f.seed,
            f.message,
            replay_command(opts, f.seed)
        ));
    }
    out
}

/// The store of one seed: an SQLite file in a temporary folder, or a new PostgreSQL
/// database dropped afterwards.
struct SeedStore {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl SeedStore {
    async fn open(opts: &SimulateOptions, seed: u64) -> Result<SeedStore> {
        match &opts.pg_url {
            None => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}/sim.db", dir.path().display());
                Ok(SeedStore {
                    store: Store::open(&url).await?,
                    _dir: Some(dir),
                    pg: None,
                })
            }
            Some(admin) => {
                use sqlx::Connection;
                let name = format!("softstake_sim_{}_{seed}", std::process::id());
                let mut c = sqlx::PgConnection::connect(admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
                let store = Store::open(&format!("{base}/{name}")).await?;
                Ok(SeedStore {
                    store,
                    _dir: None,
                    pg: Some((admin.clone(), name)),
                })
            }
        }
    }

    async fn close(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.pg {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut c)
                    .await;
            }
        }
    }
}

async fn run_seed(cfg: &NetworkConfig, opts: &SimulateOptions, seed: u64) -> Result<SeedStats, SeedFailure> {
    let seed_store = SeedStore::open(opts, seed).await.map_err(|e| SeedFailure {
        seed,
        message: format!("opening the store: {e:#}"),
        trace: Vec::new(),
    })?;
    let mut sim = match Sim::new(cfg, opts, seed, seed_store.store.clone()) {
        Ok(s) => s,
        Err(e) => {
            seed_store.close().await;
            return Err(SeedFailure {
                seed,
                message: format!("setting up: {e:#}"),
                trace: Vec::new(),
            });
        }
    };
    let outcome = sim.run().await;
    let trace = sim.trace.iter().cloned().collect();
    let stats = sim.stats.clone();
    drop(sim);
    seed_store.close().await;
    outcome.map(|()| stats).map_err(|e| SeedFailure {
        seed,
        message: format!("{e:#}"),
        trace,
    })
}

/// One seed's world and system.
struct Sim {
    cfg: NetworkConfig,
    /// This seed's tokens (all of `--tokens`, or `--tokens-per-seed` of them).
    tokens: Vec<String>,
    opts: SimulateOptions,
    rng: ChaCha8Rng,
    store: Store,
    clock: ManualClock,
    chains: Arc<Chains>,
    drill: Arc<Drill>,
    scheduler: Scheduler,
    /// The gRPC API's handlers over the same store and chains (reads checked against the
    /// store; the operator's approvals and acknowledgements).
    api: Api,
    world: World,
    /// Per (account, token): accepted events in time order (the model of the feed).
    model: BTreeMap<(String, String), BTreeMap<Timestamp, Amount>>,
    /// Closed days already checked, per token.
    checked_closes: BTreeSet<(String, Day)>,
    /// Distributed days already checked, per token.
    checked_payouts: BTreeSet<(String, Day)>,
    /// Tokens the leader reconciled in the last tick (the ledger-vs-chain invariant holds
    /// right after a reconciliation).
    reconciled: BTreeSet<String>,
    /// A journal-step crash is armed.
    drill_armed: bool,
    /// Batches held back for late delivery.
    late: Vec<Vec<BalanceEvent>>,
    /// Payouts credited to spot balances, delivered with the next day.
    credits: Vec<BalanceEvent>,
    /// Credits made so far (each at its own second).
    credit_seq: i64,
    start: Day,
    trace: VecDeque<String>,
    stats: SeedStats,
    faults_on: bool,
}

impl Sim {
    fn new(cfg: &NetworkConfig, opts: &SimulateOptions, seed: u64, store: Store) -> Result<Sim> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let start = Day::from_ymd(2025, 6, 2)?;
        let before = start.prev();
        let genesis = before.start().checked_add_secs(-30 * 86_400)?;
        let clock = ManualClock::new(before.start().checked_add_secs(43_200)?);
        let drill = Arc::new(Drill::default());
        let mut map = BTreeMap::new();
        let mut tokens = opts.tokens.clone();
        if let Some(n) = opts.tokens_per_seed.filter(|n| *n < tokens.len()) {
            tokens.shuffle(&mut rng);
            tokens.truncate(n.max(1));
            tokens.sort();
        }
        let mut sub = cfg.clone();
        sub.chains.retain(|k, _| tokens.contains(k));
        for t in &tokens {
            let token = cfg.registry.get(t)?;
            let chain = sub.chains.get_mut(t).context("validated")?;
            // the treasury step runs at every tick; each seed has its own chain history
            chain.sync_interval_secs = 60;
            chain.seed = rng.gen();
            let chain = chain.clone();
            let faults = FaultConfig {
                timeout_bps: rng.gen_range(0..300),
                reject_bps: rng.gen_range(0..150),
                lost_reply_bps: rng.gen_range(0..300),
                delayed_finality_bps: rng.gen_range(0..500),
                finality_polls: rng.gen_range(1..4),
                slashing_bps_per_epoch: rng.gen_range(0..40),
                slash_fraction_bps: rng.gen_range(10..300),
                garbage_bps: rng.gen_range(0..50),
                // from the chain's own seed, so adding reorgs kept every other draw of the
                // seed (and the seeds of earlier reports) as it was
                reorg_bps: ChaCha8Rng::seed_from_u64(chain.seed ^ REORG_STREAM).gen_range(0..200),
            };
            let mut handle = crate::chains::sim_handle(token, &chain, genesis, faults)?;
            handle.exec.drill = Some(drill.clone());
            handle.exec.max_polls = 4;
            map.insert(t.clone(), handle);
        }
        let chains = Arc::new(Chains::new(map, None));
        let demo = DemoOptions {
            days: opts.days + opts.quiet_days,
            accounts: opts.accounts,
            seed,
            warmup_days: 0,
            start,
            tokens: Some(tokens.clone()),
            ..DemoOptions::default()
        };
        let world = World::new(&sub, &tokens, &demo)?;
        let scheduler = new_scheduler(&sub, &store, &chains, &clock);
        let api = Api::new(AppState {
            store: store.clone(),
            cfg: Arc::new(sub.clone()),
            clock: DaemonClock::Manual(clock.clone()),
            chains: chains.clone(),
            ready: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        });
        Ok(Sim {
            tokens,
            api,
            cfg: sub,
            opts: opts.clone(),
            rng,
            store,
            clock,
            chains,
            drill,
            scheduler,
            world,
            model: BTreeMap::new(),
            checked_closes: BTreeSet::new(),
            checked_payouts: BTreeSet::new(),
            reconciled: BTreeSet::new(),
            drill_armed: false,
            late: Vec::new(),
            credits: Vec::new(),
            credit_seq: 0,
            start,
            trace: VecDeque::new(),
            stats: SeedStats::default(),
            faults_on: true,
        })
    }

    fn note(&mut self, s: String) {
        if self.trace.len() == TRACE_STEPS {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{} {s}", self.clock.now()));
    }

    fn fault(&mut self, kind: &'static str) {
        *self.stats.faults.entry(kind).or_default() += 1;
        self.note(format!("fault: {kind}"));
    }

    async fn run(&mut self) -> Result<()> {
        self.store.upsert_accounts(&self.world.accounts).await?;
        let opening = self.world.opening_events(self.start.prev())?;
        self.deliver(opening).await?;
        self.tick().await?;
        let total = self.opts.days + self.opts.quiet_days;
        let mut skip_until: Option<Day> = None;
        for i in 0..total {
            let day = self.start.plus_days(i64::from(i));
            if i == self.opts.days {
                self.quiet();
            }
            self.feed_day(day).await?;
            if skip_until.is_some_and(|d| day < d) {
                continue;
            }
            skip_until = None;
            if self.faults_on && self.rng.gen_range(0..100) < 3 {
                self.fault("day_skipped");
                continue;
            }
            if self.faults_on && i + 9 < self.opts.days && self.rng.gen_range(0..400) < 3 {
                self.fault("week_gap");
                skip_until = Some(day.plus_days(7));
                continue;
            }
            for secs in [60, 360] {
                self.clock.set(day.end().checked_add_secs(secs)?);
                self.inject().await?;
                self.tick().await?;
                self.check_each_tick().await?;
                self.operator().await?;
            }
            self.deliver_late().await?;
            self.check_api().await?;
        }
        // faults have stopped: a few more ticks, then the final invariants
        for h in [2, 6, 12] {
            let end = self.start.plus_days(i64::from(total)).start();
            self.clock.set(end.checked_add_secs(h * 3_600)?);
            self.tick().await?;
            self.operator().await?;
        }
        self.check_final().await
    }

    /// Faults stop: the chains stop failing, pending drills and store faults are cleared.
    fn quiet(&mut self) {
        self.faults_on = false;
        self.drill.disarm();
        self.store.fail_writes([]);
        for t in self.chains.tokens().map(str::to_string).collect::<Vec<_>>() {
            if let Ok(Some(sim)) = self.chains.get(&t).map(|h| h.sim.clone()) {
                sim.set_faults(FaultConfig::default());
            }
        }
        self.note("quiet: faults stop".into());
    }

    async fn tick(&mut self) -> Result<()> {
        self.reconciled.clear();
        self.cycle().await;
        if std::mem::take(&mut self.drill_armed) && !self.drill.disarm() {
            // the armed journal-step crash fired: the process "died" there; restart it
            self.note("crash at a journal step fired; restarting".into());
            self.restart().await?;
        }
        Ok(())
    }

    /// One scheduler tick, noting which tokens it reconciled.
    async fn cycle(&mut self) {
        let before: Vec<u64> = self.tokens.iter().map(|t| self.scheduler.reconciliations(t)).collect();
        self.scheduler.cycle().await;
        for (t, b) in self.tokens.iter().zip(before) {
            if self.scheduler.reconciliations(t) > b {
                self.reconciled.insert(t.clone());
            }
        }
    }

    /// A new process: new leases (holder), the same store and chains. Its first tick
    /// takes the lease with a new generation and recovers the journal.
    async fn restart(&mut self) -> Result<()> {
        let open_before = self.store.open_operations(None).await?.len();
        self.scheduler = new_scheduler(&self.cfg, &self.store, &self.chains, &self.clock);
        // the old lease lapses before the new process ticks
        self.clock.advance_secs(LEASE_TTL.as_secs() as i64 + 1);
        self.cycle().await;
        let held = self.scheduler.leases().held().await;
        if held.len() == self.tokens.len() {
            self.stats.crashes_recovered += 1;
        }
        self.note(format!(
            "restarted: leads {} tokens, {open_before} operations were open",
            held.len()
        ));
        Ok(())
    }

    /// What the treasury users do, through the gRPC API's handlers: approve the plans
    /// waiting for approval, and acknowledge drift alerts (slashing) open since an earlier
    /// day, booking the loss so moves resume.
    async fn operator(&mut self) -> Result<()> {
        use pb::treasury_server::Treasury;
        let now = self.clock.now();
        for p in self.store.plans(None, 50).await? {
            if p.status != PlanStatus::Proposed {
                continue;
            }
            let r = self
                .api
                .approve_plan(Request::new(pb::ApprovePlanRequest {
                    plan_id: p.plan_id.clone(),
                }))
                .await;
            self.note(format!(
                "{}: operator approves plan {}: {}",
                p.token,
                p.plan_id,
                outcome(&r)
            ));
        }
        for a in self.store.alerts(None, false).await? {
            if a.kind != "drift" || a.created_at.day() >= now.day() {
                continue;
            }
            let r = self
                .api
                .acknowledge_drift(Request::new(pb::AcknowledgeDriftRequest { alert_id: a.id }))
                .await;
            self.note(format!(
                "{}: operator acknowledges drift alert {}: {}",
                a.token,
                a.id,
                outcome(&r)
            ));
        }
        Ok(())
    }

    /// Faults before a tick, from the seed.
    async fn inject(&mut self) -> Result<()> {
        if !self.faults_on {
            return Ok(());
        }
        let roll = self.rng.gen_range(0..1_000);
        match roll {
            0..=29 => {
                self.fault("crash_restart");
                self.restart().await?;
            }
            30..=69 => {
                let point = CrashPoint::ALL[self.rng.gen_range(0..CrashPoint::ALL.len())];
                self.drill.arm(point, CrashMode::Error);
                self.drill_armed = true;
                self.fault("crash_at_journal_step");
                self.note(format!("armed a crash at {}", point.as_str()));
            }
            70..=109 => {
                let k = self.rng.gen_range(1..25);
                self.store.fail_writes([k]);
                self.fault("store_write_error");
            }
            110..=129 => self.stale_leader().await?,
            130..=139 => {
                let tokens: Vec<String> = self.chains.tokens().map(str::to_string).collect();
                let t = &tokens[self.rng.gen_range(0..tokens.len())];
                let handle = self.chains.get(t)?.clone();
                if let (Some(sim), Ok(positions)) = (handle.sim.clone(), handle.adapter.positions().await) {
                    if let Some(p) = positions.first() {
                        let lost = sim.inject_slashing(&p.validator, self.rng.gen_range(10..500));
                        self.note(format!("{t}: slashed {lost} at {}", p.validator));
                        self.fault("slashing");
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A leader paused past its lease: a new instance takes over; the old one then tries
    /// to write with its stale generation, and every write must be refused.
    async fn stale_leader(&mut self) -> Result<()> {
        let held = self.scheduler.leases().held().await;
        let Some((token, generation)) = held.into_iter().next() else {
            return Ok(());
        };
        self.fault("stale_leader");
        let stale = self.store.fenced(&token, generation);
        self.restart().await?;
        // The take-over can fail (a store fault on the new leader's lease write); the
        // daemon retries it every tick. Until it succeeds the paused leader is not stale:
        // its generation is still the current one and its writes are rightly accepted.
        let mut ticks = 0;
        while self.generation(&token).await? == generation {
            if ticks == MAX_TAKEOVER_TICKS {
                self.note(format!(
                    "{token}: no take-over after {MAX_TAKEOVER_TICKS} ticks; generation {generation} is not stale"
                ));
                return Ok(());
            }
            self.note(format!("{token}: take-over not done yet; the new process ticks again"));
            self.cycle().await;
            ticks += 1;
        }
        let effects_before = self.effects()?;
        let ops_before = self.store.operations(Some(&token), 10_000).await?.len();
        let t = self.cfg.registry.get(&token)?.clone();
        let now = self.clock.now();
        let chain = self.chains.get(&token)?.clone();
        let mut refused = 0;
        let attempts: Vec<Result<(), anyhow::Error>> = vec![
            stale
                .close_day(&self.cfg.registry, &token, now.day(), now, 1_000_000)
                .await
                .map(|_| ())
                .map_err(Into::into),
            stale
                .raise_alert(&token, "drift", "stale", Amount::ZERO, None, true, now)
                .await
                .map(|_| ())
                .map_err(Into::into),
            async {
                let p = tr::plan_token(&stale, chain.adapter.as_ref(), &t, 90, now).await?;
                tr::execute_plan(
                    &stale,
                    chain.adapter.as_ref(),
                    &p,
                    Some("stale"),
                    chain.exec.clone(),
                    now,
                )
                .await?;
                Ok(())
            }
            .await,
            stale.check_fence().await.map_err(Into::into),
        ];
        for r in attempts {
            match r {
                Err(e) if is_fenced(&e) => refused += 1,
                // nothing planned, nothing written: not a write
                Ok(()) => {}
                Err(e) => {
                    if !e.to_string().contains("has not ended") {
                        self.note(format!("stale attempt ended otherwise: {e:#}"));
                    }
                }
            }
        }
        self.stats.stale_writes_refused += refused;
        self.stats.checks += 1;
        if self.effects()? != effects_before {
            bail!("{token}: a stale leader (generation {generation}) acted on the chain");
        }
        if self.store.operations(Some(&token), 10_000).await?.len() != ops_before {
            bail!("{token}: a stale leader (generation {generation}) wrote to the journal");
        }
        if self
            .store
            .alerts(Some(&token), true)
            .await?
            .iter()
            .any(|a| a.message == "stale")
        {
            bail!("{token}: a stale leader (generation {generation}) raised an alert");
        }
        self.note(format!(
            "stale leader of {token} (generation {generation}): {refused} writes refused"
        ));
        Ok(())
    }

    /// The current lease generation of `token` (0 before any).
    async fn generation(&self, token: &str) -> Result<i64> {
        Ok(self
            .store
            .leases()
            .await?
            .iter()
            .find(|l| l.token == token)
            .map_or(0, |l| l.generation))
    }

    fn effects(&self) -> Result<BTreeMap<String, BTreeMap<String, u32>>> {
        let mut out = BTreeMap::new();
        for t in self.chains.tokens() {
            if let Some(sim) = &self.chains.get(t)?.sim {
                out.insert(t.to_string(), sim.all_effects());
            }
        }
        Ok(out)
    }

    /// The day's feed: flows (a withdrawal wave on some days), the previous day's payout
    /// credits, in six-hour batches with late, duplicate and out-of-order delivery.
    async fn feed_day(&mut self, day: Day) -> Result<()> {
        let wave: Vec<String> = if self.faults_on && self.rng.gen_range(0..100) < 4 {
            self.fault("withdrawal_wave");
            vec![self.tokens[self.rng.gen_range(0..self.tokens.len())].clone()]
        } else {
            Vec::new()
        };
        let (mut events, _) = self.world.day_events(day, &wave)?;
        self.add_credits(&mut events)?;
        // the feed delivers in four batches a day (six-hour windows)
        let mut batches: BTreeMap<i64, Vec<BalanceEvent>> = BTreeMap::new();
        for e in events {
            let window = (e.ts.0 - day.start().0) / (6 * 3_600_000_000_000);
            batches.entry(window).or_default().push(e);
        }
        let mut batches: Vec<Vec<BalanceEvent>> = batches.into_values().collect();
        if self.faults_on && batches.len() > 1 && self.rng.gen_range(0..100) < 20 {
            batches.shuffle(&mut self.rng);
            self.fault("out_of_order_delivery");
        }
        for b in batches {
            if self.faults_on && self.rng.gen_range(0..100) < 2 {
                self.late.push(b);
                self.fault("late_delivery");
                continue;
            }
            let dup = self.faults_on && self.rng.gen_range(0..100) < 3;
            self.deliver(b.clone()).await?;
            if dup {
                self.fault("duplicate_delivery");
                self.deliver(b).await?;
            }
        }
        self.stats.days += 1;
        Ok(())
    }

    /// Adds the pending payout credits to the day's events, each moved to the next free
    /// second when its account already has an event at that instant (in the day's events
    /// or accepted before): one account has one balance at one time.
    fn add_credits(&mut self, events: &mut Vec<BalanceEvent>) -> Result<()> {
        let mut taken: BTreeSet<(String, String, Timestamp)> = events
            .iter()
            .map(|e| (e.account_id.clone(), e.token.clone(), e.ts))
            .collect();
        for mut c in std::mem::take(&mut self.credits) {
            for _ in 0..MAX_CREDIT_SHIFT_SECS {
                let key = (c.account_id.clone(), c.token.clone());
                let in_model = self.model.get(&key).is_some_and(|m| m.contains_key(&c.ts));
                if !in_model && !taken.contains(&(key.0, key.1, c.ts)) {
                    break;
                }
                c.ts = c.ts.checked_add_secs(1)?;
            }
            taken.insert((c.account_id.clone(), c.token.clone(), c.ts));
            events.push(c);
        }
        Ok(())
    }

    /// Delivers a batch: accepted events go into the model; a batch in a closed day is
    /// refused (dead-lettered) and does not; store faults are redelivered.
    async fn deliver(&mut self, batch: Vec<BalanceEvent>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        for _ in 0..MAX_DELIVERIES {
            match self.store.ingest_events(&batch).await {
                Ok(_) => {
                    for e in &batch {
                        self.model
                            .entry((e.account_id.clone(), e.token.clone()))
                            .or_default()
                            .insert(e.ts, e.balance);
                    }
                    return Ok(());
                }
                Err(StoreError::EventInClosedDay { .. }) => {
                    self.note(format!("late batch of {} events refused (day closed)", batch.len()));
                    return Ok(());
                }
                Err(StoreError::Injected(_)) => continue,
                Err(e) => return Err(e).context("ingesting a feed batch"),
            }
        }
        bail!("a feed batch failed {MAX_DELIVERIES} times")
    }

    async fn deliver_late(&mut self) -> Result<()> {
        for b in std::mem::take(&mut self.late) {
            self.deliver(b).await?;
        }
        Ok(())
    }

    /// Invariants after every tick.
    async fn check_each_tick(&mut self) -> Result<()> {
        self.check_conservation().await?;
        self.check_closes().await?;
        self.check_payouts().await?;
        self.check_effects(false).await?;
        self.check_ledger_vs_chain().await?;
        Ok(())
    }

    /// Σ payouts + fees + carry = realized rewards, per token, to the base unit.
    async fn check_conservation(&mut self) -> Result<()> {
        let all = self.store.distributions().await?;
        for token in &self.tokens {
            let mine: Vec<_> = all.iter().filter(|d| &d.token == token).collect();
            let r: u128 = mine.iter().map(|d| d.realized_reward.0).sum();
            let fee: u128 = mine.iter().map(|d| d.fee.0).sum();
            let carry = mine.last().map(|d| d.carry_out.0).unwrap_or(0);
            let paid: u128 = mine.iter().map(|d| d.distributable.0 - d.carry_out.0).sum();
            if paid + fee + carry != r {
                bail!("conservation broken for {token}: paid {paid} + fee {fee} + carry {carry} != realized {r}");
            }
            self.stats.checks += 1;
        }
        Ok(())
    }

    /// Every closed day's custodial total equals the model's: each accepted event counted
    /// once, none lost, none invented.
    async fn check_closes(&mut self) -> Result<()> {
        for token in self.tokens.clone() {
            let Some(last) = self.store.last_closed_day(&token).await? else {
                continue;
            };
            let mut day = self.start.prev();
            while day <= last {
                if !self.checked_closes.contains(&(token.clone(), day)) {
                    if let Some(c) = self.store.closed_day(&token, day).await? {
                        let want = self.model_total(&token, day)?;
                        if c.total_balance != want {
                            bail!(
                                "{token} {day}: the close counted {} base units, the accepted events give {}",
                                c.total_balance.0,
                                want.0
                            );
                        }
                        self.stats.checks += 1;
                    }
                    self.checked_closes.insert((token.clone(), day));
                }
                day = day.next();
            }
        }
        Ok(())
    }

    fn model_total(&self, token: &str, day: Day) -> Result<Amount> {
        let end = day.end();
        let mut total = Amount::ZERO;
        for ((_, t), events) in &self.model {
            if t != token {
                continue;
            }
            if let Some((_, b)) = events.range(..end).next_back() {
                total = total.checked_add(*b, "model total")?;
            }
        }
        Ok(total)
    }

    /// No day paid twice: each distributed day once, each account once in it; credits
    /// the payouts to spot balances for the next day's feed.
    async fn check_payouts(&mut self) -> Result<()> {
        let all = self.store.distributions().await?;
        let mut seen = BTreeSet::new();
        for d in &all {
            if !seen.insert((d.token.clone(), d.day)) {
                bail!("{} {} distributed twice", d.token, d.day);
            }
            if self.checked_payouts.contains(&(d.token.clone(), d.day)) {
                continue;
            }
            let payouts = self.store.day_payouts(&d.token, d.day).await?;
            let accounts: BTreeSet<&String> = payouts.iter().map(|(a, _)| a).collect();
            if accounts.len() != payouts.len() {
                bail!("{} {}: an account paid twice", d.token, d.day);
            }
            // each paid day credited at its own instant (several days are paid at once
            // after a gap; one account cannot have two balances at one time)
            self.credit_seq += 1;
            let credit_at = self.clock.now().checked_add_secs(1_800 + self.credit_seq)?;
            let credit = self.world.credit(&d.token, &payouts, credit_at);
            self.credits.extend(credit);
            self.checked_payouts.insert((d.token.clone(), d.day));
            self.stats.checks += 1;
        }
        Ok(())
    }

    /// No operation took effect twice; at the end, confirmed ones exactly once and failed
    /// ones never.
    async fn check_effects(&mut self, exact: bool) -> Result<()> {
        for (token, effects) in self.effects()? {
            if let Some((k, n)) = effects.iter().find(|(_, n)| **n > 1) {
                bail!("{token}: operation {k} took effect {n} times on chain");
            }
            if exact {
                for op in self.store.operations(Some(&token), 100_000).await? {
                    let n = effects.get(&op.idempotency_key).copied().unwrap_or(0);
                    let want = match op.state.as_str() {
                        "confirmed" | "reconciled" => 1,
                        "failed" => 0,
                        s => bail!(
                            "{token}: operation {} still {s} after the quiet days",
                            op.idempotency_key
                        ),
                    };
                    if n != want {
                        bail!(
                            "{token}: operation {} is {} with {n} on-chain effects",
                            op.idempotency_key,
                            op.state.as_str()
                        );
                    }
                }
            }
            self.stats.checks += 1;
        }
        Ok(())
    }

    /// Right after a reconciliation, with no operation open, the ledger equals the chain's
    /// positions or a drift alert is open.
    async fn check_ledger_vs_chain(&mut self) -> Result<()> {
        for token in self.tokens.clone() {
            if !self.reconciled.contains(&token) || !self.store.open_operations(Some(&token)).await?.is_empty() {
                continue;
            }
            let chain = self.chains.get(&token)?.clone();
            let Ok(positions) = tr::positions_of(&self.store, chain.adapter.as_ref()).await else {
                continue; // the chain answered garbage or timed out: nothing to compare
            };
            let lines = tr::drift(&self.store, &token, &positions, self.cfg.treasury.drift_tolerance_bps).await?;
            if let Some(l) = lines.iter().find(|l| l.beyond_tolerance) {
                let open = self.store.alerts(Some(&token), false).await?;
                if !open.iter().any(|a| a.kind == "drift") {
                    bail!(
                        "{token}: after a reconciliation the ledger expects {} at {}, the chain holds {}, and no drift alert is open",
                        l.expected,
                        l.validator,
                        l.actual
                    );
                }
            }
            self.stats.checks += 1;
        }
        Ok(())
    }

    /// The API's reads equal the store's: pool status (last closed day, open alerts) and
    /// an account's distribution history.
    async fn check_api(&mut self) -> Result<()> {
        use pb::rewards_server::Rewards;
        use pb::treasury_server::Treasury;
        let api = &self.api;
        for token in self.tokens.clone() {
            // served from the store: no chain fault can reach it
            let status = api
                .get_pool_status(Request::new(pb::GetPoolStatusRequest { token: token.clone() }))
                .await
                .map_err(|e| anyhow::anyhow!("{token}: GetPoolStatus: {e}"))?;
            let s = &status.get_ref().tokens[0];
            let as_of = self
                .store
                .pool_status(&token)
                .await?
                .map(|(at, _)| at.to_string())
                .unwrap_or_default();
            if s.as_of != as_of {
                bail!(
                    "{token}: the API's pool status is as of {:?}, the store's {as_of:?}",
                    s.as_of
                );
            }
            let last = self
                .store
                .last_closed_day(&token)
                .await?
                .map(|d| d.to_string())
                .unwrap_or_default();
            let alerts: BTreeSet<i64> = self
                .store
                .alerts(Some(&token), false)
                .await?
                .iter()
                .map(|a| a.id)
                .collect();
            let api_alerts: BTreeSet<i64> = s.alerts.iter().map(|a| a.id).collect();
            if s.last_closed_day != last || alerts != api_alerts {
                bail!(
                    "{token}: the API says last closed {} alerts {api_alerts:?}; the store {last} {alerts:?}",
                    s.last_closed_day
                );
            }
            self.stats.checks += 1;
        }
        let Some(account) = self.world.accounts.first().map(|a| a.account_id.clone()) else {
            return Ok(());
        };
        let rows = api
            .list_distributions(Request::new(pb::ListDistributionsRequest {
                account_id: account.clone(),
                token: String::new(),
                page_size: 500,
                page_token: String::new(),
            }))
            .await
            .map_err(|e| anyhow::anyhow!("ListDistributions: {e}"))?
            .into_inner()
            .rows;
        let stored = self.store.history(&account, None, None, 500, 0).await?;
        let a: Vec<(String, String)> = rows.iter().map(|r| (r.day.clone(), r.token.clone())).collect();
        let b: Vec<(String, String)> = stored.iter().map(|r| (r.day.to_string(), r.token.clone())).collect();
        if a != b {
            bail!("{account}: the API lists {a:?}, the store {b:?}");
        }
        self.stats.checks += 1;
        Ok(())
    }

    /// After the quiet days: every closed day paid, every operation resolved with exact
    /// effects, and a settled buffer at its target or an alert open.
    async fn check_final(&mut self) -> Result<()> {
        self.check_each_tick().await?;
        for token in self.tokens.clone() {
            let unpaid = self.store.undistributed_days(&token).await?;
            if !unpaid.is_empty() {
                bail!("{token}: closed days {unpaid:?} not paid after the quiet days");
            }
            let last = self.store.last_closed_day(&token).await?;
            let want = self.clock.now().day().prev();
            if last != Some(want) {
                bail!("{token}: last closed day {last:?}, expected {want} after the quiet days");
            }
            self.stats.checks += 2;
        }
        self.check_effects(true).await?;
        for token in self.tokens.clone() {
            let t = self.cfg.registry.get(&token)?.clone();
            let chain = self.chains.get(&token)?.clone();
            let p = tr::plan_token(
                &self.store,
                chain.adapter.as_ref(),
                &t,
                self.cfg.treasury.outflow_history_days,
                self.clock.now(),
            )
            .await?;
            if !p.ops.is_empty() {
                continue; // not settled
            }
            let band = Amount(p.buffer.target_staked.0 / 10_000 * u128::from(t.buffer.high_watermark_bps));
            let floor = p.buffer.target_buffer.0.saturating_sub(band.0) as i128;
            let open = self.store.alerts(Some(&token), false).await?;
            if p.forecast.available_now < floor && open.is_empty() {
                bail!(
                    "{token}: settled with {} available against a target of {} (band {}) and no alert open",
                    p.forecast.available_now,
                    p.buffer.target_buffer.0,
                    band.0
                );
            }
            self.stats.checks += 1;
        }
        for t in self.chains.tokens() {
            if let Some(sim) = &self.chains.get(t)?.sim {
                self.stats.chain_faults += sim.injected_faults();
                self.stats.chain_reorgs += sim.reorgs();
            }
        }
        self.stats.faults.insert("chain_faults_armed", self.tokens.len() as u64);
        Ok(())
    }
}

fn outcome<T>(r: &Result<T, tonic::Status>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(s) => format!("{:?}: {}", s.code(), s.message()),
    }
}

fn new_scheduler(cfg: &NetworkConfig, store: &Store, chains: &Arc<Chains>, clock: &ManualClock) -> Scheduler {
    let clock: Arc<dyn Clock> = Arc::new(clock.clone());
    let leases = Arc::new(Leases::new(
        store.clone(),
        holder_id("softstake simulate"),
        LEASE_TTL,
        clock.clone(),
    ));
    Scheduler::new(
        store.clone(),
        chains.clone(),
        clock.clone(),
        clock,
        crate::daemon::scheduler_config(cfg),
        leases,
    )
}

/// True when `e` is a write refused because the writer's lease is stale
/// ([`softstake_orchestrator::OrchestratorError::is_fenced`], or the store's own error).
fn is_fenced(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<softstake_orchestrator::OrchestratorError>()
            .is_some_and(|o| o.is_fenced())
            || matches!(
                c.downcast_ref::<softstake_store::StoreError>(),
                Some(softstake_store::StoreError::Fenced { .. })
            )
    })
}
