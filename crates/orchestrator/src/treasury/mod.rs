//! The treasury loop on one token: sync realized rewards and positions, reconcile the
//! ledger with the chain, plan, execute through the journal.
//!
//! ```text
//!  sync:       rewards_since(cursor) ─▶ realized rewards (ledger, days) ; positions ─▶ snapshot
//!  reconcile:  ledger stake:<v> (expected) vs Σ positions(v) (actual) ─▶ drift > tolerance
//!              ─▶ alert that freezes moves until a treasury user acknowledges it
//!  plan:       P, Σe, history (store) + positions, validators, epoch (chain) ─▶ core::plan
//!  execute:    recover open operations ─▶ intents ─▶ Executor (journal) ─▶ chain
//! ```

pub mod executor;

use std::collections::BTreeMap;

use crate::error::{OrchestratorError, Result};
use tracing::{info, warn};

use softstake_adapters::traits::TreasuryFlow;
use softstake_adapters::{ChainAdapter, RewardKind, SignedTx};
use softstake_core::buffer::signed;
use softstake_core::ledger::{Entry, LedgerAccount};
use softstake_core::plan::{plan, AlertKind, OpKind, PlanInputs, TreasuryPlan};
use softstake_core::position::{Position, StakeState};
use softstake_core::{Amount, Timestamp, TokenConfig};
use softstake_store::{FlowSource, NewOperation, OperationState, PlanRecord, PlanStatus, RealizedReward, Store};

use executor::{ExecConfig, Executor, OpOutcome};

/// Most reward pages read in one sync (a bound on the loop).
const MAX_REWARD_PAGES: usize = 1_000;

/// What a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// New realized rewards stored.
    pub new_rewards: u64,
    /// Their sum, base units.
    pub new_amount: Amount,
    /// Positions read.
    pub positions: Vec<Position>,
}

/// Reads realized rewards since the saved cursor and the current positions into the
/// store.
pub async fn sync_token(store: &Store, chain: &dyn ChainAdapter, now: Timestamp) -> Result<SyncReport> {
    let token = chain.token().to_string();
    let mut report = SyncReport::default();
    let mut cursor = store.reward_cursor(&token).await?;
    // an adapter that reads its exits from the journal may realize rewards from them (Sui's
    // withdrawals pay the reward): give it the journal's exits before the rewards
    if chain.exits_from_journal() {
        give_journal_exits(store, chain, &token).await?;
    }
    let flows_seen = if chain.rewards_net_of_flows() {
        Some(give_treasury_flows(store, chain, &token, now).await?)
    } else {
        None
    };
    for _ in 0..MAX_REWARD_PAGES {
        let page = chain
            .rewards_since(cursor.as_deref())
            .await
            .map_err(OrchestratorError::chain(&token, "reading realized rewards"))?;
        let records: Vec<RealizedReward> = page
            .records
            .iter()
            .map(|r| RealizedReward {
                validator: r.validator.clone(),
                epoch: r.epoch,
                kind: match r.kind {
                    RewardKind::Compounded => "compounded".into(),
                    RewardKind::Claimed => "claimed".into(),
                },
                amount: r.amount,
                at: r.at,
            })
            .collect();
        let done = records.is_empty() || cursor.as_deref() == Some(page.cursor.as_str());
        let out = match flows_seen {
            Some(seen) => {
                store
                    .record_realized_after_flows(&token, &records, &page.cursor, seen, now)
                    .await?
            }
            None => store.record_realized(&token, &records, &page.cursor, now).await?,
        };
        report.new_rewards += out.new_records;
        report.new_amount = report.new_amount.checked_add(out.new_amount, "synced rewards")?;
        cursor = Some(page.cursor);
        if done {
            break;
        }
    }
    // the journal's exits were given above
    report.positions = read_positions(store, chain).await?;
    if chain.rewards_from_positions() {
        let cursor = cursor.unwrap_or_default();
        let out = realize_position_growth(store, chain, &report.positions, &cursor).await?;
        report.new_rewards += out.new_records;
        report.new_amount = report.new_amount.checked_add(out.new_amount, "synced rewards")?;
    }
    store.save_positions(&token, &report.positions, now).await?;
    if report.new_rewards > 0 {
        info!(token = %token, rewards = report.new_rewards, amount = %report.new_amount, "synced realized rewards");
    }
    Ok(report)
}

/// Resolves the journal's transactions that have no recorded flow yet (one receipt
/// each; those the chain has no receipt for wait for the next sync), records them, and
/// gives `chain` every recorded flow ([`ChainAdapter::rewards_net_of_flows`]).
/// Returns how many flows it gave (the version the booking checks).
async fn give_treasury_flows(store: &Store, chain: &dyn ChainAdapter, token: &str, now: Timestamp) -> Result<usize> {
    for tx_id in store.journal_txs_without_flow(token).await? {
        let flow = chain
            .treasury_flow(&tx_id, None)
            .await
            .map_err(OrchestratorError::chain(token, "reading a journal transaction's flow"))?;
        if let Some(flow) = flow {
            store
                .record_treasury_flow(token, &flow, FlowSource::Journal, None, now)
                .await?;
        }
    }
    let flows = store.treasury_flows(token).await?;
    chain.give_treasury_flows(&flows);
    Ok(flows.len())
}

/// Declares a transfer that moved the treasury's funds outside softstake's journal (a
/// custody deposit or withdrawal the exchange made) on a chain whose reward is balance
/// growth: the chain resolves it from its receipt (`received`: value that arrived through
/// a contract's internal call, base units) and the store keeps it; declaring it again is
/// a no-op.
///
/// # Errors
/// [`OrchestratorError::Refused`] when the token's rewards take no flows or the chain has
/// no receipt for it yet; the chain's refusal (not the treasury's, failed, a disagreeing
/// amount); the store's.
pub async fn declare_treasury_flow(
    store: &Store,
    chain: &dyn ChainAdapter,
    tx_id: &str,
    received: Option<Amount>,
    note: Option<&str>,
    now: Timestamp,
) -> Result<(TreasuryFlow, bool)> {
    let token = chain.token().to_string();
    if !chain.rewards_net_of_flows() {
        return Err(OrchestratorError::Refused(format!(
            "{token}: rewards are not balance growth on this chain; it takes no treasury flows"
        )));
    }
    let flow = chain
        .treasury_flow(tx_id, received)
        .await
        .map_err(OrchestratorError::chain(&token, "reading the declared transaction"))?
        .ok_or_else(|| {
            OrchestratorError::Refused(format!(
                "{token}: the chain has no receipt for {tx_id} yet: declare it once it has landed"
            ))
        })?;
    let new = store
        .record_treasury_flow(&token, &flow, FlowSource::Declared, note, now)
        .await?;
    info!(token = %token, tx = %tx_id, block = flow.block, received = %flow.received, sent = %flow.sent, new, "declared treasury flow");
    Ok((flow, new))
}

/// Gives `chain` the journal's undelegations and confirmed withdrawals
/// ([`ChainAdapter::journal_exits`]).
async fn give_journal_exits(store: &Store, chain: &dyn ChainAdapter, token: &str) -> Result<()> {
    let ops = store.exit_operations(token).await?;
    let undelegations: Vec<(String, String)> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Undelegate)
        .map(|o| (o.validator.clone(), o.idempotency_key.clone()))
        .collect();
    let withdrawals: Vec<SignedTx> = ops
        .iter()
        .filter(|o| o.kind == OpKind::Withdraw)
        .filter(|o| matches!(o.state, OperationState::Confirmed | OperationState::Reconciled))
        .filter_map(|o| {
            Some(SignedTx {
                tx_id: o.tx_id.clone()?,
                payload: o.payload.clone()?,
                valid_until: o.valid_until,
            })
        })
        .collect();
    chain.journal_exits(&undelegations, &withdrawals);
    Ok(())
}

/// The chain's positions and, on a chain that pays matured unbonding back by itself
/// ([`ChainAdapter::unbonding_returns_itself`]), what it has paid back and the ledger has
/// not booked yet: per validator, what our confirmed undelegations released less what
/// withdrawals took and less what the chain still shows unbonding, as a withdrawable
/// position (the planner withdraws it, which books the return). An adapter that finds
/// its unbonding entries from the journal ([`ChainAdapter::exits_from_journal`]) is given
/// the journal's exits first.
///
/// # Errors
/// The chain's or the store's.
pub async fn positions_of(store: &Store, chain: &dyn ChainAdapter) -> Result<Vec<Position>> {
    if chain.exits_from_journal() {
        give_journal_exits(store, chain, chain.token()).await?;
    }
    read_positions(store, chain).await
}

/// [`positions_of`] once the journal's exits are given.
async fn read_positions(store: &Store, chain: &dyn ChainAdapter) -> Result<Vec<Position>> {
    let token = chain.token().to_string();
    let mut positions = chain
        .positions()
        .await
        .map_err(OrchestratorError::chain(&token, "reading positions"))?;
    if !chain.unbonding_returns_itself() {
        return Ok(positions);
    }
    let released = store.released_not_withdrawn(&token).await?;
    for (validator, amount) in released {
        let unbonding = positions
            .iter()
            .filter(|p| p.validator == validator && p.state == StakeState::Deactivating)
            .try_fold(Amount::ZERO, |acc, p| acc.checked_add(p.amount, "unbonding"))?;
        let returned = amount.0.saturating_sub(unbonding.0);
        if returned > 0 {
            positions.push(Position {
                validator,
                state: StakeState::Withdrawable,
                amount: Amount(returned),
                eta: None,
                account: None,
            });
        }
    }
    Ok(positions)
}

/// For chains whose rewards compound with no record to read
/// ([`ChainAdapter::rewards_from_positions`]): books each
/// validator's growth of `positions` over the ledger's `stake:<validator>` (our own
/// operations) as a compounded reward, keyed by the chain time of the reading. Skipped
/// while an operation of the token is open (its effect may be on chain and not yet in
/// the ledger); a shortfall is not a reward (reconciliation reports it as drift).
async fn realize_position_growth(
    store: &Store,
    chain: &dyn ChainAdapter,
    positions: &[Position],
    cursor: &str,
) -> Result<softstake_store::RewardCursor> {
    let token = chain.token().to_string();
    if !store.open_operations(Some(&token)).await?.is_empty() {
        info!(token = %token, "operations open: position growth is realized at the next sync");
        return Ok(softstake_store::RewardCursor::default());
    }
    let at = chain
        .now()
        .await
        .map_err(OrchestratorError::chain(&token, "reading chain time"))?;
    // the chain time of the reading, nanoseconds: one key per reading
    let key = u64::try_from(at.0)
        .map_err(|_| OrchestratorError::Inconsistent(format!("{token}: chain time {at} is before 1970")))?;
    let records: Vec<RealizedReward> = drift(store, &token, positions, 0)
        .await?
        .into_iter()
        .filter(|l| l.drift > 0)
        .map(|l| RealizedReward {
            validator: l.validator,
            epoch: key,
            kind: "compounded".into(),
            amount: Amount(l.drift.unsigned_abs()), // drift > 0 (filtered above)
            at,
        })
        .collect();
    Ok(store.record_realized(&token, &records, cursor, at).await?)
}

/// One validator's reconciliation line (base units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftLine {
    /// Validator.
    pub validator: String,
    /// What the ledger expects on chain.
    pub expected: i128,
    /// What the chain holds.
    pub actual: i128,
    /// `actual − expected`.
    pub drift: i128,
    /// Whether `|drift|` exceeds the tolerance.
    pub beyond_tolerance: bool,
}

/// The outcome of a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Per validator.
    pub lines: Vec<DriftLine>,
    /// The freezing alert raised, if any.
    pub alert_id: Option<i64>,
    /// Operations marked reconciled.
    pub reconciled_ops: u64,
}

/// Compares the ledger's expected positions with the chain's, per validator.
pub async fn drift(store: &Store, token: &str, positions: &[Position], tolerance_bps: u32) -> Result<Vec<DriftLine>> {
    let mut expected: BTreeMap<String, i128> = BTreeMap::new();
    for b in store.ledger_balances(token, "stake:").await? {
        let v = b.account.trim_start_matches("stake:").to_string();
        expected.insert(
            v,
            b.net().to_i128().ok_or_else(|| {
                OrchestratorError::Inconsistent(format!(
                    "{token}: ledger balance of {} beyond ±2^127 base units (more than any chain's supply)",
                    b.account
                ))
            })?,
        );
    }
    let mut actual: BTreeMap<String, i128> = BTreeMap::new();
    for p in positions {
        *actual.entry(p.validator.clone()).or_default() += signed(p.amount)?;
    }
    let validators: std::collections::BTreeSet<&String> = expected.keys().chain(actual.keys()).collect();
    Ok(validators
        .into_iter()
        .map(|v| {
            let e = expected.get(v).copied().unwrap_or(0);
            let a = actual.get(v).copied().unwrap_or(0);
            let tol = e.abs().max(a.abs()) * i128::from(tolerance_bps) / 10_000;
            DriftLine {
                validator: v.clone(),
                expected: e,
                actual: a,
                drift: a - e,
                beyond_tolerance: (a - e).abs() > tol,
            }
        })
        .collect())
}

/// Syncs, then reconciles: drift beyond tolerance raises an alert that freezes moves;
/// no drift marks confirmed operations reconciled. Open operations must be resolved
/// first (their effect may or may not be on chain yet).
pub async fn reconcile_token(
    store: &Store,
    chain: &dyn ChainAdapter,
    cfg: &TokenConfig,
    tolerance_bps: u32,
    now: Timestamp,
) -> Result<ReconcileReport> {
    let token = cfg.symbol.as_str();
    let open = store.open_operations(Some(token)).await?;
    if !open.is_empty() {
        return Err(OrchestratorError::Refused(format!(
            "{token}: {} operations are still open; run `softstake execute` recovery (or wait for finality) before reconciling",
            open.len()
        )));
    }
    let sync = sync_token(store, chain, now).await?;
    reconcile_positions(store, cfg, &sync.positions, tolerance_bps, now).await
}

/// Reconciles against `positions` just read by a sync ([`sync_token`]) with no operation
/// of the token open since: drift beyond `tolerance_bps` raises the freezing alert, no
/// drift marks confirmed operations reconciled. The scheduler's step uses it so one tick
/// reads the chain's positions once.
///
/// # Errors
/// The store's; a ledger balance beyond ±2^127 base units.
pub async fn reconcile_positions(
    store: &Store,
    cfg: &TokenConfig,
    positions: &[Position],
    tolerance_bps: u32,
    now: Timestamp,
) -> Result<ReconcileReport> {
    let token = cfg.symbol.as_str();
    let lines = drift(store, token, positions, tolerance_bps).await?;
    let bad: Vec<&DriftLine> = lines.iter().filter(|l| l.beyond_tolerance).collect();
    if bad.is_empty() {
        let n = store.mark_reconciled(token, now).await?;
        return Ok(ReconcileReport {
            lines,
            alert_id: None,
            reconciled_ops: n,
        });
    }
    let shortfall: i128 = bad.iter().filter(|l| l.drift < 0).map(|l| -l.drift).sum();
    let detail: Vec<String> = bad
        .iter()
        .map(|l| {
            format!(
                "{}: ledger {} vs chain {} ({}{} {token})",
                l.validator,
                cfg.format_amount(Amount(l.expected.unsigned_abs())),
                cfg.format_amount(Amount(l.actual.unsigned_abs())),
                if l.drift < 0 { "-" } else { "+" },
                cfg.format_amount(Amount(l.drift.unsigned_abs()))
            )
        })
        .collect();
    let message = format!(
        "reconciliation drift beyond {tolerance_bps} bps, moves frozen until acknowledged: {}",
        detail.join("; ")
    );
    warn!(token = %token, validators = bad.len(), "reconciliation drift");
    let id = store
        .raise_alert(
            token,
            "drift",
            &message,
            Amount(shortfall.unsigned_abs()),
            None,
            true,
            now,
        )
        .await?;
    Ok(ReconcileReport {
        lines,
        alert_id: Some(id),
        reconciled_ops: 0,
    })
}

/// Acknowledges a drift alert: books the current drift (a loss as `chain:slashing`, a
/// gain as `chain:adjustments`) so the ledger matches the chain again, and unfreezes.
pub async fn acknowledge_drift(
    store: &Store,
    chain: &dyn ChainAdapter,
    alert_id: i64,
    by: &str,
    now: Timestamp,
) -> Result<Vec<DriftLine>> {
    let alert = store
        .alert(alert_id)
        .await?
        .ok_or_else(|| OrchestratorError::Refused(format!("no alert {alert_id}")))?;
    if alert.token != chain.token() {
        return Err(OrchestratorError::Refused(format!(
            "alert {alert_id} is for {}, not {}",
            alert.token,
            chain.token()
        )));
    }
    let positions = positions_of(store, chain).await?;
    let lines = drift(store, &alert.token, &positions, 0).await?;
    let mut entries = Vec::new();
    for l in lines.iter().filter(|l| l.drift != 0) {
        let amount = Amount(l.drift.unsigned_abs());
        let e = Entry::new("drift_acknowledged", &format!("alert {alert_id} by {by}"));
        entries.push(if l.drift < 0 {
            e.transfer(
                LedgerAccount::slashing(),
                LedgerAccount::stake(&l.validator),
                &alert.token,
                amount,
            )
        } else {
            e.transfer(
                LedgerAccount::stake(&l.validator),
                LedgerAccount("chain:adjustments".into()),
                &alert.token,
                amount,
            )
        });
    }
    store.acknowledge_alert(alert_id, by, &entries, now).await?;
    info!(token = %alert.token, alert = alert_id, by = %by, "drift acknowledged and booked");
    Ok(lines)
}

/// Computes a token's plan from the store and the chain. Changes nothing.
pub async fn plan_token(
    store: &Store,
    chain: &dyn ChainAdapter,
    cfg: &TokenConfig,
    history_days: u32,
    now: Timestamp,
) -> Result<TreasuryPlan> {
    let positions = positions_of(store, chain).await?;
    plan_with_positions(store, chain, cfg, history_days, &positions, now).await
}

/// [`plan_token`] over `positions` already read this step (by [`sync_token`] or
/// [`positions_of`]), so one tick reads them once. Changes nothing.
///
/// # Errors
/// The chain's or the store's; the planner's (an amount overflowing u128).
pub async fn plan_with_positions(
    store: &Store,
    chain: &dyn ChainAdapter,
    cfg: &TokenConfig,
    history_days: u32,
    positions: &[Position],
    now: Timestamp,
) -> Result<TreasuryPlan> {
    let token = cfg.symbol.as_str();
    let totals = store.closed_day_totals(token, history_days.max(2)).await?;
    let (p, eligible) = totals.last().map(|(_, p, e)| (*p, *e)).unwrap_or_default();
    let daily: Vec<Amount> = totals.iter().map(|(_, p, _)| *p).collect();
    let model = chain.liquidity_model().await?;
    let epoch = chain.epoch().await?;
    let validators = chain.validators().await?;
    let claimable = chain.claimable().await?;
    let (moved, ops) = store.moved_in_epoch(token, epoch.index, model.instant_exit).await?;
    let frozen = store.frozen(token).await?;
    let last_claim = store.last_claim(token).await?;
    let spendable = chain.spendable().await?;
    Ok(plan(&PlanInputs {
        token: cfg,
        model: &model,
        epoch,
        now,
        custodial_total: p,
        total_eligible: eligible,
        daily_totals: &daily,
        positions,
        validators: &validators,
        moved_this_epoch: moved,
        ops_this_epoch: ops,
        claimable: &claimable,
        last_claim,
        frozen,
        spendable: Some(spendable),
    })?)
}

/// Raises the plan's liquidity alerts in the store and clears those that no longer
/// apply.
pub async fn refresh_liquidity_alerts(store: &Store, p: &TreasuryPlan, now: Timestamp) -> Result<()> {
    let open = store.alerts(Some(&p.token), false).await?;
    for kind in [AlertKind::LiquidityShortfall, AlertKind::BufferBelowTarget] {
        if !p.alerts.iter().any(|a| a.kind == kind) && !open.iter().any(|a| a.kind == kind.as_str()) {
            continue; // nothing to raise, nothing open to resolve
        }
        match p.alerts.iter().find(|a| a.kind == kind) {
            Some(a) => {
                store
                    .raise_alert(&p.token, kind.as_str(), &a.message, a.shortfall, a.exit_eta, false, now)
                    .await?;
            }
            None => {
                store.resolve_alerts(&p.token, kind.as_str(), now).await?;
            }
        }
    }
    Ok(())
}

/// What executing a plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecReport {
    /// Plan id.
    pub plan_id: String,
    /// Open operations of earlier runs resolved first.
    pub recovered: Vec<(String, OpOutcome)>,
    /// Outcome per operation of the plan, in order.
    pub outcomes: Vec<(String, OpOutcome)>,
}

/// Executes a plan through the journal: refuses when moves are frozen or when the plan
/// needs an approval that was not given; resolves earlier open operations first;
/// records the intents; runs them in order.
pub async fn execute_plan(
    store: &Store,
    chain: &dyn ChainAdapter,
    p: &TreasuryPlan,
    approved_by: Option<&str>,
    exec: ExecConfig,
    now: Timestamp,
) -> Result<ExecReport> {
    if let Some(why) = store.frozen(&p.token).await? {
        return Err(OrchestratorError::Refused(format!(
            "{}: moves are frozen ({why}); acknowledge it with `softstake reconcile --acknowledge ID --by NAME`",
            p.token
        )));
    }
    if p.needs_approval && approved_by.is_none() {
        return Err(OrchestratorError::Refused(format!(
            "plan {} moves {} base units of {}, above the approval threshold: re-run with --approve",
            p.plan_id, p.moved, p.token
        )));
    }
    let executor = Executor::new(store, chain, exec);
    let recovered = executor.recover().await?;
    let record = PlanRecord {
        plan_id: p.plan_id.clone(),
        token: p.token.clone(),
        epoch: p.epoch,
        created_at: now,
        status: PlanStatus::Approved,
        moved: p.moved,
        needs_approval: p.needs_approval,
        approved_by: approved_by
            .map(str::to_string)
            .or_else(|| Some("auto: below the approval threshold".into())),
        approved_at: Some(now),
        body: serde_json::to_string(p)?,
    };
    store.save_plan(&record).await?;
    store
        .set_plan_status(
            &p.plan_id,
            &[PlanStatus::Approved, PlanStatus::Executing, PlanStatus::Failed],
            PlanStatus::Executing,
            None,
            now,
        )
        .await?;
    let intents: Vec<NewOperation> = p
        .ops
        .iter()
        .map(|o| NewOperation {
            idempotency_key: o.idempotency_key.clone(),
            plan_id: p.plan_id.clone(),
            seq: o.seq,
            token: p.token.clone(),
            kind: o.kind,
            validator: o.validator.clone(),
            amount: o.amount,
            epoch: p.epoch,
        })
        .collect();
    store.record_intents(&intents, now).await?;
    let mut outcomes = Vec::with_capacity(p.ops.len());
    for o in &p.ops {
        let outcome = executor.run(&o.idempotency_key).await?;
        outcomes.push((o.idempotency_key.clone(), outcome));
    }
    let status = if outcomes.iter().any(|(_, o)| matches!(o, OpOutcome::Failed(_))) {
        PlanStatus::Failed
    } else {
        PlanStatus::Done
    };
    let pending = outcomes.iter().any(|(_, o)| *o == OpOutcome::Pending);
    if !pending {
        store
            .set_plan_status(&p.plan_id, &[PlanStatus::Executing], status, None, now)
            .await?;
    }
    info!(token = %p.token, plan = %p.plan_id, ops = p.ops.len(), status = status.as_str(), "executed plan");
    Ok(ExecReport {
        plan_id: p.plan_id.clone(),
        recovered,
        outcomes,
    })
}
