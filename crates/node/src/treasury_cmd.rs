//! The treasury commands: `plan`, `execute`, `sync`, `reconcile`, `status`.
//!
//! Each command builds the configured chains (simulated chains persist in
//! `<data_dir>/sim` and follow the wall clock), acts, and saves the simulated chains.

use anyhow::{bail, Context, Result};
use comfy_table::Cell;

use softstake_core::plan::TreasuryPlan;
use softstake_core::position::StateTotals;
use softstake_core::{Amount, Timestamp, TokenConfig};
use softstake_store::{PlanStatus, Store};

use crate::chains::{Chains, SIM_GENESIS_UNIX_SECS};
use crate::clock::Clock;
use crate::commands::under_lease;
use crate::config::NetworkConfig;
use crate::report::{self, apr_pct, num};
use crate::treasury::executor::{Executor, OpOutcome};
use crate::treasury::{self as tr};

/// Builds the CLI's chains (only `only`'s when given, so a command about one token does
/// not need every other token's node or adapter) and moves simulated chains to `now`.
pub fn cli_chains(cfg: &NetworkConfig, only: Option<&str>, now: Timestamp) -> Result<Chains> {
    let genesis = Timestamp::from_unix_secs(SIM_GENESIS_UNIX_SECS)?;
    let chains = match only {
        Some(t) => {
            if !cfg.chains.contains_key(t) {
                bail!("no chain configured for {t}: add [chains.{t}] to the network config");
            }
            let mut sub = cfg.clone();
            sub.chains.retain(|k, _| k == t);
            crate::chains::build(&sub, true, genesis, None)?
        }
        None => crate::chains::build(cfg, true, genesis, None)?,
    };
    chains.advance_sims(now)?;
    Ok(chains)
}

/// Books the custodial total of the token's last closed day (once per day) and mirrors
/// the change on a simulated chain's custody wallet.
async fn book_custody(store: &Store, chains: &Chains, token: &str, now: Timestamp) -> Result<()> {
    if let Some((day, total, _)) = store.closed_day_totals(token, 1).await?.pop() {
        let delta = store.record_custody_total(token, day, total, now).await?;
        chains.mirror_custody(token, delta)?;
    }
    Ok(())
}

fn selected<'a>(chains: &'a Chains, token: Option<&'a str>) -> Result<Vec<&'a str>> {
    match token {
        Some(t) => {
            chains.get(t)?;
            Ok(vec![t])
        }
        None => Ok(chains.tokens().collect()),
    }
}

fn short(id: &str) -> String {
    if id.len() > 24 {
        format!("{}…{}", &id[..12], &id[id.len() - 6..])
    } else {
        id.to_string()
    }
}

fn signed_units(cfg: &TokenConfig, v: i128) -> String {
    let s = cfg.format_amount(Amount(v.unsigned_abs()));
    if v < 0 {
        format!("-{s}")
    } else {
        s
    }
}

/// Prints one plan: targets, operations, forecast, alerts, notes.
pub fn print_plan(cfg: &TokenConfig, p: &TreasuryPlan) {
    let f = |a: Amount| cfg.format_amount(a);
    println!(
        "{} plan {} (epoch {}){}\n  custodial P {} · eligible Σe {} · target buffer {} · target staked {} · committed {} · moves {}",
        p.token,
        p.plan_id,
        p.epoch,
        if p.needs_approval { " — NEEDS APPROVAL (--approve)" } else { "" },
        f(p.custodial_total),
        f(p.total_eligible),
        f(p.buffer.target_buffer),
        f(p.buffer.target_staked),
        f(p.totals.committed().unwrap_or_default()),
        f(p.moved),
    );
    if !p.ops.is_empty() {
        let mut t = report::table(&["#", "operation", "validator", "amount", "reason"]);
        for o in &p.ops {
            t.add_row(vec![
                num(o.seq),
                Cell::new(o.kind.as_str()),
                Cell::new(short(&o.validator)),
                num(f(o.amount)),
                Cell::new(&o.reason),
            ]);
        }
        println!("{t}");
    } else {
        println!("  no operations: within the watermarks");
    }
    let fc = &p.forecast;
    println!(
        "  liquidity: now {} · 1 d {} · 7 d {} · 21 d {} {}",
        signed_units(cfg, fc.available_now),
        signed_units(cfg, fc.available_1d),
        signed_units(cfg, fc.available_7d),
        signed_units(cfg, fc.available_21d),
        cfg.symbol
    );
    for a in &p.alerts {
        println!("  ALERT {}: {}", a.kind.as_str(), a.message);
    }
    for n in &p.notes {
        println!("  note: {n}");
    }
}

/// `softstake plan [--token T]`: shows each token's plan and forecast; changes nothing
/// of ours (simulated chains only move their clock).
pub async fn plan(store: &Store, cfg: &NetworkConfig, token: Option<&str>, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    let chains = cli_chains(cfg, token, now)?;
    for sym in selected(&chains, token)? {
        let t = cfg.registry.get(sym)?;
        let p = tr::plan_token(
            store,
            chains.get(sym)?.adapter.as_ref(),
            t,
            cfg.treasury.outflow_history_days,
            now,
        )
        .await
        .with_context(|| format!("planning {sym}"))?;
        print_plan(t, &p);
        println!();
    }
    Ok(chains.save()?)
}

/// `softstake execute --plan ID [--approve --by NAME]`: executes the current plan with
/// this id (or resumes a stored one) through the journal.
pub async fn execute(
    store: &Store,
    cfg: &NetworkConfig,
    plan_id: &str,
    approve: bool,
    by: &str,
    clock: &dyn Clock,
) -> Result<()> {
    let now = clock.now();
    let chains = cli_chains(cfg, None, now)?;
    let stored = store.plan(plan_id).await?;
    if let Some(p) = &stored {
        if matches!(p.status, PlanStatus::Done | PlanStatus::Rejected) {
            bail!("plan {plan_id} is already {}", p.status.as_str());
        }
    }
    let mut ran = None;
    for sym in chains.tokens() {
        if stored.as_ref().is_some_and(|p| p.token != sym) {
            continue;
        }
        let handle = chains.get(sym)?.clone();
        let t = cfg.registry.get(sym)?;
        ran = under_lease(store, sym, "execute", async |s| {
            book_custody(s, &chains, sym, now).await?;
            let p: TreasuryPlan = match &stored {
                Some(rec) => serde_json::from_str(&rec.body).with_context(|| format!("stored plan {plan_id}"))?,
                None => {
                    let p =
                        tr::plan_token(s, handle.adapter.as_ref(), t, cfg.treasury.outflow_history_days, now).await?;
                    if p.plan_id != plan_id {
                        return Ok(None);
                    }
                    p
                }
            };
            let approver = approve.then_some(by);
            let result = tr::execute_plan(s, handle.adapter.as_ref(), &p, approver, handle.exec.clone(), now).await;
            Ok(Some((p, result)))
        })
        .await?;
        if ran.is_some() {
            break;
        }
    }
    chains.save()?;
    let Some((p, result)) = ran else {
        bail!("no current plan has id {plan_id}: the state changed since it was computed; run `softstake plan` again");
    };
    let t = cfg.registry.get(&p.token)?;
    let rep = result?;
    let mut table = report::table(&["#", "operation", "validator", "amount", "outcome"]);
    for (o, (_, outcome)) in p.ops.iter().zip(&rep.outcomes) {
        table.add_row(vec![
            num(o.seq),
            Cell::new(o.kind.as_str()),
            Cell::new(short(&o.validator)),
            num(t.format_amount(o.amount)),
            Cell::new(match outcome {
                OpOutcome::Confirmed => "confirmed".to_string(),
                OpOutcome::Pending => "pending (resolved by the next run)".to_string(),
                OpOutcome::Failed(r) => format!("failed: {r}"),
            }),
        ]);
    }
    if !rep.recovered.is_empty() {
        println!("resolved {} open operations of earlier runs first", rep.recovered.len());
    }
    println!("executed plan {} for {}\n{table}", rep.plan_id, p.token);
    Ok(())
}

/// `softstake sync [--token T]`: books the custodial total of the last closed day,
/// reads realized rewards and positions, refreshes liquidity alerts.
pub async fn sync(store: &Store, cfg: &NetworkConfig, token: Option<&str>, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    let chains = cli_chains(cfg, token, now)?;
    let mut table = report::table(&[
        "token",
        "new rewards",
        "amount",
        "activating",
        "active",
        "deactivating",
        "withdrawable",
    ]);
    for sym in selected(&chains, token)? {
        let t = cfg.registry.get(sym)?;
        let h = chains.get(sym)?;
        let rep = under_lease(store, sym, "sync", async |s| {
            book_custody(s, &chains, sym, now).await?;
            let rep = tr::sync_token(s, h.adapter.as_ref(), now)
                .await
                .with_context(|| format!("syncing {sym}"))?;
            let p = tr::plan_token(s, h.adapter.as_ref(), t, cfg.treasury.outflow_history_days, now).await?;
            tr::refresh_liquidity_alerts(s, &p, now).await?;
            Ok(rep)
        })
        .await?;
        let st = StateTotals::of(&rep.positions)?;
        table.add_row(vec![
            Cell::new(sym),
            num(rep.new_rewards),
            num(t.format_amount(rep.new_amount)),
            num(t.format_amount(st.activating)),
            num(t.format_amount(st.active)),
            num(t.format_amount(st.deactivating)),
            num(t.format_amount(st.withdrawable)),
        ]);
    }
    chains.save()?;
    println!("{table}");
    Ok(())
}

/// `softstake flow --token T [--tx HASH [--received AMOUNT] [--note TEXT]]`: declares a
/// treasury flow ([`tr::declare_treasury_flow`]) and prints it, or lists the token's
/// flows without `--tx`.
pub async fn flow(
    store: &Store,
    cfg: &NetworkConfig,
    token: &str,
    tx: Option<&str>,
    received: Option<&str>,
    note: Option<&str>,
    clock: &dyn Clock,
) -> Result<()> {
    let t = cfg.registry.get(token)?;
    let mut table = report::table(&["tx", "block", "nonce", "received", "sent"]);
    let row = |f: &softstake_core::position::TreasuryFlow| {
        vec![
            Cell::new(short(&f.tx_id)),
            num(f.block),
            Cell::new(f.nonce.map(|n| n.to_string()).unwrap_or_default()),
            num(t.format_amount(f.received)),
            num(t.format_amount(f.sent)),
        ]
    };
    let Some(tx) = tx else {
        if received.is_some() || note.is_some() {
            bail!("--received and --note go with --tx");
        }
        for f in store.treasury_flows(token).await? {
            table.add_row(row(&f));
        }
        println!("{table}");
        return Ok(());
    };
    let received = received
        .map(|r| t.parse_amount(r).with_context(|| format!("--received {r:?}")))
        .transpose()?;
    let now = clock.now();
    let chains = cli_chains(cfg, Some(token), now)?;
    let h = chains.get(token)?;
    let (f, new) = tr::declare_treasury_flow(store, h.adapter.as_ref(), tx, received, note, now)
        .await
        .with_context(|| format!("declaring {token} flow {tx}"))?;
    table.add_row(row(&f));
    println!("{table}");
    println!(
        "{}",
        if new {
            "declared"
        } else {
            "already declared: nothing changed"
        }
    );
    Ok(())
}

/// `softstake reconcile [--token T] [--acknowledge ID --by NAME]`.
pub async fn reconcile(
    store: &Store,
    cfg: &NetworkConfig,
    token: Option<&str>,
    acknowledge: Option<i64>,
    by: &str,
    clock: &dyn Clock,
) -> Result<()> {
    let now = clock.now();
    let chains = cli_chains(cfg, None, now)?;
    if let Some(id) = acknowledge {
        let alert = store.alert(id).await?.with_context(|| format!("no alert {id}"))?;
        let h = chains.get(&alert.token)?;
        let lines = under_lease(store, &alert.token, "reconcile", async |s| {
            Ok(tr::acknowledge_drift(s, h.adapter.as_ref(), id, by, now).await?)
        })
        .await?;
        chains.save()?;
        println!(
            "alert {id} acknowledged by {by}; booked {} drift lines; moves of {} are unfrozen",
            lines.iter().filter(|l| l.drift != 0).count(),
            alert.token
        );
        return Ok(());
    }
    let mut table = report::table(&["token", "validator", "ledger", "chain", "drift", "status"]);
    let mut frozen = Vec::new();
    for sym in selected(&chains, token)? {
        let t = cfg.registry.get(sym)?;
        let h = chains.get(sym)?;
        let rep = under_lease(store, sym, "reconcile", async |s| {
            Executor::new(s, h.adapter.as_ref(), h.exec.clone()).recover().await?;
            tr::reconcile_token(s, h.adapter.as_ref(), t, cfg.treasury.drift_tolerance_bps, now)
                .await
                .with_context(|| format!("reconciling {sym}"))
        })
        .await?;
        for l in &rep.lines {
            table.add_row(vec![
                Cell::new(sym),
                Cell::new(short(&l.validator)),
                num(signed_units(t, l.expected)),
                num(signed_units(t, l.actual)),
                num(signed_units(t, l.drift)),
                Cell::new(if l.beyond_tolerance { "DRIFT" } else { "ok" }),
            ]);
        }
        if let Some(id) = rep.alert_id {
            frozen.push(format!(
                "{sym}: alert {id} — moves frozen; acknowledge with `softstake reconcile --acknowledge {id} --by NAME`"
            ));
        }
    }
    chains.save()?;
    println!("{table}");
    for f in &frozen {
        println!("{f}");
    }
    Ok(())
}

/// `softstake status [--token T]`: per token, custodial, eligible, staked by state read
/// from the chain, buffer, forecast, APR and alerts.
pub async fn status(store: &Store, cfg: &NetworkConfig, token: Option<&str>, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    let chains = cli_chains(cfg, token, now)?;
    let text = status_report(store, cfg, &chains, token, now).await;
    chains.save()?;
    println!("{}", text?);
    Ok(())
}

/// The status table and alert lines, as `softstake status` prints them.
pub async fn status_report(
    store: &Store,
    cfg: &NetworkConfig,
    chains: &Chains,
    token: Option<&str>,
    now: Timestamp,
) -> Result<String> {
    let aprs = store.latest_apr().await?;
    let mut table = report::table(&[
        "token",
        "custodial P",
        "eligible Σe",
        "activating",
        "active",
        "deactivating",
        "withdrawable",
        "target buffer",
        "liquid now",
        "in 1 d",
        "in 7 d",
        "in 21 d",
        "APR",
        "alerts",
    ]);
    let mut messages = Vec::new();
    for sym in selected(chains, token)? {
        let t = cfg.registry.get(sym)?;
        let h = chains.get(sym)?;
        let p = tr::plan_token(store, h.adapter.as_ref(), t, cfg.treasury.outflow_history_days, now).await?;
        let open = store.alerts(Some(sym), false).await?;
        for a in &open {
            messages.push(format!("{sym} alert {} [{}]: {}", a.id, a.kind, a.message));
        }
        for a in p
            .alerts
            .iter()
            .filter(|a| !open.iter().any(|o| o.kind == a.kind.as_str()))
        {
            messages.push(format!("{sym} [{}]: {}", a.kind.as_str(), a.message));
        }
        let apr = aprs
            .iter()
            .find(|a| a.token == sym)
            .map(|a| apr_pct(a.apr))
            .unwrap_or_else(|| "—".into());
        let f = |a: Amount| t.format_amount(a);
        table.add_row(vec![
            Cell::new(sym),
            num(f(p.custodial_total)),
            num(f(p.total_eligible)),
            num(f(p.totals.activating)),
            num(f(p.totals.active)),
            num(f(p.totals.deactivating)),
            num(f(p.totals.withdrawable)),
            num(f(p.buffer.target_buffer)),
            num(signed_units(t, p.forecast.liquid_now)),
            num(signed_units(t, p.forecast.available_1d)),
            num(signed_units(t, p.forecast.available_7d)),
            num(signed_units(t, p.forecast.available_21d)),
            num(apr),
            num(open.len() + p.alerts.len()),
        ]);
    }
    let mut out = table.to_string();
    for m in &messages {
        out.push('\n');
        out.push_str(m);
    }
    Ok(out)
}
