//! The treasury's own flows on a chain whose reward is balance growth (ApeChain native
//! yield): each transaction that moved the treasury account's funds, resolved from its
//! receipt by the chain's adapter, so reward = growth − flows needs no block scan.
//!
//! ```text
//!  journal operation (tx id) ─┐
//!  declared transfer (tx id) ─┴─▶ adapter.treasury_flow ─▶ record_treasury_flow
//!  sync: treasury_flows(token) ─▶ adapter.give_treasury_flows ─▶ rewards_since
//! ```

use softstake_core::position::TreasuryFlow;
use softstake_core::Timestamp;

use crate::db::{on_pool, on_tx, DbAmount, RowExt, Tx};
use crate::error::{Result, StoreError};
use crate::Store;

/// Most flows kept per token (bounds every read; an exchange's custody moves a few per
/// day, so this is decades).
pub const MAX_TREASURY_FLOWS: usize = 100_000;
/// Most journal transactions resolved per sync.
pub const MAX_UNRESOLVED_JOURNAL_TXS: usize = 1_000;

/// Who named a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowSource {
    /// An operation softstake signed (its journal entry).
    Journal,
    /// A transfer a treasury user declared (`softstake flow`).
    Declared,
}

impl FlowSource {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FlowSource::Journal => "journal",
            FlowSource::Declared => "declared",
        }
    }
}

fn decode<R: RowExt>(r: &R) -> Result<TreasuryFlow> {
    let nonce = r
        .opt_int("nonce")?
        .map(|n| u64::try_from(n).map_err(|_| StoreError::corrupt("treasury_flows", format!("nonce {n}"))))
        .transpose()?;
    let block = r.int("block")?;
    Ok(TreasuryFlow {
        tx_id: r.text("tx_id")?,
        block: u64::try_from(block).map_err(|_| StoreError::corrupt("treasury_flows", format!("block {block}")))?,
        nonce,
        received: r.amount("received", "treasury_flows")?,
        sent: r.amount("sent", "treasury_flows")?,
    })
}

fn i64_of(what: &str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{what} {v} does not fit a BIGINT")))
}

/// How many flows `token` holds, read inside `tx`.
async fn flow_count(tx: &mut Tx, token: &str) -> Result<usize> {
    let n = on_tx!(&mut *tx, |c| sqlx::query(
        "SELECT COUNT(*) AS n FROM treasury_flows WHERE token = $1"
    )
    .bind(token)
    .fetch_one(&mut *c)
    .await?
    .int("n")?);
    usize::try_from(n).map_err(|_| StoreError::corrupt("treasury_flows", format!("count {n}")))
}

/// Refuses when `token` no longer holds exactly `seen` flows (flows are only ever added,
/// so the count is their version).
pub(crate) async fn check_flows_unchanged(tx: &mut Tx, token: &str, seen: usize) -> Result<()> {
    let now = flow_count(tx, token).await?;
    if now != seen {
        return Err(StoreError::Invalid(format!(
            "{token}: treasury flows changed during the sync ({seen} read, {now} now): nothing booked; the next sync accounts them"
        )));
    }
    Ok(())
}

impl Store {
    /// Records one flow of `token`'s treasury. Recording the same transaction again with
    /// the same effect is a no-op (returns false); with another effect it is refused.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the transaction is recorded with another effect, or
    /// when the token already holds [`MAX_TREASURY_FLOWS`]; the database's.
    pub async fn record_treasury_flow(
        &self,
        token: &str,
        flow: &TreasuryFlow,
        source: FlowSource,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<bool> {
        if let Some(old) = self.treasury_flow(token, &flow.tx_id).await? {
            if &old != flow {
                return Err(StoreError::Invalid(format!(
                    "{token}: flow {} is already recorded as {old:?}, not {flow:?}",
                    flow.tx_id
                )));
            }
            return Ok(false);
        }
        let block = i64_of("block", flow.block)?;
        let nonce = flow.nonce.map(|n| i64_of("nonce", n)).transpose()?;
        let mut tx = self.write_tx().await?;
        // the day lock orders this insert against a sync's booking (record_realized_after_flows)
        Store::lock_token_days(&mut tx, token).await?;
        if flow_count(&mut tx, token).await? >= MAX_TREASURY_FLOWS {
            return Err(StoreError::Invalid(format!(
                "{token}: {MAX_TREASURY_FLOWS} treasury flows recorded already"
            )));
        }
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO treasury_flows (token, tx_id, block, nonce, received, sent, source, note, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (token, tx_id) DO NOTHING"
        )
        .bind(token)
        .bind(&flow.tx_id)
        .bind(block)
        .bind(nonce)
        .bind(DbAmount(flow.received.0))
        .bind(DbAmount(flow.sent.0))
        .bind(source.as_str())
        .bind(note)
        .bind(now.0)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        if n == 0 {
            // another writer recorded it between the read and the insert: same rule
            return Box::pin(self.record_treasury_flow(token, flow, source, note, now)).await;
        }
        Ok(true)
    }

    /// One recorded flow of `token`, by transaction id.
    ///
    /// # Errors
    /// The database's; a corrupt row.
    pub async fn treasury_flow(&self, token: &str, tx_id: &str) -> Result<Option<TreasuryFlow>> {
        on_pool!(self, |p| sqlx::query(
            "SELECT * FROM treasury_flows WHERE token = $1 AND tx_id = $2"
        )
        .bind(token)
        .bind(tx_id)
        .fetch_optional(p)
        .await?
        .map(|r| decode(&r))
        .transpose())
    }

    /// Every recorded flow of `token`, by block then transaction id.
    ///
    /// # Errors
    /// The database's; a corrupt row; [`StoreError::Invalid`] past
    /// [`MAX_TREASURY_FLOWS`].
    pub async fn treasury_flows(&self, token: &str) -> Result<Vec<TreasuryFlow>> {
        let flows: Vec<TreasuryFlow> = on_pool!(self, |p| {
            let rows = sqlx::query("SELECT * FROM treasury_flows WHERE token = $1 ORDER BY block, tx_id LIMIT $2")
                .bind(token)
                .bind(MAX_TREASURY_FLOWS as i64 + 1)
                .fetch_all(p)
                .await?;
            rows.iter().map(decode).collect::<Result<Vec<_>>>()?
        });
        if flows.len() > MAX_TREASURY_FLOWS {
            return Err(StoreError::Invalid(format!(
                "{token}: more than {MAX_TREASURY_FLOWS} treasury flows"
            )));
        }
        Ok(flows)
    }

    /// The journal's transactions of `token` that may have landed (submitted, confirmed,
    /// reconciled, or failed after signing) and have no recorded flow, oldest first, at
    /// most [`MAX_UNRESOLVED_JOURNAL_TXS`].
    ///
    /// # Errors
    /// The database's.
    pub async fn journal_txs_without_flow(&self, token: &str) -> Result<Vec<String>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT o.tx_id FROM operations o WHERE o.token = $1 AND o.tx_id IS NOT NULL \
                 AND o.state IN ('submitted', 'confirmed', 'reconciled', 'failed') \
                 AND NOT EXISTS (SELECT 1 FROM treasury_flows f WHERE f.token = o.token AND f.tx_id = o.tx_id) \
                 ORDER BY o.created_at, o.plan_id, o.seq LIMIT $2",
            )
            .bind(token)
            .bind(MAX_UNRESOLVED_JOURNAL_TXS as i64)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| r.text("tx_id")).collect()
        })
    }
}
