//! Persistence of double-entry ledger entries and per-account balances.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Row};

use softstake_core::ledger::{Entry, Side};
use softstake_core::{Amount, Timestamp};

use crate::error::{Result, StoreError};
use crate::sql::{self, insert_rows, Val};
use crate::Store;

/// Debits and credits of one ledger account for one token, base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerBalance {
    /// Ledger account, e.g. `pool:undistributed`.
    pub account: String,
    /// Token symbol.
    pub token: String,
    /// Σ debits.
    pub debits: Amount,
    /// Σ credits.
    pub credits: Amount,
}

impl LedgerBalance {
    /// `debits − credits` as a signed number (i128 is enough for any real pool; an
    /// overflow is reported as an error by the caller's checks).
    pub fn net(&self) -> Option<i128> {
        let d = i128::try_from(self.debits.0).ok()?;
        let c = i128::try_from(self.credits.0).ok()?;
        d.checked_sub(c)
    }
}

/// Inserts balanced entries (checked again here, before writing) on `conn`.
pub(crate) async fn insert_entries(conn: &mut AnyConnection, entries: &[Entry], now: Timestamp) -> Result<()> {
    for e in entries {
        e.check_balanced()?;
        let row =
            sqlx::query("INSERT INTO ledger_entries (kind, reference, created_at) VALUES ($1, $2, $3) RETURNING id")
                .bind(e.kind.clone())
                .bind(e.reference.clone())
                .bind(now.0)
                .fetch_one(&mut *conn)
                .await?;
        let id: i64 = row.try_get("id")?;
        let rows: Vec<Vec<Val>> = e
            .postings
            .iter()
            .map(|p| {
                vec![
                    Val::I(id),
                    Val::T(p.account.0.clone()),
                    Val::T(p.token.clone()),
                    Val::T(match p.side {
                        Side::Debit => "D".into(),
                        Side::Credit => "C".into(),
                    }),
                    Val::T(p.amount.0.to_string()),
                ]
            })
            .collect();
        insert_rows(
            conn,
            "INSERT INTO ledger_postings (entry_id, account, token, side, amount)",
            "",
            5,
            &rows,
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Records balanced ledger entries in one transaction.
    pub async fn record_entries(&self, entries: &[Entry], now: Timestamp) -> Result<()> {
        let mut tx = self.write_tx().await?;
        insert_entries(&mut tx, entries, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Debits and credits per ledger account of `token` whose name starts with
    /// `prefix` (empty for all). Checks on read that the token's whole ledger balances
    /// when `prefix` is empty.
    pub async fn ledger_balances(&self, token: &str, prefix: &str) -> Result<Vec<LedgerBalance>> {
        let mut rows = sqlx::query("SELECT account, side, amount FROM ledger_postings WHERE token = $1")
            .bind(token.to_string())
            .fetch(&self.pool);
        let mut by: BTreeMap<String, (Amount, Amount)> = BTreeMap::new();
        let (mut all_d, mut all_c) = (Amount::ZERO, Amount::ZERO);
        while let Some(r) = rows.try_next().await? {
            let account: String = r.try_get("account")?;
            let side: String = r.try_get("side")?;
            let amount = sql::amount(&r, "amount", "ledger_postings")?;
            let is_debit = match side.as_str() {
                "D" => true,
                "C" => false,
                other => return Err(StoreError::corrupt("ledger_postings", format!("side {other:?}"))),
            };
            if is_debit {
                all_d = all_d.checked_add(amount, "ledger debits")?;
            } else {
                all_c = all_c.checked_add(amount, "ledger credits")?;
            }
            if !account.starts_with(prefix) {
                continue;
            }
            let e = by.entry(account).or_default();
            if is_debit {
                e.0 = e.0.checked_add(amount, "ledger debits")?;
            } else {
                e.1 = e.1.checked_add(amount, "ledger credits")?;
            }
        }
        if all_d != all_c {
            return Err(StoreError::corrupt(
                "ledger_postings",
                format!("{token}: debits {all_d} != credits {all_c}"),
            ));
        }
        Ok(by
            .into_iter()
            .map(|(account, (debits, credits))| LedgerBalance {
                account,
                token: token.to_string(),
                debits,
                credits,
            })
            .collect())
    }
}
