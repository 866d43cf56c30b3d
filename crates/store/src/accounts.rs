//! Soft-staking accounts: import, activation, lookup.

use std::collections::HashMap;

use futures_util::TryStreamExt;

use softstake_core::eligibility::Account;
use softstake_core::Timestamp;

use crate::db::{insert_rows, on_pool, on_tx, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::Store;

const ACCOUNT_COLS: &str = "account_id, jurisdiction, activated_at, deactivated_at";

/// An accounts import in progress: one transaction, fed batch by batch through a staging
/// table (memory is one batch), checked and published at [`AccountsImport::commit`].
/// Dropping it without committing changes nothing.
#[derive(Debug)]
pub struct AccountsImport {
    tx: Tx,
    rows: u64,
}

impl AccountsImport {
    /// Stages a batch; `lines[i]` is where `accounts[i]` came from (for the duplicate
    /// check's message).
    pub async fn push(&mut self, accounts: &[Account], lines: &[u64]) -> Result<()> {
        let rows: Vec<Vec<Val>> = accounts
            .iter()
            .zip(lines)
            .map(|(a, line)| {
                vec![
                    Val::I(*line as i64),
                    Val::T(a.account_id.clone()),
                    Val::T(a.jurisdiction.clone()),
                    Val::I(a.activated_at.0),
                    a.deactivated_at.map(|t| Val::I(t.0)).unwrap_or(Val::NullI),
                ]
            })
            .collect();
        insert_rows(
            &mut self.tx,
            "INSERT INTO accounts_staging (line, account_id, jurisdiction, activated_at, deactivated_at)",
            "",
            5,
            &rows,
        )
        .await?;
        self.rows += accounts.len() as u64;
        Ok(())
    }

    /// Refuses an account id given twice (naming both lines), then inserts or replaces
    /// every staged account and commits. Returns how many were imported.
    pub async fn commit(mut self) -> Result<u64> {
        let dup = on_tx!(&mut self.tx, |c| {
            let row = sqlx::query(
                "SELECT account_id, MIN(line) AS first, MAX(line) AS last FROM accounts_staging \
                 GROUP BY account_id HAVING COUNT(*) > 1 ORDER BY MIN(line) LIMIT 1",
            )
            .fetch_optional(&mut *c)
            .await?;
            row.map(|r| -> Result<StoreError> {
                Ok(StoreError::Invalid(format!(
                    "line {}: field `account_id`: account {} already given on line {}",
                    r.int("last")?,
                    r.text("account_id")?,
                    r.int("first")?
                )))
            })
            .transpose()?
        });
        if let Some(e) = dup {
            return Err(e);
        }
        on_tx!(&mut self.tx, |c| sqlx::query(
            "INSERT INTO accounts (account_id, jurisdiction, activated_at, deactivated_at) \
             SELECT account_id, jurisdiction, activated_at, deactivated_at FROM accounts_staging WHERE true \
             ON CONFLICT (account_id) DO UPDATE SET jurisdiction = excluded.jurisdiction, \
             activated_at = excluded.activated_at, deactivated_at = excluded.deactivated_at"
        )
        .execute(&mut *c)
        .await?
        .rows_affected());
        on_tx!(&mut self.tx, |c| sqlx::query("DELETE FROM accounts_staging")
            .execute(&mut *c)
            .await?
            .rows_affected());
        self.tx.commit().await?;
        Ok(self.rows)
    }
}

impl Store {
    /// Starts an accounts import (one transaction, staged in a temporary table).
    pub async fn begin_accounts_import(&self) -> Result<AccountsImport> {
        let mut tx = self.write_tx().await?;
        let ddl = match &tx {
            Tx::Postgres(_) => {
                "CREATE TEMP TABLE IF NOT EXISTS accounts_staging (line BIGINT NOT NULL, account_id TEXT COLLATE \"C\" NOT NULL, \
                 jurisdiction TEXT NOT NULL, activated_at BIGINT NOT NULL, deactivated_at BIGINT)"
            }
            Tx::Sqlite(_) => {
                "CREATE TEMP TABLE IF NOT EXISTS accounts_staging (line BIGINT NOT NULL, account_id TEXT NOT NULL, \
                 jurisdiction TEXT NOT NULL, activated_at BIGINT NOT NULL, deactivated_at BIGINT)"
            }
        };
        on_tx!(&mut tx, |c| sqlx::query(ddl).execute(&mut *c).await?.rows_affected());
        on_tx!(&mut tx, |c| sqlx::query("DELETE FROM accounts_staging")
            .execute(&mut *c)
            .await?
            .rows_affected());
        Ok(AccountsImport { tx, rows: 0 })
    }

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
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE accounts SET deactivated_at = $1 WHERE account_id = $2"
        )
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

/// Up to `limit` accounts with ids `>= from`, in id order (byte order), on a pooled
/// connection: the day close merges them with its accounts without holding every account
/// in memory.
pub(crate) async fn accounts_from_pool(pool: &crate::db::Pool, from: &str, limit: i64) -> Result<Vec<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE account_id >= $1 ORDER BY account_id LIMIT $2");
    match pool {
        crate::db::Pool::Sqlite(p) => {
            let rows = sqlx::query(&sql).bind(from).bind(limit).fetch_all(p).await?;
            rows.iter().map(decode_account).collect()
        }
        crate::db::Pool::Postgres(p) => {
            let rows = sqlx::query(&sql).bind(from).bind(limit).fetch_all(p).await?;
            rows.iter().map(decode_account).collect()
        }
    }
}
