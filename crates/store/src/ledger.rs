//! Persistence of double-entry ledger entries and per-account balances.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;

use softstake_core::ledger::{Entry, Side};
use softstake_core::{Amount, Net, Timestamp};

use crate::db::{insert_rows, on_tx, Pool, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
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
    /// `debits − credits`, exact over the whole `u128` range of either side.
    pub fn net(&self) -> Net {
        Net::diff(self.debits, self.credits)
    }
}

/// Inserts balanced entries (checked again here, before writing) in `tx`.
pub(crate) async fn insert_entries(tx: &mut Tx, entries: &[Entry], now: Timestamp) -> Result<()> {
    for e in entries {
        e.check_balanced()?;
        let id: i64 = on_tx!(&mut *tx, |c| {
            let row = sqlx::query(
                "INSERT INTO ledger_entries (kind, reference, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(&e.kind)
            .bind(&e.reference)
            .bind(now.0)
            .fetch_one(&mut *c)
            .await?;
            row.int("id")?
        });
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
                    Val::A(p.amount),
                ]
            })
            .collect();
        insert_rows(
            tx,
            "INSERT INTO ledger_postings (entry_id, account, token, side, amount)",
            "",
            5,
            &rows,
        )
        .await?;
    }
    Ok(())
}

/// Σ debits and Σ credits per ledger account, accumulated with checked arithmetic.
#[derive(Default)]
struct Sums {
    by: BTreeMap<String, (Amount, Amount)>,
    all: (Amount, Amount),
}

impl Sums {
    fn add(&mut self, account: String, side: &str, amount: Amount, keep: bool) -> Result<()> {
        let debit = match side {
            "D" => true,
            "C" => false,
            other => return Err(StoreError::corrupt("ledger_postings", format!("side {other:?}"))),
        };
        let bump = |pair: &mut (Amount, Amount)| -> Result<()> {
            if debit {
                pair.0 = pair.0.checked_add(amount, "ledger debits")?;
            } else {
                pair.1 = pair.1.checked_add(amount, "ledger credits")?;
            }
            Ok(())
        };
        bump(&mut self.all)?;
        if keep {
            bump(self.by.entry(account).or_default())?;
        }
        Ok(())
    }
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
    /// `prefix` (empty for all). Checks on read that the token's whole ledger balances.
    ///
    /// PostgreSQL sums in SQL (`NUMERIC`); SQLite streams the postings and sums them here.
    pub async fn ledger_balances(&self, token: &str, prefix: &str) -> Result<Vec<LedgerBalance>> {
        let mut sums = Sums::default();
        match &self.pool {
            Pool::Postgres(p) => {
                let rows = sqlx::query(
                    "SELECT account, side, SUM(amount) AS amount FROM ledger_postings WHERE token = $1 GROUP BY account, side",
                )
                .bind(token)
                .fetch_all(p)
                .await?;
                for r in &rows {
                    let account = r.text("account")?;
                    let keep = account.starts_with(prefix);
                    sums.add(account, &r.text("side")?, r.amount("amount", "ledger_postings")?, keep)?;
                }
            }
            Pool::Sqlite(p) => {
                let mut rows = sqlx::query("SELECT account, side, amount FROM ledger_postings WHERE token = $1")
                    .bind(token)
                    .fetch(p);
                while let Some(r) = rows.try_next().await? {
                    let account = r.text("account")?;
                    let keep = account.starts_with(prefix);
                    sums.add(account, &r.text("side")?, r.amount("amount", "ledger_postings")?, keep)?;
                }
            }
        }
        if sums.all.0 != sums.all.1 {
            return Err(StoreError::corrupt(
                "ledger_postings",
                format!("{token}: debits {} != credits {}", sums.all.0, sums.all.1),
            ));
        }
        Ok(sums
            .by
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
