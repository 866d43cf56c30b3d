//! Realized rewards attributed to days.
//!
//! Only realized on-chain rewards are recorded (never promised yield). A reward row is
//! keyed by `(token, day, source)`: recording the same row twice is a no-op, recording a
//! different amount under the same key is refused, a day that is already paid out
//! accepts no more rewards, and neither does a day before the token's first closed day
//! (it can never be paid). Recording takes the token's day lock, so a reward either lands
//! before its day's distribution or is refused, never lost.

use std::collections::BTreeSet;

use softstake_core::ledger::{Entry, LedgerAccount};
use softstake_core::{Amount, Day, Timestamp};

use crate::db::{on_tx, DbAmount, RowExt, Tx};
use crate::error::{Result, StoreError};
use crate::ledger::insert_entries;
use crate::Store;

/// What recording one reward row did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// A new row was stored.
    Recorded,
    /// The identical row was already stored; nothing changed.
    AlreadyRecorded,
}

/// One reward to record: token, day, source label, amount in base units.
pub type RewardRow = (String, Day, String, Amount);

impl Store {
    /// Records realized rewards, all or nothing.
    ///
    /// Errors: [`StoreError::RewardConflict`] when `(token, day, source)` exists with
    /// another amount; [`StoreError::RewardForDistributedDay`] when the day is paid out;
    /// [`StoreError::RewardBeforeFirstClosedDay`] for a day before the token's first
    /// closed day.
    pub async fn record_rewards(&self, rows: &[RewardRow], now: Timestamp) -> Result<Vec<RecordOutcome>> {
        let mut tx = self.write_tx().await?;
        let tokens: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        for t in tokens {
            Store::lock_token_days(&mut tx, t).await?;
        }
        let mut out = Vec::with_capacity(rows.len());
        for (token, day, source, amount) in rows {
            out.push(
                record_one(
                    &mut tx,
                    token,
                    *day,
                    source,
                    *amount,
                    LedgerAccount::custody_rewards(),
                    now,
                )
                .await?,
            );
        }
        self.pauses.hold(crate::PausePoint::RewardsRecorded).await;
        tx.commit().await?;
        Ok(out)
    }

    /// Σ realized rewards of `token` attributed to `day`, base units.
    pub async fn realized_reward(&self, token: &str, day: Day) -> Result<Amount> {
        let mut tx = self.read_tx().await?;
        realized(&mut tx, token, day).await
    }
}

/// The first closed day of `token`, if any.
pub(crate) async fn first_closed(tx: &mut Tx, token: &str) -> Result<Option<Day>> {
    on_tx!(tx, |c| {
        let row = sqlx::query("SELECT MIN(day) AS day FROM closed_days WHERE token = $1")
            .bind(token)
            .fetch_one(&mut *c)
            .await?;
        row.opt_day("day", "closed_days")
    })
}

/// Records one reward row and its ledger entry (`Dr debit / Cr chain:rewards`). The
/// caller holds the token's day lock.
pub(crate) async fn record_one(
    tx: &mut Tx,
    token: &str,
    day: Day,
    source: &str,
    amount: Amount,
    debit: LedgerAccount,
    now: Timestamp,
) -> Result<RecordOutcome> {
    let distributed = on_tx!(&mut *tx, |c| sqlx::query(
        "SELECT 1 AS x FROM distributions WHERE token = $1 AND day = $2"
    )
    .bind(token)
    .bind(day.to_string())
    .fetch_optional(&mut *c)
    .await?
    .is_some());
    if distributed {
        return Err(StoreError::RewardForDistributedDay {
            token: token.to_string(),
            day: day.to_string(),
        });
    }
    if let Some(first) = first_closed(tx, token).await? {
        if day < first {
            return Err(StoreError::RewardBeforeFirstClosedDay {
                token: token.to_string(),
                day: day.to_string(),
                first_closed: first.to_string(),
            });
        }
    }
    let existing = on_tx!(&mut *tx, |c| {
        let row = sqlx::query("SELECT amount FROM rewards WHERE token = $1 AND day = $2 AND source = $3")
            .bind(token)
            .bind(day.to_string())
            .bind(source)
            .fetch_optional(&mut *c)
            .await?;
        row.map(|r| r.amount("amount", "rewards")).transpose()?
    });
    if let Some(stored) = existing {
        return if stored == amount {
            Ok(RecordOutcome::AlreadyRecorded)
        } else {
            Err(StoreError::RewardConflict {
                token: token.to_string(),
                day: day.to_string(),
                source_name: source.to_string(),
                existing: stored.to_string(),
                new: amount.to_string(),
            })
        };
    }
    on_tx!(&mut *tx, |c| sqlx::query(
        "INSERT INTO rewards (token, day, source, amount, recorded_at) VALUES ($1, $2, $3, $4, $5)"
    )
    .bind(token)
    .bind(day.to_string())
    .bind(source)
    .bind(DbAmount(amount.0))
    .bind(now.0)
    .execute(&mut *c)
    .await?
    .rows_affected());
    let entry = Entry::new("reward_realized", &format!("{day} {source}")).transfer(
        debit,
        LedgerAccount::chain_rewards(),
        token,
        amount,
    );
    insert_entries(tx, &[entry], now).await?;
    Ok(RecordOutcome::Recorded)
}

/// Σ realized rewards of `token` for `day` (few rows per day: summed here on both
/// backends).
pub(crate) async fn realized(tx: &mut Tx, token: &str, day: Day) -> Result<Amount> {
    let amounts: Vec<Amount> = on_tx!(tx, |c| {
        let rows = sqlx::query("SELECT amount FROM rewards WHERE token = $1 AND day = $2")
            .bind(token)
            .bind(day.to_string())
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| r.amount("amount", "rewards"))
            .collect::<Result<Vec<_>>>()?
    });
    Amount::checked_sum(amounts, "Σ realized rewards").map_err(Into::into)
}
