//! Paying a closed day: allocation, payouts, distribution history, APR.
//!
//! Days are distributed in order per token, each at most once, so the carry-over flows
//! forward and a retry never pays twice.

use std::str::FromStr;

use rust_decimal::Decimal;
use sqlx::{AnyConnection, Row};
use tracing::info;

use softstake_core::allocate::{allocate, EligibleEntry};
use softstake_core::ledger::allocation_entries;
use softstake_core::{Amount, Day, Timestamp, TokenConfig};

use crate::error::{Result, StoreError};
use crate::ledger::insert_entries;
use crate::rewards::realized;
use crate::sql::{self, insert_rows, Val};
use crate::Store;

/// One token's paid day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributionSummary {
    /// Token symbol.
    pub token: String,
    /// The day the rewards are attributed to.
    pub day: Day,
    /// Realized reward R, base units.
    pub realized_reward: Amount,
    /// Platform fee, base units.
    pub fee: Amount,
    /// Carried in from earlier days, base units.
    pub carry_in: Amount,
    /// Distributable D, base units.
    pub distributable: Amount,
    /// Σe, base units.
    pub total_eligible: Amount,
    /// Carried to the next day, base units.
    pub carry_out: Amount,
    /// Published APR estimate `D / Σe · 365`.
    pub apr: Decimal,
    /// Accounts with a positive eligible amount.
    pub eligible_accounts: u64,
    /// When the payouts were made.
    pub paid_at: Timestamp,
}

/// One line of a user's distribution history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The day the reward is for.
    pub day: Day,
    /// Token symbol (paid in the same token).
    pub token: String,
    /// Daily average balance, base units.
    pub average: Amount,
    /// Eligible amount, base units.
    pub eligible: Amount,
    /// Reward paid, base units.
    pub reward: Amount,
    /// When it was paid.
    pub paid_at: Timestamp,
}

/// The latest published APR of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AprRow {
    /// Token symbol.
    pub token: String,
    /// Day of the distribution the APR comes from.
    pub day: Day,
    /// APR as a fraction (0.05 = 5 %).
    pub apr: Decimal,
}

const SUMMARY_COLS: &str = "token, day, realized_reward, fee, carry_in, distributable, total_eligible, carry_out, apr, eligible_accounts, paid_at";

impl Store {
    /// Pays `day` for `token`: allocation by the rules, payouts, ledger entries and the
    /// distribution record, in one transaction, at `now`.
    ///
    /// Errors: [`StoreError::NotClosed`], [`StoreError::AlreadyDistributed`] (nothing is
    /// paid again), [`StoreError::DistributeOrder`] when an earlier closed day is unpaid.
    pub async fn distribute(&self, cfg: &TokenConfig, day: Day, now: Timestamp) -> Result<DistributionSummary> {
        let token = cfg.symbol.as_str();
        let mut tx = self.write_tx().await?;
        check_can_distribute(&mut tx, token, day).await?;
        let carry_in = previous_carry(&mut tx, token, day).await?;
        let r = realized(&mut tx, token, day).await?;
        let (entries, averages) = eligible_entries(&mut tx, token, day).await?;
        let alloc = allocate(r, carry_in, cfg.fee_bps, &entries)?;
        let ledger = allocation_entries(token, day, &alloc)?;
        insert_entries(&mut tx, &ledger, now).await?;
        let rows: Vec<Vec<Val>> = alloc
            .payouts
            .iter()
            .zip(averages.iter())
            .map(|(p, avg)| {
                vec![
                    Val::T(token.to_string()),
                    Val::T(day.to_string()),
                    Val::T(p.account_id.clone()),
                    Val::T(avg.0.to_string()),
                    Val::T(p.eligible.0.to_string()),
                    Val::T(p.reward.0.to_string()),
                    Val::I(now.0),
                ]
            })
            .collect();
        insert_rows(
            &mut tx,
            "INSERT INTO payouts (token, day, account_id, average, eligible, reward, paid_at)",
            "",
            7,
            &rows,
        )
        .await?;
        let summary = DistributionSummary {
            token: token.to_string(),
            day,
            realized_reward: alloc.realized_reward,
            fee: alloc.fee,
            carry_in,
            distributable: alloc.distributable,
            total_eligible: alloc.total_eligible,
            carry_out: alloc.carry_out,
            apr: alloc.apr,
            eligible_accounts: alloc.eligible_accounts() as u64,
            paid_at: now,
        };
        insert_summary(&mut tx, &summary).await?;
        tx.commit().await?;
        info!(token = %token, day = %day, paid = %alloc.distributable.saturating_sub(alloc.carry_out), accounts = summary.eligible_accounts, "distributed day");
        Ok(summary)
    }

    /// The distribution of `(token, day)`, if paid.
    pub async fn distribution(&self, token: &str, day: Day) -> Result<Option<DistributionSummary>> {
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLS} FROM distributions WHERE token = $1 AND day = $2"
        ))
        .bind(token.to_string())
        .bind(day.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| decode_summary(&r)).transpose()
    }

    /// All distributions, by token then day.
    pub async fn distributions(&self) -> Result<Vec<DistributionSummary>> {
        let rows = sqlx::query(&format!("SELECT {SUMMARY_COLS} FROM distributions ORDER BY token, day"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(decode_summary).collect()
    }

    /// A user's distribution history, newest first, optionally for one token and a
    /// `[from, to]` day window, paginated by `limit`/`offset`.
    pub async fn history(
        &self,
        account_id: &str,
        token: Option<&str>,
        window: Option<(Day, Day)>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<HistoryRow>> {
        let (from, to) = window
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or(("0000-01-01".into(), "9999-12-31".into()));
        let rows = sqlx::query(
            "SELECT day, token, average, eligible, reward, paid_at FROM payouts \
             WHERE account_id = $1 AND ($2 = '' OR token = $2) AND day >= $3 AND day <= $4 \
             ORDER BY day DESC, token LIMIT $5 OFFSET $6",
        )
        .bind(account_id.to_string())
        .bind(token.unwrap_or("").to_string())
        .bind(from)
        .bind(to)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HistoryRow {
                    day: sql::day(r, "day", "payouts")?,
                    token: r.try_get("token")?,
                    average: sql::amount(r, "average", "payouts")?,
                    eligible: sql::amount(r, "eligible", "payouts")?,
                    reward: sql::amount(r, "reward", "payouts")?,
                    paid_at: sql::ts(r, "paid_at")?,
                })
            })
            .collect()
    }

    /// Payouts of `account_id` paid within `[from, to]` (payment time), newest first, a
    /// page of `limit` from `offset`, and how many there are in all.
    #[allow(clippy::too_many_arguments)]
    pub async fn rewards_record(
        &self,
        account_id: &str,
        token: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<HistoryRow>, u64)> {
        let filter =
            "FROM payouts WHERE account_id = $1 AND ($2 = '' OR token = $2) AND paid_at >= $3 AND paid_at <= $4";
        let total = sqlx::query(&format!("SELECT COUNT(*) AS n {filter}"))
            .bind(account_id.to_string())
            .bind(token.unwrap_or("").to_string())
            .bind(from.0)
            .bind(to.0)
            .fetch_one(&self.pool)
            .await?
            .try_get::<i64, _>("n")? as u64;
        let rows = sqlx::query(&format!(
            "SELECT day, token, average, eligible, reward, paid_at {filter} ORDER BY paid_at DESC, day DESC, token LIMIT $5 OFFSET $6"
        ))
        .bind(account_id.to_string())
        .bind(token.unwrap_or("").to_string())
        .bind(from.0)
        .bind(to.0)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(HistoryRow {
                    day: sql::day(r, "day", "payouts")?,
                    token: r.try_get("token")?,
                    average: sql::amount(r, "average", "payouts")?,
                    eligible: sql::amount(r, "eligible", "payouts")?,
                    reward: sql::amount(r, "reward", "payouts")?,
                    paid_at: sql::ts(r, "paid_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((rows, total))
    }

    /// The eligible amount of `account_id` in `token` on the last closed day it held it.
    pub async fn latest_eligible(&self, account_id: &str, token: &str) -> Result<Amount> {
        let row = sqlx::query(
            "SELECT eligible FROM daily_balances WHERE account_id = $1 AND token = $2 ORDER BY day DESC LIMIT 1",
        )
        .bind(account_id.to_string())
        .bind(token.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| sql::amount(&r, "eligible", "daily_balances"))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// The payouts of one token-day: `(account_id, reward)` in account order.
    pub async fn day_payouts(&self, token: &str, day: Day) -> Result<Vec<(String, Amount)>> {
        let rows = sqlx::query("SELECT account_id, reward FROM payouts WHERE token = $1 AND day = $2")
            .bind(token.to_string())
            .bind(day.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("account_id")?,
                    sql::amount(r, "reward", "payouts")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(out)
    }

    /// The `n` accounts paid the most in `token` overall (ties by account id).
    pub async fn top_earners(&self, token: &str, n: usize) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT account_id, reward FROM payouts WHERE token = $1")
            .bind(token.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut totals: std::collections::BTreeMap<String, Amount> = std::collections::BTreeMap::new();
        for r in &rows {
            let e = totals.entry(r.try_get("account_id")?).or_default();
            *e = e.checked_add(sql::amount(r, "reward", "payouts")?, "total paid")?;
        }
        let mut v: Vec<(String, Amount)> = totals.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(v.into_iter().take(n).map(|(a, _)| a).collect())
    }

    /// Σ rewards paid to `account_id` in `token`, base units.
    pub async fn total_paid(&self, account_id: &str, token: &str) -> Result<Amount> {
        let rows = sqlx::query("SELECT reward FROM payouts WHERE account_id = $1 AND token = $2")
            .bind(account_id.to_string())
            .bind(token.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut total = Amount::ZERO;
        for r in rows {
            total = total.checked_add(sql::amount(&r, "reward", "payouts")?, "total paid")?;
        }
        Ok(total)
    }

    /// APR over the last `days` distributed days of `token`: `Σ D / Σ Σe · 365`, which
    /// smooths chains that realize a whole epoch's reward on one day. `None` before any
    /// distribution with eligible balances.
    pub async fn trailing_apr(&self, token: &str, days: u32) -> Result<Option<Decimal>> {
        let rows = sqlx::query("SELECT distributable, carry_out, total_eligible FROM distributions WHERE token = $1 ORDER BY day DESC LIMIT $2")
            .bind(token.to_string())
            .bind(i64::from(days))
            .fetch_all(&self.pool)
            .await?;
        let (mut paid, mut eligible) = (Amount::ZERO, Amount::ZERO);
        for r in &rows {
            let d = sql::amount(r, "distributable", "distributions")?;
            let c = sql::amount(r, "carry_out", "distributions")?;
            paid = paid.checked_add(d.checked_sub(c, "paid")?, "trailing paid")?;
            eligible = eligible.checked_add(sql::amount(r, "total_eligible", "distributions")?, "trailing eligible")?;
        }
        if eligible.is_zero() {
            return Ok(None);
        }
        Ok(Some(softstake_core::allocate::apr(paid, eligible)?))
    }

    /// The latest APR of each token that has a distribution.
    pub async fn latest_apr(&self) -> Result<Vec<AprRow>> {
        let rows = sqlx::query(
            "SELECT d.token, d.day, d.apr FROM distributions d \
             WHERE d.day = (SELECT MAX(day) FROM distributions x WHERE x.token = d.token) ORDER BY d.token",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let apr: String = r.try_get("apr")?;
                Ok(AprRow {
                    token: r.try_get("token")?,
                    day: sql::day(r, "day", "distributions")?,
                    apr: Decimal::from_str(&apr)
                        .map_err(|e| StoreError::corrupt("distributions", format!("apr: {e}")))?,
                })
            })
            .collect()
    }
}

async fn check_can_distribute(conn: &mut AnyConnection, token: &str, day: Day) -> Result<()> {
    let closed = sqlx::query("SELECT 1 AS x FROM closed_days WHERE token = $1 AND day = $2")
        .bind(token.to_string())
        .bind(day.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    if closed.is_none() {
        return Err(StoreError::NotClosed {
            token: token.to_string(),
            day: day.to_string(),
        });
    }
    let done = sqlx::query("SELECT paid_at FROM distributions WHERE token = $1 AND day = $2")
        .bind(token.to_string())
        .bind(day.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(r) = done {
        return Err(StoreError::AlreadyDistributed {
            token: token.to_string(),
            day: day.to_string(),
            paid_at: sql::ts(&r, "paid_at")?.to_rfc3339(),
        });
    }
    let unpaid = sqlx::query(
        "SELECT MIN(c.day) AS day FROM closed_days c WHERE c.token = $1 AND c.day < $2 AND NOT EXISTS \
         (SELECT 1 FROM distributions d WHERE d.token = c.token AND d.day = c.day)",
    )
    .bind(token.to_string())
    .bind(day.to_string())
    .fetch_one(&mut *conn)
    .await?;
    if let Some(first) = unpaid.try_get::<Option<String>, _>("day")? {
        return Err(StoreError::DistributeOrder {
            token: token.to_string(),
            day: day.to_string(),
            reason: format!("the earlier closed day {first} is not distributed yet; distribute it first"),
        });
    }
    Ok(())
}

async fn previous_carry(conn: &mut AnyConnection, token: &str, day: Day) -> Result<Amount> {
    let row =
        sqlx::query("SELECT carry_out FROM distributions WHERE token = $1 AND day < $2 ORDER BY day DESC LIMIT 1")
            .bind(token.to_string())
            .bind(day.to_string())
            .fetch_optional(&mut *conn)
            .await?;
    row.map(|r| sql::amount(&r, "carry_out", "distributions"))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Eligible entries of the day (positive eligible only) and their averages, in the
/// order [`allocate`] returns payouts (account id, byte order).
async fn eligible_entries(
    conn: &mut AnyConnection,
    token: &str,
    day: Day,
) -> Result<(Vec<EligibleEntry>, Vec<Amount>)> {
    let rows = sqlx::query(
        "SELECT account_id, average, eligible FROM daily_balances WHERE token = $1 AND day = $2 AND eligible <> '0'",
    )
    .bind(token.to_string())
    .bind(day.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut v = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<String, _>("account_id")?,
                sql::amount(r, "average", "daily_balances")?,
                sql::amount(r, "eligible", "daily_balances")?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let averages = v.iter().map(|x| x.1).collect();
    let entries = v
        .into_iter()
        .map(|(account_id, _, eligible)| EligibleEntry { account_id, eligible })
        .collect();
    Ok((entries, averages))
}

async fn insert_summary(conn: &mut AnyConnection, s: &DistributionSummary) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO distributions ({SUMMARY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(s.token.clone())
    .bind(s.day.to_string())
    .bind(s.realized_reward.0.to_string())
    .bind(s.fee.0.to_string())
    .bind(s.carry_in.0.to_string())
    .bind(s.distributable.0.to_string())
    .bind(s.total_eligible.0.to_string())
    .bind(s.carry_out.0.to_string())
    .bind(s.apr.to_string())
    .bind(s.eligible_accounts as i64)
    .bind(s.paid_at.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn decode_summary(r: &sqlx::any::AnyRow) -> Result<DistributionSummary> {
    let apr: String = r.try_get("apr")?;
    Ok(DistributionSummary {
        token: r.try_get("token")?,
        day: sql::day(r, "day", "distributions")?,
        realized_reward: sql::amount(r, "realized_reward", "distributions")?,
        fee: sql::amount(r, "fee", "distributions")?,
        carry_in: sql::amount(r, "carry_in", "distributions")?,
        distributable: sql::amount(r, "distributable", "distributions")?,
        total_eligible: sql::amount(r, "total_eligible", "distributions")?,
        carry_out: sql::amount(r, "carry_out", "distributions")?,
        apr: Decimal::from_str(&apr).map_err(|e| StoreError::corrupt("distributions", format!("apr: {e}")))?,
        eligible_accounts: r.try_get::<i64, _>("eligible_accounts")? as u64,
        paid_at: sql::ts(r, "paid_at")?,
    })
}
