//! Realized rewards attributed to days.
//!
//! Only realized on-chain rewards are recorded (never promised yield). A reward row is
//! keyed by `(token, day, source)`: recording the same row twice is a no-op, recording a
//! different amount under the same key is refused, and a day that is already paid out
//! accepts no more rewards.

use sqlx::AnyConnection;

use softstake_core::ledger::{Entry, LedgerAccount};
use softstake_core::{Amount, Day, Timestamp};

use crate::error::{Result, StoreError};
use crate::ledger::insert_entries;
use crate::sql;
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
    /// another amount; [`StoreError::RewardForDistributedDay`] when the day is paid out.
    pub async fn record_rewards(&self, rows: &[RewardRow], now: Timestamp) -> Result<Vec<RecordOutcome>> {
        let mut tx = self.write_tx().await?;
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
        tx.commit().await?;
        Ok(out)
    }

    /// Σ realized rewards of `token` attributed to `day`, base units.
    pub async fn realized_reward(&self, token: &str, day: Day) -> Result<Amount> {
        let mut conn = self.pool.acquire().await?;
        realized(&mut conn, token, day).await
    }
}

/// Records one reward row and its ledger entry (`Dr debit / Cr chain:rewards`).
pub(crate) async fn record_one(
    conn: &mut AnyConnection,
    token: &str,
    day: Day,
    source: &str,
    amount: Amount,
    debit: LedgerAccount,
    now: Timestamp,
) -> Result<RecordOutcome> {
    let distributed = sqlx::query("SELECT 1 AS x FROM distributions WHERE token = $1 AND day = $2")
        .bind(token.to_string())
        .bind(day.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    if distributed.is_some() {
        return Err(StoreError::RewardForDistributedDay {
            token: token.to_string(),
            day: day.to_string(),
        });
    }
    let existing = sqlx::query("SELECT amount FROM rewards WHERE token = $1 AND day = $2 AND source = $3")
        .bind(token.to_string())
        .bind(day.to_string())
        .bind(source.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(r) = existing {
        let stored = sql::amount(&r, "amount", "rewards")?;
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
    sqlx::query("INSERT INTO rewards (token, day, source, amount, recorded_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(token.to_string())
        .bind(day.to_string())
        .bind(source.to_string())
        .bind(amount.0.to_string())
        .bind(now.0)
        .execute(&mut *conn)
        .await?;
    let entry = Entry::new("reward_realized", &format!("{day} {source}")).transfer(
        debit,
        LedgerAccount::chain_rewards(),
        token,
        amount,
    );
    insert_entries(conn, &[entry], now).await?;
    Ok(RecordOutcome::Recorded)
}

pub(crate) async fn realized(conn: &mut AnyConnection, token: &str, day: Day) -> Result<Amount> {
    let rows = sqlx::query("SELECT amount FROM rewards WHERE token = $1 AND day = $2")
        .bind(token.to_string())
        .bind(day.to_string())
        .fetch_all(&mut *conn)
        .await?;
    let mut total = Amount::ZERO;
    for r in rows {
        total = total.checked_add(sql::amount(&r, "amount", "rewards")?, "Σ realized rewards")?;
    }
    Ok(total)
}
