//! A stored day in the stateless replay's output contract (`softstake allocate`'s
//! `day,token,account_id,average_balance,eligible_balance,reward`), so an auditor can
//! compare the two account by account.

use softstake_core::{Amount, Day};

use crate::balances::CloseOutcome;
use crate::db::{on_pool, RowExt};
use crate::distribution::DistributionSummary;
use crate::error::Result;
use crate::Store;

/// One account's line of a stored day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// Account id.
    pub account_id: String,
    /// TWAB over the day, base units.
    pub average: Amount,
    /// Eligible amount, base units.
    pub eligible: Amount,
    /// Reward paid, base units (0 for accounts not eligible).
    pub reward: Amount,
}

/// A stored, distributed day: its close and its distribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutExport {
    /// The closed-day record.
    pub closed: CloseOutcome,
    /// The distribution record (R, fee, carry in and out, D, APR).
    pub summary: DistributionSummary,
}

impl Store {
    /// The close and distribution of `(token, day)`, or `None` when the day is not both
    /// closed and distributed.
    pub async fn payout_export(&self, token: &str, day: Day) -> Result<Option<PayoutExport>> {
        let Some(closed) = self.closed_day(token, day).await? else {
            return Ok(None);
        };
        let Some(summary) = self.distribution(token, day).await? else {
            return Ok(None);
        };
        Ok(Some(PayoutExport { closed, summary }))
    }

    /// Up to `limit` accounts of a stored day after `after`, in id order (byte order):
    /// every account with a daily row, its average and eligible amount and its reward.
    pub async fn export_page(&self, token: &str, day: Day, after: Option<&str>, limit: u32) -> Result<Vec<ExportRow>> {
        // The reward is a lookup by the payouts' unique key for each row of the page, so
        // every page costs its own rows whatever the planner's statistics say (a join
        // planned on a freshly written, not yet analyzed payouts table degenerated into
        // a nested loop over all of it per page).
        let sql = match after {
            Some(_) => {
                "SELECT d.account_id, d.average, d.eligible, (SELECT p.reward FROM payouts p \
                 WHERE p.account_id = d.account_id AND p.day = d.day AND p.token = d.token) AS reward \
                 FROM daily_balances d WHERE d.token = $1 AND d.day = $2 AND d.account_id > $3 \
                 ORDER BY d.account_id LIMIT $4"
            }
            None => {
                "SELECT d.account_id, d.average, d.eligible, (SELECT p.reward FROM payouts p \
                 WHERE p.account_id = d.account_id AND p.day = d.day AND p.token = d.token) AS reward \
                 FROM daily_balances d WHERE d.token = $1 AND d.day = $2 AND $3 IS NULL \
                 ORDER BY d.account_id LIMIT $4"
            }
        };
        on_pool!(self, |p| {
            let rows = sqlx::query(sql)
                .bind(token)
                .bind(day.to_string())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(ExportRow {
                        account_id: r.text("account_id")?,
                        average: r.amount("average", "daily_balances")?,
                        eligible: r.amount("eligible", "daily_balances")?,
                        reward: r.opt_amount("reward", "payouts")?.unwrap_or_default(),
                    })
                })
                .collect()
        })
    }
}
