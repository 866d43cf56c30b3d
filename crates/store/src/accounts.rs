//! Soft-staking accounts: import, activation, lookup.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Row};

use softstake_core::eligibility::Account;
use softstake_core::Timestamp;

use crate::error::{Result, StoreError};
use crate::sql::{insert_rows, ts, ts_opt, Val};
use crate::Store;

impl Store {
    /// Inserts or replaces accounts (all in one transaction). Returns how many rows were
    /// written.
    pub async fn upsert_accounts(&self, accounts: &[Account]) -> Result<u64> {
        let rows: Vec<Vec<Val>> = accounts
            .iter()
            .map(|a| {
                vec![
                    Val::T(a.account_id.clone()),
                    Val::T(a.jurisdiction.clone()),
                    Val::I(a.activated_at.0),
                    a.deactivated_at.map(|t| Val::I(t.0)).unwrap_or(Val::NullI),
                ]
            })
            .collect();
        let mut tx = self.write_tx().await?;
        let n = insert_rows(
            &mut tx,
            "INSERT INTO accounts (account_id, jurisdiction, activated_at, deactivated_at)",
            "ON CONFLICT (account_id) DO UPDATE SET jurisdiction = excluded.jurisdiction, \
             activated_at = excluded.activated_at, deactivated_at = excluded.deactivated_at",
            4,
            &rows,
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// One account, if known.
    pub async fn account(&self, account_id: &str) -> Result<Option<Account>> {
        let row = sqlx::query(
            "SELECT account_id, jurisdiction, activated_at, deactivated_at FROM accounts WHERE account_id = $1",
        )
        .bind(account_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| decode_account(&r)).transpose()
    }

    /// All accounts by id (memory grows with accounts: the day close needs them).
    pub async fn accounts_map(&self) -> Result<HashMap<String, Account>> {
        let mut conn = self.pool.acquire().await?;
        load_accounts(&mut conn).await
    }

    /// The one-click opt-in: activates `account_id` at `now` (its first snapshot is the
    /// next UTC day). Re-activating an active account keeps its original activation;
    /// re-activating a deactivated one starts afresh. A new account needs a jurisdiction.
    pub async fn activate(&self, account_id: &str, jurisdiction: Option<&str>, now: Timestamp) -> Result<Account> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(
            "SELECT account_id, jurisdiction, activated_at, deactivated_at FROM accounts WHERE account_id = $1",
        )
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| decode_account(&r))
        .transpose()?;
        let account = match existing {
            Some(a) if a.deactivated_at.is_none() => a,
            Some(a) => Account::new(account_id, jurisdiction.unwrap_or(&a.jurisdiction), now, None)?,
            None => {
                let j = jurisdiction.ok_or_else(|| {
                    StoreError::NotFound(format!("account {account_id}: a new account needs a jurisdiction"))
                })?;
                Account::new(account_id, j, now, None)?
            }
        };
        insert_rows(
            &mut tx,
            "INSERT INTO accounts (account_id, jurisdiction, activated_at, deactivated_at)",
            "ON CONFLICT (account_id) DO UPDATE SET jurisdiction = excluded.jurisdiction, \
             activated_at = excluded.activated_at, deactivated_at = excluded.deactivated_at",
            4,
            &[vec![
                Val::T(account.account_id.clone()),
                Val::T(account.jurisdiction.clone()),
                Val::I(account.activated_at.0),
                Val::NullI,
            ]],
        )
        .await?;
        tx.commit().await?;
        Ok(account)
    }

    /// Switches soft staking off at `now` (the current day no longer earns). Idempotent:
    /// an already deactivated account keeps its first deactivation time.
    pub async fn deactivate(&self, account_id: &str, now: Timestamp) -> Result<Account> {
        let mut tx = self.write_tx().await?;
        let a = sqlx::query(
            "SELECT account_id, jurisdiction, activated_at, deactivated_at FROM accounts WHERE account_id = $1",
        )
        .bind(account_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| decode_account(&r))
        .transpose()?
        .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))?;
        if a.deactivated_at.is_some() {
            return Ok(a);
        }
        let at = now.max(a.activated_at);
        sqlx::query("UPDATE accounts SET deactivated_at = $1 WHERE account_id = $2")
            .bind(at.0)
            .bind(account_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Account {
            deactivated_at: Some(at),
            ..a
        })
    }
}

fn decode_account(r: &sqlx::any::AnyRow) -> Result<Account> {
    let id: String = r.try_get("account_id")?;
    let j: String = r.try_get("jurisdiction")?;
    Account::new(&id, &j, ts(r, "activated_at")?, ts_opt(r, "deactivated_at")?)
        .map_err(|e| StoreError::corrupt("accounts", e.to_string()))
}

/// All accounts by id, read on `conn` (inside the caller's transaction).
pub(crate) async fn load_accounts(conn: &mut AnyConnection) -> Result<HashMap<String, Account>> {
    let mut out = HashMap::new();
    let mut rows =
        sqlx::query("SELECT account_id, jurisdiction, activated_at, deactivated_at FROM accounts").fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        let a = decode_account(&r)?;
        out.insert(a.account_id.clone(), a);
    }
    Ok(out)
}
