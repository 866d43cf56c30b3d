//! Paying a closed day: allocation, payouts, distribution history, APR.
//!
//! Days are distributed in order per token, each at most once, so the carry-over flows
//! forward and a retry never pays twice. A distribution holds the token's day lock, so a
//! reward recorded for the day either lands before it or is refused.
//!
//! ```text
//!  Σe, R, carry ─▶ plan_allocation (fee, D, carry_out, APR)
//!  pass 1: stream eligible amounts ─▶ Σ floor(D·e/Σe), remainders (16 bytes each)
//!          ─▶ LeftoverCut (the L largest remainders, ties by smaller account id)
//!  pass 2: pages of (account, average, eligible) in id order ─▶ Payer ─▶ payouts in
//!          chunks (COPY on PostgreSQL)
//!  ledger: R in, fee, Σ payouts to users:rewards, carry out; distributions row
//! ```

use std::str::FromStr;
use std::time::Instant;

use futures_util::TryStreamExt;
use rust_decimal::Decimal;
use tracing::{debug, info};

use softstake_core::allocate::{plan_allocation, AllocationPlan, LeftoverCut, Payer};
use softstake_core::ledger::allocation_entries;
use softstake_core::{Amount, Day, Timestamp, TokenConfig};

use crate::balances::closed_record;
use crate::db::{insert_rows, on_pool, on_tx, DbAmount, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::ledger::insert_entries;
use crate::pg::{self, copy_in, copy_out, field, literal};
use crate::rewards::realized;
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
    /// Published APR estimate `D / Σe · 365`; `None` when beyond `Decimal`'s range
    /// (display only).
    pub apr: Option<Decimal>,
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
    /// APR as a fraction (0.05 = 5 %); `None` when beyond `Decimal`'s range.
    pub apr: Option<Decimal>,
}

const SUMMARY_COLS: &str = "token, day, realized_reward, fee, carry_in, distributable, total_eligible, carry_out, apr, eligible_accounts, paid_at";

/// Payout rows written per chunk (and daily rows read per page).
const CHUNK: usize = 20_000;

impl Store {
    /// Pays `day` for `token`: allocation by the rules, payouts, ledger entries and the
    /// distribution record, in one transaction under the token's day lock, at `now`.
    /// Streams the day twice; memory is 16 bytes per eligible account plus a chunk.
    ///
    /// Errors: [`StoreError::NotClosed`], [`StoreError::AlreadyDistributed`] (nothing is
    /// paid again), [`StoreError::DistributeOrder`] when an earlier closed day is unpaid.
    pub async fn distribute(&self, cfg: &TokenConfig, day: Day, now: Timestamp) -> Result<DistributionSummary> {
        let token = cfg.symbol.as_str();
        let started = Instant::now();
        let mut tx = self.write_tx().await?;
        Store::lock_token_days(&mut tx, token).await?;
        check_can_distribute(&mut tx, token, day).await?;
        let closed = closed_record(&mut tx, token, day)
            .await?
            .ok_or_else(|| StoreError::NotClosed {
                token: token.to_string(),
                day: day.to_string(),
            })?;
        let carry_in = previous_carry(&mut tx, token, day).await?;
        let r = realized(&mut tx, token, day).await?;
        let plan = plan_allocation(r, carry_in, cfg.fee_bps, closed.total_eligible)?;
        let cut = cut_remainders(&mut tx, token, day, &plan, closed.eligible_accounts).await?;
        debug!(token = %token, day = %day, elapsed_ms = started.elapsed().as_millis() as u64, "remainders cut");
        let paid = match (&mut tx, &self.pool) {
            (Tx::Postgres(t), crate::db::Pool::Postgres(pool)) => pay_pg(t, pool, token, day, &plan, cut, now).await?,
            _ => pay(&mut tx, token, day, &plan, cut, now).await?,
        };
        debug!(token = %token, day = %day, elapsed_ms = started.elapsed().as_millis() as u64, "payouts written");
        insert_entries(&mut tx, &allocation_entries(token, day, &plan)?, now).await?;
        let summary = DistributionSummary {
            token: token.to_string(),
            day,
            realized_reward: plan.realized_reward,
            fee: plan.fee,
            carry_in,
            distributable: plan.distributable,
            total_eligible: plan.total_eligible,
            carry_out: plan.carry_out,
            apr: plan.apr,
            eligible_accounts: closed.eligible_accounts,
            paid_at: now,
        };
        insert_summary(&mut tx, &summary).await?;
        self.pauses.hold(crate::PausePoint::DistributePaid).await;
        tx.commit().await?;
        debug!(token = %token, day = %day, elapsed_ms = started.elapsed().as_millis() as u64, "committed");
        info!(
            token = %token, day = %day, paid = %paid, accounts = summary.eligible_accounts,
            elapsed_ms = started.elapsed().as_millis() as u64, "distributed day"
        );
        Ok(summary)
    }

    /// The distribution of `(token, day)`, if paid.
    pub async fn distribution(&self, token: &str, day: Day) -> Result<Option<DistributionSummary>> {
        let sql = format!("SELECT {SUMMARY_COLS} FROM distributions WHERE token = $1 AND day = $2");
        on_pool!(self, |p| {
            let row = sqlx::query(&sql)
                .bind(token)
                .bind(day.to_string())
                .fetch_optional(p)
                .await?;
            row.map(|r| decode_summary(&r)).transpose()
        })
    }

    /// All distributions, by token then day.
    pub async fn distributions(&self) -> Result<Vec<DistributionSummary>> {
        let sql = format!("SELECT {SUMMARY_COLS} FROM distributions ORDER BY token, day");
        on_pool!(self, |p| {
            let rows = sqlx::query(&sql).fetch_all(p).await?;
            rows.iter().map(decode_summary).collect()
        })
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
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT day, token, average, eligible, reward, paid_at FROM payouts \
                 WHERE account_id = $1 AND ($2 = '' OR token = $2) AND day >= $3 AND day <= $4 \
                 ORDER BY day DESC, token LIMIT $5 OFFSET $6",
            )
            .bind(account_id)
            .bind(token.unwrap_or(""))
            .bind(from)
            .bind(to)
            .bind(i64::from(limit))
            .bind(i64::from(offset))
            .fetch_all(p)
            .await?;
            rows.iter().map(decode_history).collect()
        })
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
        let count_sql = format!("SELECT COUNT(*) AS n {filter}");
        let page_sql = format!(
            "SELECT day, token, average, eligible, reward, paid_at {filter} ORDER BY paid_at DESC, day DESC, token LIMIT $5 OFFSET $6"
        );
        on_pool!(self, |p| {
            let total = sqlx::query(&count_sql)
                .bind(account_id)
                .bind(token.unwrap_or(""))
                .bind(from.0)
                .bind(to.0)
                .fetch_one(p)
                .await?
                .count("n", "payouts")?;
            let rows = sqlx::query(&page_sql)
                .bind(account_id)
                .bind(token.unwrap_or(""))
                .bind(from.0)
                .bind(to.0)
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(p)
                .await?;
            let rows = rows.iter().map(decode_history).collect::<Result<Vec<_>>>()?;
            Ok((rows, total))
        })
    }

    /// The eligible amount of `account_id` in `token` on the last closed day it held it.
    pub async fn latest_eligible(&self, account_id: &str, token: &str) -> Result<Amount> {
        on_pool!(self, |p| {
            let row = sqlx::query(
                "SELECT eligible FROM daily_balances WHERE account_id = $1 AND token = $2 ORDER BY day DESC LIMIT 1",
            )
            .bind(account_id)
            .bind(token)
            .fetch_optional(p)
            .await?;
            row.map(|r| r.amount("eligible", "daily_balances"))
                .transpose()
                .map(Option::unwrap_or_default)
        })
    }

    /// The payouts of one token-day: `(account_id, reward)` in account order.
    pub async fn day_payouts(&self, token: &str, day: Day) -> Result<Vec<(String, Amount)>> {
        on_pool!(self, |p| {
            let rows =
                sqlx::query("SELECT account_id, reward FROM payouts WHERE token = $1 AND day = $2 ORDER BY account_id")
                    .bind(token)
                    .bind(day.to_string())
                    .fetch_all(p)
                    .await?;
            rows.iter()
                .map(|r| Ok((r.text("account_id")?, r.amount("reward", "payouts")?)))
                .collect()
        })
    }

    /// The `n` accounts paid the most in `token` overall (ties by account id).
    pub async fn top_earners(&self, token: &str, n: usize) -> Result<Vec<String>> {
        let mut totals: std::collections::BTreeMap<String, Amount> = std::collections::BTreeMap::new();
        on_pool!(self, |p| {
            let mut rows = sqlx::query("SELECT account_id, reward FROM payouts WHERE token = $1")
                .bind(token)
                .fetch(p);
            while let Some(r) = rows.try_next().await? {
                let e = totals.entry(r.text("account_id")?).or_default();
                *e = e.checked_add(r.amount("reward", "payouts")?, "total paid")?;
            }
        });
        let mut v: Vec<(String, Amount)> = totals.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(v.into_iter().take(n).map(|(a, _)| a).collect())
    }

    /// Σ rewards paid to `account_id` in `token`, base units.
    pub async fn total_paid(&self, account_id: &str, token: &str) -> Result<Amount> {
        let amounts: Vec<Amount> = on_pool!(self, |p| {
            let rows = sqlx::query("SELECT reward FROM payouts WHERE account_id = $1 AND token = $2")
                .bind(account_id)
                .bind(token)
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| r.amount("reward", "payouts"))
                .collect::<Result<Vec<_>>>()?
        });
        Ok(Amount::checked_sum(amounts, "total paid")?)
    }

    /// APR over the last `days` distributed days of `token`: `Σ D / Σ Σe · 365`, which
    /// smooths chains that realize a whole epoch's reward on one day. `None` before any
    /// distribution with eligible balances, or when beyond `Decimal`'s range.
    pub async fn trailing_apr(&self, token: &str, days: u32) -> Result<Option<Decimal>> {
        let rows: Vec<(Amount, Amount, Amount)> = on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT distributable, carry_out, total_eligible FROM distributions WHERE token = $1 ORDER BY day DESC LIMIT $2",
            )
            .bind(token)
            .bind(i64::from(days))
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.amount("distributable", "distributions")?,
                        r.amount("carry_out", "distributions")?,
                        r.amount("total_eligible", "distributions")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?
        });
        let (mut paid, mut eligible) = (Amount::ZERO, Amount::ZERO);
        for (d, c, e) in rows {
            paid = paid.checked_add(d.checked_sub(c, "paid")?, "trailing paid")?;
            eligible = eligible.checked_add(e, "trailing eligible")?;
        }
        if eligible.is_zero() {
            return Ok(None);
        }
        Ok(softstake_core::allocate::apr(paid, eligible).ok())
    }

    /// The latest APR of each token that has a distribution (`None` when beyond
    /// `Decimal`'s range).
    pub async fn latest_apr(&self) -> Result<Vec<AprRow>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT d.token, d.day, d.apr FROM distributions d \
                 WHERE d.day = (SELECT MAX(day) FROM distributions x WHERE x.token = d.token) ORDER BY d.token",
            )
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(AprRow {
                        token: r.text("token")?,
                        day: r.day("day", "distributions")?,
                        apr: decode_apr(r.opt_text("apr")?)?,
                    })
                })
                .collect()
        })
    }
}

async fn check_can_distribute(tx: &mut Tx, token: &str, day: Day) -> Result<()> {
    let closed = on_tx!(&mut *tx, |c| sqlx::query(
        "SELECT 1 AS x FROM closed_days WHERE token = $1 AND day = $2"
    )
    .bind(token)
    .bind(day.to_string())
    .fetch_optional(&mut *c)
    .await?
    .is_some());
    if !closed {
        return Err(StoreError::NotClosed {
            token: token.to_string(),
            day: day.to_string(),
        });
    }
    let paid_at = on_tx!(&mut *tx, |c| sqlx::query(
        "SELECT paid_at FROM distributions WHERE token = $1 AND day = $2"
    )
    .bind(token)
    .bind(day.to_string())
    .fetch_optional(&mut *c)
    .await?
    .map(|r| r.ts("paid_at"))
    .transpose()?);
    if let Some(paid_at) = paid_at {
        return Err(StoreError::AlreadyDistributed {
            token: token.to_string(),
            day: day.to_string(),
            paid_at: paid_at.to_rfc3339(),
        });
    }
    let unpaid = on_tx!(&mut *tx, |c| sqlx::query(
        "SELECT MIN(c.day) AS day FROM closed_days c WHERE c.token = $1 AND c.day < $2 AND NOT EXISTS \
         (SELECT 1 FROM distributions d WHERE d.token = c.token AND d.day = c.day)",
    )
    .bind(token)
    .bind(day.to_string())
    .fetch_one(&mut *c)
    .await?
    .opt_text("day")?);
    if let Some(first) = unpaid {
        return Err(StoreError::DistributeOrder {
            token: token.to_string(),
            day: day.to_string(),
            reason: format!("the earlier closed day {first} is not distributed yet; distribute it first"),
        });
    }
    Ok(())
}

async fn previous_carry(tx: &mut Tx, token: &str, day: Day) -> Result<Amount> {
    on_tx!(tx, |c| sqlx::query(
        "SELECT carry_out FROM distributions WHERE token = $1 AND day < $2 ORDER BY day DESC LIMIT 1"
    )
    .bind(token)
    .bind(day.to_string())
    .fetch_optional(&mut *c)
    .await?
    .map(|r| r.amount("carry_out", "distributions"))
    .transpose()
    .map(Option::unwrap_or_default))
}

/// Pass 1: streams the day's positive eligible amounts, checks them against the closed
/// day's record, and cuts the leftover units.
async fn cut_remainders(
    tx: &mut Tx,
    token: &str,
    day: Day,
    plan: &AllocationPlan,
    accounts: u64,
) -> Result<LeftoverCut> {
    let mut remainders: Vec<u128> = Vec::with_capacity(usize::try_from(accounts).unwrap_or(0));
    let (mut floor_sum, mut seen, mut sum_e) = (Amount::ZERO, 0u64, Amount::ZERO);
    let mut add = |e: Amount| -> Result<()> {
        let (q, r) = plan.share(e)?;
        floor_sum = floor_sum.checked_add(q, "Σ floor shares")?;
        sum_e = sum_e.checked_add(e, "Σe")?;
        seen += 1;
        if r > 0 {
            remainders.push(r);
        }
        Ok(())
    };
    match tx {
        Tx::Postgres(t) => {
            let q = format!(
                "SELECT eligible FROM daily_balances WHERE token = {} AND day = {} AND eligible <> 0",
                literal(token),
                literal(&day.to_string())
            );
            copy_out(t, &q, |b, f| {
                let e = pg::numeric_decode(field(b, f, 0, "eligible")?)
                    .map_err(|e| StoreError::corrupt("daily_balances", format!("eligible: {e}")))?;
                add(Amount(e))
            })
            .await?;
        }
        Tx::Sqlite(t) => {
            let mut rows =
                sqlx::query("SELECT eligible FROM daily_balances WHERE token = $1 AND day = $2 AND eligible <> '0'")
                    .bind(token)
                    .bind(day.to_string())
                    .fetch(&mut **t);
            while let Some(r) = rows.try_next().await? {
                add(r.amount("eligible", "daily_balances")?)?;
            }
        }
    }
    if seen != accounts || sum_e != plan.total_eligible {
        return Err(StoreError::corrupt(
            "daily_balances",
            format!(
                "{token} {day}: {seen} eligible rows summing to {sum_e}, but the closed day records {accounts} and {}",
                plan.total_eligible
            ),
        ));
    }
    let leftover = plan.to_pay().checked_sub(floor_sum, "leftover units")?;
    Ok(LeftoverCut::new(&mut remainders, leftover.0)?)
}

/// Pass 2: pays the eligible accounts in id order, writing payouts in chunks. Returns
/// Σ payouts (checked equal to `D − carry_out`).
async fn pay(
    tx: &mut Tx,
    token: &str,
    day: Day,
    plan: &AllocationPlan,
    cut: LeftoverCut,
    now: Timestamp,
) -> Result<Amount> {
    let mut payer = Payer::new(plan, cut);
    let mut after: Option<String> = None;
    let day_s = day.to_string();
    loop {
        let page = eligible_page(tx, token, &day_s, after.as_deref()).await?;
        let Some(last) = page.last().map(|r| r.0.clone()) else {
            break;
        };
        let mut out: Vec<(String, Amount, Amount, Amount)> = Vec::with_capacity(page.len());
        for (id, average, eligible) in page {
            let reward = payer.pay(&id, eligible)?;
            out.push((id, average, eligible, reward));
        }
        write_payouts(tx, token, &day_s, &out, now).await?;
        after = Some(last);
    }
    Ok(payer.finish()?)
}

/// Pass 2 on PostgreSQL: the day's eligible rows are streamed in id order on a second
/// connection (a closed day's rows never change) while the payouts are copied in on the
/// transaction's, one COPY for the whole day; a queue of two chunks bounds the memory.
async fn pay_pg(
    t: &mut sqlx::PgConnection,
    pool: &sqlx::PgPool,
    token: &str,
    day: Day,
    plan: &AllocationPlan,
    cut: LeftoverCut,
    now: Timestamp,
) -> Result<Amount> {
    type Row = (String, Amount, Amount);
    let (tx_rows, mut rx_rows) = tokio::sync::mpsc::channel::<Vec<Row>>(2);
    let query = format!(
        "SELECT account_id, average, eligible FROM daily_balances WHERE token = {} AND day = {} AND eligible <> 0 \
         ORDER BY account_id",
        literal(token),
        literal(&day.to_string())
    );
    let pool = pool.clone();
    let reader = tokio::spawn(async move {
        let parse = |b: &[u8], f: &[Option<std::ops::Range<usize>>]| -> Result<Row> {
            let bad = |e: String| StoreError::corrupt("daily_balances", e);
            Ok((
                pg::text(field(b, f, 0, "account_id")?).map_err(bad)?.to_string(),
                Amount(pg::numeric_decode(field(b, f, 1, "average")?).map_err(bad)?),
                Amount(pg::numeric_decode(field(b, f, 2, "eligible")?).map_err(bad)?),
            ))
        };
        pg::stream_batches(&pool, &query, CHUNK, parse, &tx_rows, |b| b).await
    });
    let mut payer = Payer::new(plan, cut);
    let day_s = day.to_string();
    let mut copy = t
        .copy_in_raw(
            "COPY payouts (token, day, account_id, average, eligible, reward, paid_at) FROM STDIN (FORMAT binary)",
        )
        .await?;
    let mut w = pg::CopyWriter::new(7);
    let mut failed: Option<StoreError> = None;
    while let Some(batch) = rx_rows.recv().await {
        for (id, average, eligible) in &batch {
            let reward = match payer.pay(id, *eligible) {
                Ok(r) => r,
                Err(e) => {
                    failed = Some(e.into());
                    break;
                }
            };
            w.row();
            w.text(token);
            w.text(&day_s);
            w.text(id);
            w.numeric(average.0);
            w.numeric(eligible.0);
            w.numeric(reward.0);
            w.int8(now.0);
        }
        if failed.is_some() {
            break;
        }
        if w.is_full() {
            copy.send(w.take()).await?;
        }
    }
    drop(rx_rows);
    let read = reader
        .await
        .map_err(|e| StoreError::Invalid(format!("the payout reader stopped: {e}")))?;
    if let Some(e) = failed.or(read.err()) {
        copy.abort("payout computation failed").await.ok();
        return Err(e);
    }
    copy.send(w.finish()).await?;
    copy.finish().await?;
    Ok(payer.finish()?)
}

/// Up to [`CHUNK`] eligible daily rows after `after`, in id order.
async fn eligible_page(
    tx: &mut Tx,
    token: &str,
    day: &str,
    after: Option<&str>,
) -> Result<Vec<(String, Amount, Amount)>> {
    let sql = match after {
        Some(_) => {
            "SELECT account_id, average, eligible FROM daily_balances WHERE token = $1 AND day = $2 \
                    AND account_id > $3 AND eligible <> '0' ORDER BY account_id LIMIT $4"
        }
        None => {
            "SELECT account_id, average, eligible FROM daily_balances WHERE token = $1 AND day = $2 \
                 AND $3 IS NULL AND eligible <> '0' ORDER BY account_id LIMIT $4"
        }
    };
    on_tx!(tx, |c| {
        let rows = sqlx::query(sql)
            .bind(token)
            .bind(day)
            .bind(after)
            .bind(CHUNK as i64)
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.text("account_id")?,
                    r.amount("average", "daily_balances")?,
                    r.amount("eligible", "daily_balances")?,
                ))
            })
            .collect()
    })
}

async fn write_payouts(
    tx: &mut Tx,
    token: &str,
    day: &str,
    rows: &[(String, Amount, Amount, Amount)],
    now: Timestamp,
) -> Result<()> {
    match tx {
        Tx::Postgres(t) => {
            copy_in(
                t,
                "COPY payouts (token, day, account_id, average, eligible, reward, paid_at) FROM STDIN (FORMAT binary)",
                7,
                rows,
                |w, r| {
                    w.text(token);
                    w.text(day);
                    w.text(&r.0);
                    w.numeric(r.1 .0);
                    w.numeric(r.2 .0);
                    w.numeric(r.3 .0);
                    w.int8(now.0);
                },
            )
            .await?;
        }
        Tx::Sqlite(_) => {
            let vals: Vec<Vec<Val>> = rows
                .iter()
                .map(|r| {
                    vec![
                        Val::T(token.to_string()),
                        Val::T(day.to_string()),
                        Val::T(r.0.clone()),
                        Val::A(r.1),
                        Val::A(r.2),
                        Val::A(r.3),
                        Val::I(now.0),
                    ]
                })
                .collect();
            insert_rows(
                tx,
                "INSERT INTO payouts (token, day, account_id, average, eligible, reward, paid_at)",
                "",
                7,
                &vals,
            )
            .await?;
        }
    }
    Ok(())
}

async fn insert_summary(tx: &mut Tx, s: &DistributionSummary) -> Result<()> {
    let sql =
        format!("INSERT INTO distributions ({SUMMARY_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)");
    on_tx!(tx, |c| sqlx::query(&sql)
        .bind(&s.token)
        .bind(s.day.to_string())
        .bind(DbAmount(s.realized_reward.0))
        .bind(DbAmount(s.fee.0))
        .bind(DbAmount(s.carry_in.0))
        .bind(DbAmount(s.distributable.0))
        .bind(DbAmount(s.total_eligible.0))
        .bind(DbAmount(s.carry_out.0))
        .bind(s.apr.map(|a| a.to_string()))
        .bind(s.eligible_accounts as i64)
        .bind(s.paid_at.0)
        .execute(&mut *c)
        .await?
        .rows_affected());
    Ok(())
}

fn decode_apr(s: Option<String>) -> Result<Option<Decimal>> {
    s.map(|a| Decimal::from_str(&a).map_err(|e| StoreError::corrupt("distributions", format!("apr: {e}"))))
        .transpose()
}

fn decode_summary<R: RowExt>(r: &R) -> Result<DistributionSummary> {
    Ok(DistributionSummary {
        token: r.text("token")?,
        day: r.day("day", "distributions")?,
        realized_reward: r.amount("realized_reward", "distributions")?,
        fee: r.amount("fee", "distributions")?,
        carry_in: r.amount("carry_in", "distributions")?,
        distributable: r.amount("distributable", "distributions")?,
        total_eligible: r.amount("total_eligible", "distributions")?,
        carry_out: r.amount("carry_out", "distributions")?,
        apr: decode_apr(r.opt_text("apr")?)?,
        eligible_accounts: r.count("eligible_accounts", "distributions")?,
        paid_at: r.ts("paid_at")?,
    })
}

fn decode_history<R: RowExt>(r: &R) -> Result<HistoryRow> {
    Ok(HistoryRow {
        day: r.day("day", "payouts")?,
        token: r.text("token")?,
        average: r.amount("average", "payouts")?,
        eligible: r.amount("eligible", "payouts")?,
        reward: r.amount("reward", "payouts")?,
        paid_at: r.ts("paid_at")?,
    })
}
