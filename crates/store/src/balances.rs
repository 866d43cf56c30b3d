//! Closed days: their records and the order rules (days close in order per token, each
//! once). The close itself is in `close.rs`, the feed in `ingest.rs`.

use softstake_core::{Amount, Day};

use crate::db::{on_pool, on_tx, RowExt, Tx};
use crate::error::{Result, StoreError};
use crate::Store;

/// The result of closing one token's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOutcome {
    /// Token symbol.
    pub token: String,
    /// The day.
    pub day: Day,
    /// Accounts with a balance during the day.
    pub accounts: u64,
    /// Accounts with a positive eligible amount.
    pub eligible_accounts: u64,
    /// Σ eligible, base units.
    pub total_eligible: Amount,
    /// Σ closing balances (custodial total at the end of the day), base units.
    pub total_balance: Amount,
    /// True when the day had been closed before (nothing was written).
    pub already_closed: bool,
}

impl Store {
    /// Closed days of `token` not yet distributed, oldest first.
    pub async fn undistributed_days(&self, token: &str) -> Result<Vec<Day>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT c.day FROM closed_days c WHERE c.token = $1 AND NOT EXISTS \
                 (SELECT 1 FROM distributions d WHERE d.token = c.token AND d.day = c.day) ORDER BY c.day",
            )
            .bind(token)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| r.day("day", "closed_days")).collect()
        })
    }

    /// The last closed day of `token`, if any.
    pub async fn last_closed_day(&self, token: &str) -> Result<Option<Day>> {
        let mut tx = self.read_tx().await?;
        last_closed(&mut tx, token).await
    }

    /// The closed-day record of `(token, day)`, if closed.
    pub async fn closed_day(&self, token: &str, day: Day) -> Result<Option<CloseOutcome>> {
        let mut tx = self.read_tx().await?;
        closed_record(&mut tx, token, day).await
    }

    /// `(day, Σ closing balances, Σ eligible)` of the most recent `limit` closed days of
    /// `token`, oldest first: the custodial history the buffer planner turns into daily
    /// net outflows.
    pub async fn closed_day_totals(&self, token: &str, limit: u32) -> Result<Vec<(Day, Amount, Amount)>> {
        let mut out = on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT day, total_balance, total_eligible FROM closed_days WHERE token = $1 ORDER BY day DESC LIMIT $2",
            )
            .bind(token)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.day("day", "closed_days")?,
                        r.amount("total_balance", "closed_days")?,
                        r.amount("total_eligible", "closed_days")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?
        });
        out.reverse();
        Ok(out)
    }
}

/// The last closed day of `token`, read in `tx`.
pub(crate) async fn last_closed(tx: &mut Tx, token: &str) -> Result<Option<Day>> {
    on_tx!(tx, |c| sqlx::query(
        "SELECT MAX(day) AS day FROM closed_days WHERE token = $1"
    )
    .bind(token)
    .fetch_one(&mut *c)
    .await?
    .opt_day("day", "closed_days"))
}

/// The closed-day record of `(token, day)`, read in `tx`.
pub(crate) async fn closed_record(tx: &mut Tx, token: &str, day: Day) -> Result<Option<CloseOutcome>> {
    on_tx!(tx, |c| {
        let row = sqlx::query(
            "SELECT accounts, eligible_accounts, total_eligible, total_balance FROM closed_days WHERE token = $1 AND day = $2",
        )
        .bind(token)
        .bind(day.to_string())
        .fetch_optional(&mut *c)
        .await?;
        row.map(|r| {
            Ok(CloseOutcome {
                token: token.to_string(),
                day,
                accounts: r.count("accounts", "closed_days")?,
                eligible_accounts: r.count("eligible_accounts", "closed_days")?,
                total_eligible: r.amount("total_eligible", "closed_days")?,
                total_balance: r.amount("total_balance", "closed_days")?,
                already_closed: true,
            })
        })
        .transpose()
    })
}

/// Days close in order: the first close may be any day; later ones the day after the
/// last closed.
pub(crate) fn check_close_order(token: &str, day: Day, last: Option<Day>) -> Result<()> {
    let Some(last) = last else { return Ok(()) };
    let err = |reason: String| StoreError::DayOrder {
        token: token.to_string(),
        day: day.to_string(),
        reason,
    };
    if last > day {
        return Err(err(format!(
            "a later day ({last}) is already closed; days close in order"
        )));
    }
    if last < day.prev() {
        return Err(err(format!(
            "the previous day is not closed (last closed {last}); close {} first",
            last.next()
        )));
    }
    Ok(())
}
