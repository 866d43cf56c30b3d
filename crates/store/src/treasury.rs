//! Treasury records: plans, realized rewards synced from chains (with their cursors),
//! alerts (drift freezes moves until acknowledged), position snapshots and custody
//! changes.

use softstake_core::ledger::{Entry, LedgerAccount};
use softstake_core::position::{Position, StakeState};
use softstake_core::{Amount, Day, Net, Timestamp};

use crate::db::{insert_rows, on_pool, on_tx, DbAmount, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::ledger::insert_entries;
use crate::rewards::{first_closed, record_one, RecordOutcome};
use crate::Store;

/// Lifecycle of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    /// Computed and stored, waiting for approval.
    Proposed,
    /// Approved (by a treasury user or under the approval threshold).
    Approved,
    /// Operations are being executed.
    Executing,
    /// Every operation confirmed (or failed, see the journal).
    Done,
    /// Some operation failed.
    Failed,
    /// Rejected by a treasury user.
    Rejected,
}

impl PlanStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanStatus::Proposed => "proposed",
            PlanStatus::Approved => "approved",
            PlanStatus::Executing => "executing",
            PlanStatus::Done => "done",
            PlanStatus::Failed => "failed",
            PlanStatus::Rejected => "rejected",
        }
    }

    /// Parses [`PlanStatus::as_str`]'s output.
    pub fn parse(s: &str) -> Option<PlanStatus> {
        Some(match s {
            "proposed" => PlanStatus::Proposed,
            "approved" => PlanStatus::Approved,
            "executing" => PlanStatus::Executing,
            "done" => PlanStatus::Done,
            "failed" => PlanStatus::Failed,
            "rejected" => PlanStatus::Rejected,
            _ => return None,
        })
    }
}

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRecord {
    /// Content hash.
    pub plan_id: String,
    /// Token.
    pub token: String,
    /// Chain epoch.
    pub epoch: u64,
    /// Created.
    pub created_at: Timestamp,
    /// Status.
    pub status: PlanStatus,
    /// Stake moved, base units.
    pub moved: Amount,
    /// Needs explicit approval.
    pub needs_approval: bool,
    /// Who approved.
    pub approved_by: Option<String>,
    /// When.
    pub approved_at: Option<Timestamp>,
    /// The plan as JSON (softstake_core::plan::TreasuryPlan).
    pub body: String,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Id.
    pub id: i64,
    /// Token.
    pub token: String,
    /// Kind (`drift`, `liquidity_shortfall`, `buffer_below_target`, …).
    pub kind: String,
    /// Message.
    pub message: String,
    /// Missing amount, base units.
    pub shortfall: Amount,
    /// Exit ETA, if any.
    pub exit_eta: Option<Timestamp>,
    /// True when the alert freezes stake moves for the token until acknowledged.
    pub freeze: bool,
    /// Raised.
    pub created_at: Timestamp,
    /// Last updated.
    pub updated_at: Timestamp,
    /// When acknowledged.
    pub acknowledged_at: Option<Timestamp>,
    /// By whom.
    pub acknowledged_by: Option<String>,
}

/// A realized reward to record from a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealizedReward {
    /// Validator.
    pub validator: String,
    /// Chain epoch.
    pub epoch: u64,
    /// `compounded` or `claimed`.
    pub kind: String,
    /// Amount, base units.
    pub amount: Amount,
    /// Chain time.
    pub at: Timestamp,
}

/// What a reward sync stored.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RewardCursor {
    /// New records stored.
    pub new_records: u64,
    /// Σ of the new records, base units.
    pub new_amount: Amount,
    /// The cursor saved for next time.
    pub cursor: String,
}

/// Positions last read from a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionSnapshot {
    /// When they were read.
    pub at: Timestamp,
    /// The positions.
    pub positions: Vec<Position>,
}

const PLAN_COLS: &str =
    "plan_id, token, epoch, created_at, status, moved, needs_approval, approved_by, approved_at, body";
const ALERT_COLS: &str = "id, token, kind, message, shortfall, exit_eta, freezes_moves, created_at, updated_at, acknowledged_at, acknowledged_by";

fn decode_plan<R: RowExt>(r: &R) -> Result<PlanRecord> {
    let status = r.text("status")?;
    Ok(PlanRecord {
        plan_id: r.text("plan_id")?,
        token: r.text("token")?,
        epoch: r.int("epoch")? as u64,
        created_at: r.ts("created_at")?,
        status: PlanStatus::parse(&status).ok_or_else(|| StoreError::corrupt("plans", format!("status {status:?}")))?,
        moved: r.amount("moved", "plans")?,
        needs_approval: r.int("needs_approval")? != 0,
        approved_by: r.opt_text("approved_by")?,
        approved_at: r.opt_ts("approved_at")?,
        body: r.text("body")?,
    })
}

fn decode_alert<R: RowExt>(r: &R) -> Result<Alert> {
    Ok(Alert {
        id: r.int("id")?,
        token: r.text("token")?,
        kind: r.text("kind")?,
        message: r.text("message")?,
        shortfall: r.amount("shortfall", "alerts")?,
        exit_eta: r.opt_ts("exit_eta")?,
        freeze: r.int("freezes_moves")? != 0,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
        acknowledged_at: r.opt_ts("acknowledged_at")?,
        acknowledged_by: r.opt_text("acknowledged_by")?,
    })
}

/// The day a reward realized on `day` is attributed to: that day, unless it is already
/// distributed (then the first day after the last distribution) or before the token's
/// first closed day (then that day: earlier days are never paid).
async fn attribution_day(tx: &mut Tx, token: &str, day: Day) -> Result<Day> {
    let last = on_tx!(&mut *tx, |c| sqlx::query(
        "SELECT MAX(day) AS day FROM distributions WHERE token = $1"
    )
    .bind(token)
    .fetch_one(&mut *c)
    .await?
    .opt_day("day", "distributions")?);
    let day = match last {
        Some(l) if l >= day => l.next(),
        _ => day,
    };
    Ok(match first_closed(tx, token).await? {
        Some(first) if first > day => first,
        _ => day,
    })
}

impl Store {
    /// Replaces `token`'s pool status: the body (the leader's last plan, JSON) computed
    /// at `at`. A fenced write: a stale leader's is refused.
    pub async fn save_pool_status(&self, token: &str, body: &str, at: Timestamp) -> Result<()> {
        let mut tx = self.write_tx().await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO pool_status (token, body, computed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token) DO UPDATE SET body = excluded.body, computed_at = excluded.computed_at"
        )
        .bind(token)
        .bind(body)
        .bind(at.0)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(())
    }

    /// `token`'s last saved pool status: when it was computed and its body.
    pub async fn pool_status(&self, token: &str) -> Result<Option<(Timestamp, String)>> {
        on_pool!(self, |p| {
            let row = sqlx::query("SELECT body, computed_at FROM pool_status WHERE token = $1")
                .bind(token)
                .fetch_optional(p)
                .await?;
            row.map(|r| Ok((r.ts("computed_at")?, r.text("body")?))).transpose()
        })
    }

    /// Stores a plan (a plan already stored keeps its record).
    pub async fn save_plan(&self, p: &PlanRecord) -> Result<()> {
        let sql = format!(
            "INSERT INTO plans ({PLAN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (plan_id) DO NOTHING"
        );
        let mut tx = self.write_tx().await?;
        on_tx!(&mut tx, |c| sqlx::query(&sql)
            .bind(&p.plan_id)
            .bind(&p.token)
            .bind(p.epoch as i64)
            .bind(p.created_at.0)
            .bind(p.status.as_str())
            .bind(DbAmount(p.moved.0))
            .bind(i64::from(p.needs_approval))
            .bind(p.approved_by.as_deref())
            .bind(p.approved_at.map(|t| t.0))
            .bind(&p.body)
            .execute(&mut *c)
            .await?
            .rows_affected());
        tx.commit().await?;
        Ok(())
    }

    /// A stored plan.
    pub async fn plan(&self, plan_id: &str) -> Result<Option<PlanRecord>> {
        let sql = format!("SELECT {PLAN_COLS} FROM plans WHERE plan_id = $1");
        on_pool!(self, |p| {
            let row = sqlx::query(&sql).bind(plan_id).fetch_optional(p).await?;
            row.map(|r| decode_plan(&r)).transpose()
        })
    }

    /// Plans, newest first.
    pub async fn plans(&self, token: Option<&str>, limit: u32) -> Result<Vec<PlanRecord>> {
        let sql =
            format!("SELECT {PLAN_COLS} FROM plans WHERE ($1 = '' OR token = $1) ORDER BY created_at DESC LIMIT $2");
        on_pool!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(token.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?;
            rows.iter().map(decode_plan).collect()
        })
    }

    /// Moves a plan to `to` if it is in one of `from`; approvals record who and when.
    pub async fn set_plan_status(
        &self,
        plan_id: &str,
        from: &[PlanStatus],
        to: PlanStatus,
        by: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let allowed: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let sql = format!(
            "UPDATE plans SET status = $1, approved_by = COALESCE($2, approved_by), approved_at = CASE WHEN $2 IS NULL THEN approved_at ELSE $3 END \
             WHERE plan_id = $4 AND status IN ({})",
            allowed.join(", ")
        );
        let mut tx = self.write_tx().await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(&sql)
            .bind(to.as_str())
            .bind(by)
            .bind(now.0)
            .bind(plan_id)
            .execute(&mut *c)
            .await?
            .rows_affected());
        tx.commit().await?;
        if n != 1 {
            let cur = self
                .plan(plan_id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("plan {plan_id}")))?;
            return Err(StoreError::Journal(format!(
                "plan {plan_id} is {}; cannot become {}",
                cur.status.as_str(),
                to.as_str()
            )));
        }
        Ok(())
    }

    /// The saved rewards cursor of a token's chain.
    pub async fn reward_cursor(&self, token: &str) -> Result<Option<String>> {
        on_pool!(self, |p| {
            let row = sqlx::query("SELECT cursor FROM reward_cursors WHERE token = $1")
                .bind(token)
                .fetch_optional(p)
                .await?;
            row.map(|r| r.text("cursor")).transpose()
        })
    }

    /// Records realized rewards from a chain and the new cursor, in one transaction that
    /// holds the token's day lock: each reward once (by token, validator, epoch, kind),
    /// attributed to the UTC day it was realized (or the first day not yet distributed,
    /// and never before the first closed day), with its ledger entry
    /// (`Dr stake:<validator>` when compounded, `Dr pool:buffer` when claimed,
    /// `Cr chain:rewards`).
    pub async fn record_realized(
        &self,
        token: &str,
        rewards: &[RealizedReward],
        cursor: &str,
        now: Timestamp,
    ) -> Result<RewardCursor> {
        self.record_realized_inner(token, rewards, cursor, None, now).await
    }

    /// As [`Store::record_realized`], for rewards computed from the `flows_seen` treasury
    /// flows the sync read ([`Store::treasury_flows`]): refused, with nothing written,
    /// when another writer recorded a flow since (its block may lie in the window just
    /// computed; the next sync accounts it). The check runs inside the write transaction,
    /// under the token's day lock that [`Store::record_treasury_flow`] takes too.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the flows changed; as [`Store::record_realized`].
    pub async fn record_realized_after_flows(
        &self,
        token: &str,
        rewards: &[RealizedReward],
        cursor: &str,
        flows_seen: usize,
        now: Timestamp,
    ) -> Result<RewardCursor> {
        self.record_realized_inner(token, rewards, cursor, Some(flows_seen), now)
            .await
    }

    async fn record_realized_inner(
        &self,
        token: &str,
        rewards: &[RealizedReward],
        cursor: &str,
        flows_seen: Option<usize>,
        now: Timestamp,
    ) -> Result<RewardCursor> {
        // nothing to book and the cursor where it is: no write (the scheduler syncs every
        // tick, and most pages are empty)
        if rewards.iter().all(|r| r.amount.is_zero()) && self.reward_cursor(token).await?.as_deref() == Some(cursor) {
            return Ok(RewardCursor {
                cursor: cursor.to_string(),
                ..RewardCursor::default()
            });
        }
        let mut tx = self.write_tx().await?;
        Store::lock_token_days(&mut tx, token).await?;
        if let Some(seen) = flows_seen {
            crate::flows::check_flows_unchanged(&mut tx, token, seen).await?;
        }
        let mut out = RewardCursor {
            cursor: cursor.to_string(),
            ..RewardCursor::default()
        };
        for r in rewards {
            if r.amount.is_zero() {
                continue;
            }
            let stored = on_tx!(&mut tx, |c| {
                sqlx::query(
                "SELECT amount FROM realized_rewards WHERE token = $1 AND validator = $2 AND epoch = $3 AND kind = $4",
            )
            .bind(token)
            .bind(&r.validator)
            .bind(r.epoch as i64)
            .bind(&r.kind)
            .fetch_optional(&mut *c)
            .await?
            .map(|row| row.amount("amount", "realized_rewards"))
            .transpose()?
            });
            if let Some(stored) = stored {
                if stored != r.amount {
                    return Err(StoreError::corrupt(
                        "realized_rewards",
                        format!(
                            "{token} {} epoch {}: chain now reports {} after {stored}",
                            r.validator, r.epoch, r.amount
                        ),
                    ));
                }
                continue;
            }
            let day = attribution_day(&mut tx, token, r.at.day()).await?;
            on_tx!(&mut tx, |c| {
                sqlx::query(
                "INSERT INTO realized_rewards (token, validator, epoch, kind, amount, at, day) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            )
            .bind(token)
            .bind(&r.validator)
            .bind(r.epoch as i64)
            .bind(&r.kind)
            .bind(DbAmount(r.amount.0))
            .bind(r.at.0)
            .bind(day.to_string())
            .execute(&mut *c)
            .await?
            .rows_affected()
            });
            let debit = if r.kind == "claimed" {
                LedgerAccount::buffer()
            } else {
                LedgerAccount::stake(&r.validator)
            };
            let source = format!("chain:{}:{}:{}", r.validator, r.epoch, r.kind);
            if record_one(&mut tx, token, day, &source, r.amount, debit, now).await? == RecordOutcome::Recorded {
                out.new_records += 1;
                out.new_amount = out.new_amount.checked_add(r.amount, "new rewards")?;
            }
        }
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO reward_cursors (token, cursor, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at"
        )
        .bind(token)
        .bind(cursor)
        .bind(now.0)
        .execute(&mut *c)
        .await?
        .rows_affected());
        self.pauses.hold(crate::PausePoint::RealizedRecorded).await;
        tx.commit().await?;
        Ok(out)
    }

    /// When rewards of `token` were last claimed (claim chains), from the synced records.
    pub async fn last_claim(&self, token: &str) -> Result<Option<Timestamp>> {
        on_pool!(self, |p| sqlx::query(
            "SELECT MAX(at) AS at FROM realized_rewards WHERE token = $1 AND kind = 'claimed'"
        )
        .bind(token)
        .fetch_one(p)
        .await?
        .opt_ts("at"))
    }

    /// Raises an alert, or refreshes the open one of the same token and kind (one open
    /// alert per kind). Returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn raise_alert(
        &self,
        token: &str,
        kind: &str,
        message: &str,
        shortfall: Amount,
        exit_eta: Option<Timestamp>,
        freeze: bool,
        now: Timestamp,
    ) -> Result<i64> {
        let mut tx = self.write_tx().await?;
        let open = on_tx!(&mut tx, |c| sqlx::query(
            "SELECT id FROM alerts WHERE token = $1 AND kind = $2 AND acknowledged_at IS NULL"
        )
        .bind(token)
        .bind(kind)
        .fetch_optional(&mut *c)
        .await?
        .map(|r| r.int("id"))
        .transpose()?);
        let id = match open {
            Some(id) => {
                on_tx!(&mut tx, |c| {
                    sqlx::query(
                    "UPDATE alerts SET message = $1, shortfall = $2, exit_eta = $3, freezes_moves = $4, updated_at = $5 WHERE id = $6"
                )
                .bind(message)
                .bind(DbAmount(shortfall.0))
                .bind(exit_eta.map(|t| t.0))
                .bind(i64::from(freeze))
                .bind(now.0)
                .bind(id)
                .execute(&mut *c)
                .await?
            .rows_affected()
                });
                id
            }
            None => on_tx!(&mut tx, |c| {
                sqlx::query(
                "INSERT INTO alerts (token, kind, message, shortfall, exit_eta, freezes_moves, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
            )
            .bind(token)
            .bind(kind)
            .bind(message)
            .bind(DbAmount(shortfall.0))
            .bind(exit_eta.map(|t| t.0))
            .bind(i64::from(freeze))
            .bind(now.0)
            .fetch_one(&mut *c)
            .await?
            .int("id")?
            }),
        };
        tx.commit().await?;
        Ok(id)
    }

    /// Closes open alerts of `token` and `kind` that no longer apply (e.g. liquidity back
    /// above target). Freezing alerts are never closed this way: they need a person.
    pub async fn resolve_alerts(&self, token: &str, kind: &str, now: Timestamp) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE alerts SET acknowledged_at = $1, acknowledged_by = 'resolved: condition cleared' \
             WHERE token = $2 AND kind = $3 AND acknowledged_at IS NULL AND freezes_moves = 0",
        )
        .bind(now.0)
        .bind(token)
        .bind(kind)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(n)
    }

    /// Alerts, newest first; only open ones unless `all`.
    pub async fn alerts(&self, token: Option<&str>, all: bool) -> Result<Vec<Alert>> {
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE ($1 = '' OR token = $1) AND ($2 = 1 OR acknowledged_at IS NULL) ORDER BY id DESC"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(token.unwrap_or(""))
                .bind(i64::from(all))
                .fetch_all(p)
                .await?;
            rows.iter().map(decode_alert).collect()
        })
    }

    /// One alert.
    pub async fn alert(&self, id: i64) -> Result<Option<Alert>> {
        let sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE id = $1");
        on_pool!(self, |p| {
            let row = sqlx::query(&sql).bind(id).fetch_optional(p).await?;
            row.map(|r| decode_alert(&r)).transpose()
        })
    }

    /// Acknowledges an alert, recording `entries` (e.g. booking a drift as slashing) in
    /// the same transaction. Acknowledging twice is refused.
    pub async fn acknowledge_alert(&self, id: i64, by: &str, entries: &[Entry], now: Timestamp) -> Result<Alert> {
        let mut tx = self.write_tx().await?;
        let n = on_tx!(&mut tx, |c| {
            sqlx::query(
            "UPDATE alerts SET acknowledged_at = $1, acknowledged_by = $2 WHERE id = $3 AND acknowledged_at IS NULL",
        )
        .bind(now.0)
        .bind(by)
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::NotFound(format!(
                "open alert {id} (unknown or already acknowledged)"
            )));
        }
        insert_entries(&mut tx, entries, now).await?;
        tx.commit().await?;
        self.alert(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("alert {id}")))
    }

    /// Why moves of `token` are frozen (the open freezing alert's message), if they are.
    pub async fn frozen(&self, token: &str) -> Result<Option<String>> {
        on_pool!(self, |p| {
            let row = sqlx::query(
                "SELECT id, message FROM alerts WHERE token = $1 AND freezes_moves = 1 AND acknowledged_at IS NULL ORDER BY id LIMIT 1",
            )
            .bind(token)
            .fetch_optional(p)
            .await?;
            row.map(|r| -> Result<String> { Ok(format!("alert {}: {}", r.int("id")?, r.text("message")?)) })
                .transpose()
        })
    }

    /// Replaces the position snapshot of `token`.
    pub async fn save_positions(&self, token: &str, positions: &[Position], now: Timestamp) -> Result<()> {
        let mut tx = self.write_tx().await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM position_snapshots WHERE token = $1"
        )
        .bind(token)
        .execute(&mut *c)
        .await?
        .rows_affected());
        let rows: Vec<Vec<Val>> = positions
            .iter()
            .map(|p| {
                vec![
                    Val::T(token.to_string()),
                    Val::T(p.validator.clone()),
                    Val::T(p.state.as_str().to_string()),
                    Val::A(p.amount),
                    p.eta.map(|t| Val::I(t.0)).unwrap_or(Val::NullI),
                    Val::T(p.account.clone().unwrap_or_default()),
                    Val::I(now.0),
                ]
            })
            .collect();
        insert_rows(
            &mut tx,
            "INSERT INTO position_snapshots (token, validator, state, amount, eta, account, at)",
            "",
            7,
            &rows,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The last position snapshot of `token`, if any.
    pub async fn positions_snapshot(&self, token: &str) -> Result<Option<PositionSnapshot>> {
        let rows: Vec<(Timestamp, Position)> = on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT validator, state, amount, eta, account, at FROM position_snapshots WHERE token = $1 ORDER BY validator, state",
            )
            .bind(token)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    let state = r.text("state")?;
                    let account = r.text("account")?;
                    Ok((
                        r.ts("at")?,
                        Position {
                            validator: r.text("validator")?,
                            state: StakeState::parse(&state)
                                .ok_or_else(|| StoreError::corrupt("position_snapshots", format!("state {state:?}")))?,
                            amount: r.amount("amount", "position_snapshots")?,
                            eta: r.opt_ts("eta")?,
                            account: (!account.is_empty()).then_some(account),
                        },
                    ))
                })
                .collect::<Result<Vec<_>>>()?
        });
        let Some(at) = rows.first().map(|r| r.0) else {
            return Ok(None);
        };
        Ok(Some(PositionSnapshot {
            at,
            positions: rows.into_iter().map(|r| r.1).collect(),
        }))
    }

    /// Books the change of the custodial total to `total` as of `day` (once per day):
    /// `Dr pool:buffer / Cr custody:users` for growth, the reverse for a fall. Returns the
    /// signed change (zero when the day was already booked).
    pub async fn record_custody_total(&self, token: &str, day: Day, total: Amount, now: Timestamp) -> Result<Net> {
        let reference = format!("{token} {day}");
        let done = on_pool!(self, |p| sqlx::query(
            "SELECT 1 AS x FROM ledger_entries WHERE kind = 'custody_change' AND reference = $1"
        )
        .bind(&reference)
        .fetch_optional(p)
        .await?
        .is_some());
        if done {
            return Ok(Net::ZERO);
        }
        let users = self.ledger_balances(token, "custody:users").await?;
        // custody:users is credited with what users hold: its balance is −net.
        let booked = users.first().map(|b| b.net().neg()).unwrap_or(Net::ZERO);
        let booked = booked.non_negative().ok_or_else(|| {
            StoreError::corrupt("ledger_postings", format!("{token}: custody:users has a debit balance"))
        })?;
        let delta = Net::diff(total, booked);
        let entry = if delta.is_negative() {
            Entry::new("custody_change", &reference).transfer(
                LedgerAccount::custody_users(),
                LedgerAccount::buffer(),
                token,
                delta.magnitude(),
            )
        } else {
            Entry::new("custody_change", &reference).transfer(
                LedgerAccount::buffer(),
                LedgerAccount::custody_users(),
                token,
                delta.magnitude(),
            )
        };
        let mut tx = self.write_tx().await?;
        // Booked even when the amount is zero (no postings): it marks the day as done.
        insert_entries(&mut tx, &[entry], now).await?;
        tx.commit().await?;
        Ok(delta)
    }
}
