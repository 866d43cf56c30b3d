//! `softstake demo`: a multi-day soft-staking program on real data, end to end.
//!
//! ```text
//!  accounts (seeded) ── holdings drawn from real Cardano per-delegator stakes, priced
//!                       into each token with the bundled Binance price table
//!  each day d:  balance events (deposits, withdrawals; a withdrawal wave on one day)
//!  at d+1 00:00: close d ─▶ sync realized rewards (simulated chains, real rates)
//!               ─▶ reconcile ─▶ plan (buffer, validators) ─▶ execute (journal)
//!               ─▶ distribute d ─▶ payouts credited to spot balances at 01:00
//!  report: per token and day (eligible, Σe, R, fee, paid, APR), the liquidity story of
//!          the wave (buffer, alert, exit ETA), treasury positions, account histories,
//!          and the invariants checked at the end
//! ```
//!
//! Deterministic: the same seed gives the same report.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use comfy_table::Cell;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use softstake_adapters::sim::{data, rescale};
use softstake_core::eligibility::Account;
use softstake_core::plan::{AlertKind, TreasuryPlan};
use softstake_core::position::StateTotals;
use softstake_core::replay::{DayReplay, ReplayedToken};
use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp};
use softstake_store::{OperationState, Store};

use crate::chains::Chains;
use crate::clock::{Clock, ManualClock};
use crate::config::NetworkConfig;
use crate::progress;
use crate::report::{self, apr_pct, num, pct, SummaryRow};
use crate::treasury::{self as tr};

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Days to run.
    pub days: u32,
    /// Accounts to simulate.
    pub accounts: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Days the program ran before the report starts (the treasury is warm: stake is
    /// active, Cardano's two-epoch activation has passed).
    pub warmup_days: u32,
    /// Day (1-based) of the withdrawal wave; 0 for none.
    pub wave_day: u32,
    /// Tokens hit by the wave.
    pub wave_tokens: Vec<String>,
    /// Only these tokens (default: every configured chain).
    pub tokens: Option<Vec<String>>,
    /// Database URL (default: a fresh SQLite file `<data_dir>/demo.db`).
    pub db_url: Option<String>,
    /// `(token, adapter)` overrides: run these tokens on a real adapter (e.g. SOL on a
    /// local validator with `solana`) instead of the simulated chain. Real chains run at
    /// their own pace: their rewards come as their epochs pass in real time.
    pub chain_overrides: Vec<(String, String)>,
    /// First day of the program.
    pub start: Day,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            days: 8,
            accounts: 1_500,
            seed: 42,
            warmup_days: 12,
            wave_day: 4,
            wave_tokens: vec!["BNB".into(), "SOL".into(), "TRX".into()],
            tokens: None,
            db_url: None,
            chain_overrides: Vec::new(),
            start: Day::from_ymd(2025, 6, 2).unwrap_or(Day(chrono::NaiveDate::MIN)),
        }
    }
}

/// Token popularity weights for who holds what (demo assumption).
fn weight(token: &str) -> u32 {
    match token {
        "BNB" | "SOL" => 10,
        "ADA" | "TRX" | "ETH" => 7,
        "SUI" | "TON" | "NEAR" | "POL" => 5,
        _ => 3,
    }
}

const JURISDICTIONS: [&str; 12] = ["DE", "FR", "GB", "SG", "JP", "BR", "AE", "TR", "VN", "NG", "AR", "ES"];

struct Holding {
    account: usize,
    token: String,
    balance: Amount,
}

/// The demo's (and the simulator's) population: accounts and their holdings drawn from
/// the bundled real stake distribution, and their day-by-day flows.
pub(crate) struct World {
    rng: ChaCha8Rng,
    pub(crate) accounts: Vec<Account>,
    holdings: Vec<Holding>,
    by_key: HashMap<(String, String), usize>,
}

fn at(day: Day, secs: i64) -> Result<Timestamp> {
    Ok(day.start().checked_add_secs(secs)?)
}

impl World {
    pub(crate) fn new(cfg: &NetworkConfig, tokens: &[String], opts: &DemoOptions) -> Result<World> {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let stakes = data::cardano_delegator_stakes()?;
        let before = opts.start.plus_days(-i64::from(opts.warmup_days)).prev();
        let mut accounts = Vec::new();
        let mut holdings = Vec::new();
        let weights: Vec<u32> = tokens.iter().map(|t| weight(t)).collect();
        let total_w: u32 = weights.iter().sum();
        for i in 0..opts.accounts as usize {
            let id = format!("acct-{i:05}");
            let roll = rng.gen_range(0..100);
            let jurisdiction = match roll {
                0..=3 => "US",
                4 => ["IR", "KP", "CU", "SY"][rng.gen_range(0..4)],
                _ => JURISDICTIONS[rng.gen_range(0..JURISDICTIONS.len())],
            };
            let activated = match rng.gen_range(0..100) {
                0..=84 => at(before, rng.gen_range(0..86_400))?,
                85..=94 => at(opts.start.next(), rng.gen_range(0..86_400))?, // joins on day 2: earns from day 3
                _ => at(opts.start.plus_days(i64::from(opts.days) + 10), 0)?, // not active during the demo
            };
            let deactivated = if rng.gen_range(0..100) < 3 {
                Some(at(opts.start.plus_days(4), rng.gen_range(0..86_400))?)
            } else {
                None
            };
            let deactivated = deactivated.filter(|d| *d >= activated);
            accounts.push(Account::new(&id, jurisdiction, activated, deactivated)?);
            // wealth in lovelace from the real distribution, as ADA → each token by price
            let wealth = stakes[rng.gen_range(0..stakes.len())];
            let n = rng.gen_range(1..=3usize.min(tokens.len()));
            for _ in 0..n {
                let mut pick = rng.gen_range(0..total_w);
                let mut idx = 0;
                for (k, w) in weights.iter().enumerate() {
                    if pick < *w {
                        idx = k;
                        break;
                    }
                    pick -= w;
                }
                let token = &tokens[idx];
                if holdings.iter().any(|h: &Holding| h.account == i && &h.token == token) {
                    continue;
                }
                let t = cfg.registry.get(token)?;
                let share = rng.gen_range(20..=100u128);
                let amount = rescale(wealth * share / 100, "ADA", 6, token, t.decimals)?;
                holdings.push(Holding {
                    account: i,
                    token: token.clone(),
                    balance: amount,
                });
            }
        }
        let by_key = holdings
            .iter()
            .enumerate()
            .map(|(k, h)| ((accounts[h.account].account_id.clone(), h.token.clone()), k))
            .collect();
        Ok(World {
            rng,
            accounts,
            holdings,
            by_key,
        })
    }

    /// Opening balances (the day before the program) and the day's events.
    pub(crate) fn opening_events(&self, before: Day) -> Result<Vec<BalanceEvent>> {
        self.holdings
            .iter()
            .map(|h| {
                Ok(BalanceEvent {
                    ts: at(before, 43_200)?,
                    account_id: self.accounts[h.account].account_id.clone(),
                    token: h.token.clone(),
                    balance: h.balance,
                })
            })
            .collect()
    }

    /// The day's user flows; returns the events and the net flow per token (deposits
    /// positive), which moves the custody wallets.
    pub(crate) fn day_events(
        &mut self,
        day: Day,
        wave: &[String],
    ) -> Result<(Vec<BalanceEvent>, BTreeMap<String, i128>)> {
        let mut events = Vec::new();
        let mut flows: BTreeMap<String, i128> = BTreeMap::new();
        for k in 0..self.holdings.len() {
            let in_wave = wave.contains(&self.holdings[k].token) && self.rng.gen_range(0..100) < 70;
            let changes = if in_wave {
                1
            } else if self.rng.gen_range(0..100) < 30 {
                self.rng.gen_range(1..=2)
            } else {
                0
            };
            let mut times: Vec<i64> = (0..changes).map(|_| self.rng.gen_range(3_600..86_400)).collect();
            times.sort();
            // one balance per account per instant: two changes drawn at the same second are one
            times.dedup();
            for secs in times {
                let old = self.holdings[k].balance;
                let new = if in_wave {
                    Amount(old.0 / 100 * self.rng.gen_range(0..=20u128))
                } else {
                    let pct = self.rng.gen_range(80..=122u128);
                    Amount(old.0 / 100 * pct)
                };
                self.holdings[k].balance = new;
                *flows.entry(self.holdings[k].token.clone()).or_default() += new.0 as i128 - old.0 as i128;
                events.push(BalanceEvent {
                    ts: at(day, secs)?,
                    account_id: self.accounts[self.holdings[k].account].account_id.clone(),
                    token: self.holdings[k].token.clone(),
                    balance: new,
                });
            }
        }
        Ok((events, flows))
    }

    /// Payouts credited to spot balances at `ts` (one event per paid account).
    pub(crate) fn credit(&mut self, token: &str, payouts: &[(String, Amount)], ts: Timestamp) -> Vec<BalanceEvent> {
        let mut out = Vec::new();
        for (account, reward) in payouts.iter().filter(|(_, r)| !r.is_zero()) {
            if let Some(&k) = self.by_key.get(&(account.clone(), token.to_string())) {
                let h = &mut self.holdings[k];
                h.balance = Amount(h.balance.0.saturating_add(reward.0));
                out.push(BalanceEvent {
                    ts,
                    account_id: account.clone(),
                    token: token.to_string(),
                    balance: h.balance,
                });
            }
        }
        out
    }
}

/// One token's treasury state after a day's loop.
#[derive(Debug, Clone)]
struct TreasuryDay {
    day: Day,
    token: String,
    plan: TreasuryPlan,
}

/// Runs the demo and prints its report.
pub async fn run(cfg: &NetworkConfig, opts: DemoOptions) -> Result<()> {
    let tokens: Vec<String> = match &opts.tokens {
        Some(list) => {
            for t in list {
                if !cfg.chains.contains_key(t) {
                    bail!("--tokens: {t} has no [chains.{t}] in {}", cfg.origin);
                }
            }
            list.clone()
        }
        None => cfg.chains.keys().cloned().collect(),
    };
    if opts.days == 0 || opts.accounts == 0 {
        bail!("--days and --accounts must be at least 1");
    }
    let db_url = match &opts.db_url {
        Some(u) => u.clone(),
        None => {
            let path: PathBuf = cfg.data_dir.join("demo.db");
            for ext in ["", "-wal", "-shm"] {
                let p = PathBuf::from(format!("{}{ext}", path.display()));
                if p.exists() {
                    std::fs::remove_file(&p)
                        .with_context(|| format!("removing the previous demo database {}", p.display()))?;
                }
            }
            format!("sqlite://{}", path.display())
        }
    };
    let store = Store::open(&db_url)
        .await
        .with_context(|| format!("opening {}", crate::commands::redact_url(&db_url)))?;
    if !store.distributions().await?.is_empty() || !store.accounts_map().await?.is_empty() {
        bail!(
            "the demo needs an empty database and {} already holds data; pass --db with a new one \
             (without --db the demo recreates its own SQLite file each run)",
            crate::commands::redact_url(&db_url)
        );
    }
    let first = opts.start.plus_days(-i64::from(opts.warmup_days));
    let before = first.prev();
    let clock = ManualClock::new(before.start());
    let genesis = before.start().checked_add_secs(-30 * 86_400)?;
    let mut sub = cfg.clone();
    sub.chains.retain(|k, _| tokens.contains(k));
    for (token, adapter) in &opts.chain_overrides {
        let c = sub
            .chains
            .get_mut(token)
            .with_context(|| format!("--chain {token}={adapter}: {token} is not in the demo"))?;
        c.adapter = adapter.clone();
        println!(
            "{token} runs on the {adapter} adapter at {} (real chain: its epochs pass in real time)",
            c.rpc_url.as_deref().unwrap_or("?")
        );
    }
    let chains = crate::chains::build(&sub, false, genesis, None)?;
    chains.advance_sims(clock.now())?;
    println!(
        "softstake demo: {} accounts, {} tokens, {} days from {} after {} days of warm-up (seed {}), store {}",
        opts.accounts,
        tokens.len(),
        opts.days,
        opts.start,
        opts.warmup_days,
        opts.seed,
        crate::commands::redact_url(&db_url)
    );
    let pb = progress::spinner("building accounts from real stake distributions");
    let mut world = World::new(cfg, &tokens, &opts)?;
    store.upsert_accounts(&world.accounts).await?;
    let opening = world.opening_events(before)?;
    store.ingest_events(&opening).await?;
    // Everything the store is fed, kept for the stateless replay that checks every day.
    let mut fed: Vec<BalanceEvent> = opening;
    for token in &tokens {
        let total: u128 = world
            .holdings
            .iter()
            .filter(|h| &h.token == token)
            .map(|h| h.balance.0)
            .sum();
        chains.mirror_custody(token, softstake_core::Net::positive(Amount(total)))?;
    }
    pb.finish_and_clear();
    let mut summaries: Vec<SummaryRow> = Vec::new();
    let mut treasury_days: Vec<TreasuryDay> = Vec::new();
    let mut owed: BTreeMap<String, Amount> = BTreeMap::new();
    let mut pending_credit: Vec<BalanceEvent> = Vec::new();
    let total_days = opts.warmup_days + opts.days;
    let pb = progress::bar(u64::from(total_days + 1), "days");
    // the day before: close it so the treasury starts from the opening balances
    morning(
        cfg,
        &store,
        &chains,
        &tokens,
        before,
        &clock,
        &mut treasury_days,
        &mut owed,
    )
    .await?;
    for token in &tokens {
        store.distribute(cfg.registry.get(token)?, before, clock.now()).await?; // nothing realized yet
    }
    pb.inc(1);
    for i in 0..total_days {
        let day = first.plus_days(i64::from(i));
        let in_report = i >= opts.warmup_days;
        pb.set_message(format!("{day}{}", if in_report { "" } else { " (warm-up)" }));
        let wave: Vec<String> = if in_report && opts.wave_day == i - opts.warmup_days + 1 {
            opts.wave_tokens.clone()
        } else {
            vec![]
        };
        let (mut events, flows) = world.day_events(day, &wave)?;
        events.append(&mut pending_credit);
        store
            .ingest_events(&events)
            .await
            .with_context(|| format!("ingesting {day}"))?;
        fed.extend(events);
        clock.set(day.end());
        chains.advance_sims(clock.now())?;
        for (token, net) in &flows {
            let unpaid = chains.mirror_custody(token, softstake_core::Net::from_i128(*net))?;
            if !unpaid.is_zero() {
                let o = owed.entry(token.clone()).or_default();
                *o = o.checked_add(unpaid, "owed")?;
            }
        }
        morning(
            cfg,
            &store,
            &chains,
            &tokens,
            day,
            &clock,
            &mut treasury_days,
            &mut owed,
        )
        .await?;
        // distribute day d at 00:30 and credit the payouts at 01:00
        clock.set(day.end().checked_add_secs(1_800)?);
        for token in &tokens {
            let t = cfg.registry.get(token)?;
            let s = store
                .distribute(t, day, clock.now())
                .await
                .with_context(|| format!("distributing {token} {day}"))?;
            if in_report {
                let closed = store.closed_day(token, day).await?.map(|c| c.accounts).unwrap_or(0);
                summaries.push(SummaryRow::from_distribution(t, &s, closed, report::Precision::Display));
            }
            let paid = store.day_payouts(token, day).await?;
            pending_credit.extend(world.credit(token, &paid, day.end().checked_add_secs(3_600)?));
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    print_report(cfg, &store, &chains, &opts, &tokens, &summaries, &treasury_days).await?;
    check_invariants(cfg, &store, &chains, &tokens, &summaries).await?;
    let days: Vec<Day> = (0..=total_days).map(|i| before.plus_days(i64::from(i))).collect();
    let replayed = check_stateless_replay(cfg, &store, &world.accounts, &fed, &days).await?;
    println!(
        "stateless replay: OK for {replayed} token-days (allocate's engine on the demo's own inputs = the stored payouts, account by account)"
    );
    store.close().await;
    Ok(())
}

/// The treasury's morning after `day`: close it, sync rewards, reconcile, plan, execute.
#[allow(clippy::too_many_arguments)]
async fn morning(
    cfg: &NetworkConfig,
    store: &Store,
    chains: &Chains,
    tokens: &[String],
    day: Day,
    clock: &ManualClock,
    treasury_days: &mut Vec<TreasuryDay>,
    owed: &mut BTreeMap<String, Amount>,
) -> Result<()> {
    clock.set(day.end().checked_add_secs(5)?);
    chains.advance_sims(clock.now())?;
    let now = clock.now();
    for token in tokens {
        let t = cfg.registry.get(token)?;
        let h = chains.get(token)?;
        let chain = h.adapter.as_ref();
        let closed = store
            .close_day(&cfg.registry, token, day, now, cfg.max_accounts_per_close)
            .await?;
        store
            .record_custody_total(token, day, closed.total_balance, now)
            .await?;
        tr::reconcile_token(store, chain, t, cfg.treasury.drift_tolerance_bps, now).await?;
        let plan = tr::plan_token(store, chain, t, cfg.treasury.outflow_history_days, now).await?;
        tr::refresh_liquidity_alerts(store, &plan, now).await?;
        let approver = plan.needs_approval.then_some("demo-treasury");
        tr::execute_plan(store, chain, &plan, approver, h.exec.clone(), now).await?;
        // pay users waiting since a wave as soon as custody has the funds
        if let (Some(o), Some(sim)) = (owed.get_mut(token), &h.sim) {
            let pay = (*o).min(sim.wallet());
            sim.defund(pay)?;
            *o = o.saturating_sub(pay);
        }
        treasury_days.push(TreasuryDay {
            day,
            token: token.clone(),
            plan,
        });
    }
    Ok(())
}

async fn print_report(
    cfg: &NetworkConfig,
    store: &Store,
    chains: &Chains,
    opts: &DemoOptions,
    tokens: &[String],
    summaries: &[SummaryRow],
    treasury_days: &[TreasuryDay],
) -> Result<()> {
    println!("\n== Daily distributions (amounts in token units; only realized rewards are paid) ==");
    for d in 0..opts.days {
        let day = opts.start.plus_days(i64::from(d));
        let rows: Vec<SummaryRow> = summaries.iter().filter(|s| s.day == day).cloned().collect();
        println!("{}", report::summary_table(&rows));
    }
    if opts.wave_day > 0 && opts.wave_day <= opts.days {
        let wave_day = opts.start.plus_days(i64::from(opts.wave_day) - 1);
        println!(
            "\n== Withdrawal wave on {wave_day} ({}) ==",
            opts.wave_tokens.join(", ")
        );
        let mut t = report::table(&[
            "morning after",
            "token",
            "custodial P",
            "committed stake",
            "deactivating",
            "target buffer",
            "liquid now",
            "alert",
            "exit ETA",
        ]);
        for td in treasury_days.iter().filter(|td| {
            opts.wave_tokens.contains(&td.token) && td.day >= wave_day.prev() && td.day <= wave_day.plus_days(2)
        }) {
            let c = cfg.registry.get(&td.token)?;
            let p = &td.plan;
            let alert = p
                .alerts
                .iter()
                .find(|a| matches!(a.kind, AlertKind::LiquidityShortfall | AlertKind::BufferBelowTarget));
            t.add_row(vec![
                Cell::new(td.day.to_string()),
                Cell::new(&td.token),
                num(report::amount(c, p.custodial_total, report::Precision::Display)),
                num(report::amount(c, p.totals.committed()?, report::Precision::Display)),
                num(report::amount(c, p.totals.deactivating, report::Precision::Display)),
                num(report::amount(c, p.buffer.target_buffer, report::Precision::Display)),
                num(signed(c, p.forecast.liquid_now)),
                Cell::new(
                    alert
                        .map(|a| {
                            format!(
                                "{} {}",
                                a.kind.as_str(),
                                report::amount(c, a.shortfall, report::Precision::Display)
                            )
                        })
                        .unwrap_or_else(|| "—".into()),
                ),
                Cell::new(
                    alert
                        .and_then(|a| a.exit_eta)
                        .map(|e| e.to_rfc3339())
                        .unwrap_or_else(|| "—".into()),
                ),
            ]);
        }
        println!("{t}");
        for td in treasury_days
            .iter()
            .filter(|td| td.day == wave_day && opts.wave_tokens.contains(&td.token))
        {
            for a in &td.plan.alerts {
                println!("  {}", a.message);
            }
            for o in td
                .plan
                .ops
                .iter()
                .filter(|o| o.kind == softstake_core::plan::OpKind::Undelegate)
            {
                println!(
                    "  {} undelegate {} {} from {}: {}",
                    td.token,
                    report::amount(cfg.registry.get(&td.token)?, o.amount, report::Precision::Display),
                    td.token,
                    o.validator,
                    o.reason
                );
            }
        }
    }
    println!("\n== Treasury at the end (positions read from the chains) ==");
    let mut t = report::table(&[
        "token",
        "validators",
        "activating",
        "active",
        "deactivating",
        "withdrawable",
        "operations",
        "reconciled",
        "realized rewards",
        "APR (last day)",
        "APR (7 days)",
    ]);
    let aprs = store.latest_apr().await?;
    for token in tokens {
        let c = cfg.registry.get(token)?;
        let positions = chains.get(token)?.adapter.positions().await?;
        let st = StateTotals::of(&positions)?;
        let validators: std::collections::BTreeSet<&str> = positions.iter().map(|p| p.validator.as_str()).collect();
        let ops = store.operations(Some(token), 10_000).await?;
        let rewards = store.ledger_balances(token, "chain:rewards").await?;
        let realized = rewards.first().map(|b| b.credits).unwrap_or_default();
        t.add_row(vec![
            Cell::new(token),
            num(validators.len()),
            num(report::amount(c, st.activating, report::Precision::Display)),
            num(report::amount(c, st.active, report::Precision::Display)),
            num(report::amount(c, st.deactivating, report::Precision::Display)),
            num(report::amount(c, st.withdrawable, report::Precision::Display)),
            num(ops.len()),
            num(ops.iter().filter(|o| o.state == OperationState::Reconciled).count()),
            num(report::amount(c, realized, report::Precision::Display)),
            num(aprs
                .iter()
                .find(|a| &a.token == token)
                .map(|a| apr_pct(a.apr))
                .unwrap_or_else(|| "—".into())),
            num(store
                .trailing_apr(token, 7)
                .await?
                .map(pct)
                .unwrap_or_else(|| "—".into())),
        ]);
    }
    println!("{t}");
    let mut notes = Vec::new();
    for token in tokens {
        if let Some(last) = treasury_days.iter().rev().find(|td| &td.token == token) {
            for n in &last.plan.notes {
                notes.push(format!("  {token}: {n}"));
            }
        }
    }
    if !notes.is_empty() {
        println!("Planner notes (last plan):\n{}", notes.join("\n"));
    }
    print_histories(cfg, store, tokens).await
}

fn signed(c: &softstake_core::TokenConfig, v: i128) -> String {
    let s = report::amount(c, Amount(v.unsigned_abs()), report::Precision::Display);
    if v < 0 {
        format!("-{s}")
    } else {
        s
    }
}

async fn print_histories(cfg: &NetworkConfig, store: &Store, tokens: &[String]) -> Result<()> {
    let top = store
        .top_earners(tokens.first().map(String::as_str).unwrap_or("SOL"), 3)
        .await?;
    for account in top {
        let rows = store.history(&account, None, None, 12, 0).await?;
        let mut t = report::table(&["day", "token", "average balance", "eligible", "reward"]);
        for r in &rows {
            let c = cfg.registry.get(&r.token)?;
            t.add_row(vec![
                Cell::new(r.day.to_string()),
                Cell::new(&r.token),
                num(report::amount(c, r.average, report::Precision::Display)),
                num(report::amount(c, r.eligible, report::Precision::Display)),
                num(report::amount(c, r.reward, report::Precision::Display)),
            ]);
        }
        println!("\nDistribution history of {account} (newest first)\n{t}");
    }
    Ok(())
}

/// Checks, after the run: every token's payouts + fees + carry equal its realized
/// rewards, the ledger balances, and the chains hold what the ledger expects.
async fn check_invariants(
    cfg: &NetworkConfig,
    store: &Store,
    chains: &Chains,
    tokens: &[String],
    summaries: &[SummaryRow],
) -> Result<()> {
    let mut checked = 0;
    for token in tokens {
        let c = cfg.registry.get(token)?;
        let all = store.distributions().await?;
        let mine: Vec<_> = all.iter().filter(|d| &d.token == token).collect();
        let r: u128 = mine.iter().map(|d| d.realized_reward.0).sum();
        let fee: u128 = mine.iter().map(|d| d.fee.0).sum();
        let last_carry = mine.last().map(|d| d.carry_out.0).unwrap_or(0);
        let paid: u128 = mine.iter().map(|d| d.distributable.0 - d.carry_out.0).sum();
        if paid + fee + last_carry != r {
            bail!("invariant broken for {token}: paid {paid} + fee {fee} + carry {last_carry} != realized {r}");
        }
        let positions = chains.get(token)?.adapter.positions().await?;
        let lines = tr::drift(store, token, &positions, cfg.treasury.drift_tolerance_bps).await?;
        if let Some(l) = lines.iter().find(|l| l.beyond_tolerance) {
            bail!(
                "invariant broken for {token}: ledger expects {} at {}, chain holds {}",
                c.format_amount(Amount(l.expected.unsigned_abs())),
                l.validator,
                c.format_amount(Amount(l.actual.unsigned_abs()))
            );
        }
        store.ledger_balances(token, "").await?; // fails if debits != credits
        checked += 1;
    }
    println!(
        "\ninvariants: OK for {checked} tokens over {} token-days (Σ payouts + fees + carry = realized rewards, ledger balanced, ledger = chain positions)",
        summaries.len()
    );
    Ok(())
}

/// Replays every distributed day statelessly (the engine of `softstake allocate`) from
/// the demo's own inputs (its accounts and every balance event it fed the store) with
/// the realized reward and carry in the store recorded, and checks that it gives what
/// `payouts export` gives: the same accounts with the same average, eligible amount and
/// reward, and the same Σe, D and carry out. Returns the token-days checked.
async fn check_stateless_replay(
    cfg: &NetworkConfig,
    store: &Store,
    accounts: &[Account],
    fed: &[BalanceEvent],
    days: &[Day],
) -> Result<u64> {
    let mut checked = 0;
    let pb = progress::bar(days.len() as u64, "stateless replay of every day");
    for &day in days {
        let mut replay = DayReplay::new(&cfg.registry, day).with_capacity(accounts.len());
        for a in accounts {
            replay.add_account(a)?;
        }
        for e in fed {
            replay.add_event(&e.token, &e.account_id, e.ts, e.balance)?;
        }
        let mut rewards = BTreeMap::new();
        for d in store.distributions().await?.into_iter().filter(|d| d.day == day) {
            rewards.insert(d.token.clone(), (d.realized_reward, d.carry_in));
        }
        for td in replay.finish(&rewards)? {
            check_replayed_day(store, day, &td).await?;
            checked += 1;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(checked)
}

/// One token-day: the replay against the stored export, account by account.
async fn check_replayed_day(store: &Store, day: Day, td: &ReplayedToken) -> Result<()> {
    let token = td.token.as_str();
    let Some(e) = store.payout_export(token, day).await? else {
        bail!("{token} {day}: the replay has it but the store did not close and distribute it");
    };
    let (p, s) = (&td.plan, &e.summary);
    if (p.total_eligible, p.distributable, p.carry_out) != (s.total_eligible, s.distributable, s.carry_out)
        || td.accounts != e.closed.accounts
    {
        bail!(
            "{token} {day}: replay gives {} accounts, Σe {}, D {}, carry {}; the store {} accounts, Σe {}, D {}, carry {}",
            td.accounts, p.total_eligible.0, p.distributable.0, p.carry_out.0,
            e.closed.accounts, s.total_eligible.0, s.distributable.0, s.carry_out.0
        );
    }
    let mut stored = Vec::with_capacity(td.accounts as usize);
    crate::files::for_each_export_row(store, token, day, |r| {
        stored.push(r);
        Ok(())
    })
    .await?;
    let mut rows = stored.iter();
    td.for_each_row(|r| {
        let got = rows.next();
        let same = got.is_some_and(|g| {
            (g.account_id.as_str(), g.average, g.eligible, g.reward) == (r.account_id, r.average, r.eligible, r.reward)
        });
        if !same {
            return Err(softstake_core::CoreError::Invariant(format!(
                "{token} {day}: replay row {r:?}, stored row {got:?}"
            )));
        }
        Ok(())
    })?;
    if let Some(extra) = rows.next() {
        bail!("{token} {day}: the store has a row the replay has not: {extra:?}");
    }
    Ok(())
}
