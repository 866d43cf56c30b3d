//! Soft-staking accounts: import, activation, lookup.

use std::collections::HashMap;

use futures_util::TryStreamExt;

use softstake_core::eligibility::Account;
use softstake_core::Timestamp;

use crate::db::{insert_rows, on_pool, on_tx, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::Store;

const ACCOUNT_COLS: &str = "account_id, jurisdiction, activated_at, deactivated_at";

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
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id = $1");
        on_pool!(self, |p| {
            let row = sqlx::query(&sql).bind(account_id).fetch_optional(p).await?;
            row.map(|r| decode_account(&r)).transpose()
        })
    }

    /// All accounts by id (memory grows with accounts: for small programs such as the
    /// demo; the day close streams them instead).
    pub async fn accounts_map(&self) -> Result<HashMap<String, Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts");
        on_pool!(self, |p| {
            let mut out = HashMap::new();
            let mut rows = sqlx::query(&sql).fetch(p);
            while let Some(r) = rows.try_next().await? {
                let a = decode_account(&r)?;
                out.insert(a.account_id.clone(), a);
            }
            Ok(out)
        })
    }

    /// The one-click opt-in: activates `account_id` at `now` (its first snapshot is the
    /// next UTC day). Re-activating an active account keeps its original activation;
    /// re-activating a deactivated one starts afresh. A new account needs a jurisdiction.
    pub async fn activate(&self, account_id: &str, jurisdiction: Option<&str>, now: Timestamp) -> Result<Account> {
        let mut tx = self.write_tx().await?;
        let existing = account_in(&mut tx, account_id).await?;
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
        let a = account_in(&mut tx, account_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("account {account_id}")))?;
        if a.deactivated_at.is_some() {
            return Ok(a);
        }
        let at = now.max(a.activated_at);
        on_tx!(&mut tx, |c| sqlx::query("UPDATE accounts SET deactivated_at = $1 WHERE account_id = $2")
            .bind(at.0)
            .bind(account_id)
            .execute(&mut *c)
            .await?
            .rows_affected());
        tx.commit().await?;
        Ok(Account {
            deactivated_at: Some(at),
            ..a
        })
    }
}

fn decode_account<R: RowExt>(r: &R) -> Result<Account> {
    let id = r.text("account_id")?;
    let j = r.text("jurisdiction")?;
    Account::new(&id, &j, r.ts("activated_at")?, r.opt_ts("deactivated_at")?)
        .map_err(|e| StoreError::corrupt("accounts", e.to_string()))
}

async fn account_in(tx: &mut Tx, account_id: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id = $1");
    on_tx!(tx, |c| {
        let row = sqlx::query(&sql).bind(account_id).fetch_optional(&mut *c).await?;
        row.map(|r| decode_account(&r)).transpose()
    })
}

/// Up to `limit` accounts with ids `>= from`, in id order (byte order): the day close
/// merges them with its accounts without holding every account in memory.
pub(crate) async fn accounts_from(tx: &mut Tx, from: &str, limit: i64) -> Result<Vec<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id >= $1 ORDER BY account_id LIMIT $2");
    on_tx!(tx, |c| {
        let rows = sqlx::query(&sql).bind(from).bind(limit).fetch_all(&mut *c).await?;
        rows.iter().map(decode_account).collect()
    })
}
