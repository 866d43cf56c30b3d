//! The operations journal: every side effect on a chain, keyed by an idempotency key,
//! moving through `intent → submitted (tx id) → confirmed | failed → reconciled`.
//!
//! Each transition is a compare-and-set on the `(state, attempts)` its caller read
//! ([`Expect`]: `UPDATE … WHERE state = $s AND attempts = $a`), persisted before the side
//! effect it guards, and logged in `operation_log`. A transition from a state that does
//! not allow it, or from a row another writer moved on since it was read, is refused
//! ([`StoreError::Journal`]) and changes nothing. On a [`Store::fenced`] handle the
//! transition is also refused once the writer's lease is stale.

use std::collections::BTreeMap;

use softstake_core::ledger::Entry;
use softstake_core::plan::OpKind;
use softstake_core::{Amount, Timestamp};

use crate::db::{on_pool, on_tx, DbAmount, RowExt, Tx};
use crate::error::{Result, StoreError};
use crate::ledger::insert_entries;
use crate::Store;

/// Where an operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OperationState {
    /// Recorded; no transaction exists yet.
    Intent,
    /// A signed transaction with this id may be on its way to the chain.
    Submitted,
    /// The chain finalized it.
    Confirmed,
    /// It cannot take effect (rejected, failed on chain).
    Failed,
    /// Reconciliation saw its effect in the chain's positions.
    Reconciled,
}

impl OperationState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Intent => "intent",
            OperationState::Submitted => "submitted",
            OperationState::Confirmed => "confirmed",
            OperationState::Failed => "failed",
            OperationState::Reconciled => "reconciled",
        }
    }

    /// Parses [`OperationState::as_str`]'s output.
    pub fn parse(s: &str) -> Option<OperationState> {
        Some(match s {
            "intent" => OperationState::Intent,
            "submitted" => OperationState::Submitted,
            "confirmed" => OperationState::Confirmed,
            "failed" => OperationState::Failed,
            "reconciled" => OperationState::Reconciled,
            _ => return None,
        })
    }

    /// True while the operation may still act on the chain.
    pub fn is_open(self) -> bool {
        matches!(self, OperationState::Intent | OperationState::Submitted)
    }
}

/// A new operation to record as an intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOperation {
    /// Idempotency key.
    pub idempotency_key: String,
    /// Plan it belongs to.
    pub plan_id: String,
    /// Position in the plan.
    pub seq: u32,
    /// Token symbol.
    pub token: String,
    /// Kind.
    pub kind: OpKind,
    /// Validator.
    pub validator: String,
    /// Amount, base units.
    pub amount: Amount,
    /// Chain epoch it is planned in.
    pub epoch: u64,
}

/// A journal row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Idempotency key.
    pub idempotency_key: String,
    /// Plan.
    pub plan_id: String,
    /// Position in the plan.
    pub seq: u32,
    /// Token.
    pub token: String,
    /// Kind.
    pub kind: OpKind,
    /// Validator.
    pub validator: String,
    /// Amount, base units.
    pub amount: Amount,
    /// State.
    pub state: OperationState,
    /// Latest transaction id.
    pub tx_id: Option<String>,
    /// Latest signed payload (to send again after a lost reply).
    pub payload: Option<String>,
    /// Latest transaction's expiry, chain time.
    pub valid_until: Option<Timestamp>,
    /// Transactions signed so far.
    pub attempts: u32,
    /// Why it failed.
    pub error: Option<String>,
    /// Chain epoch.
    pub epoch: u64,
    /// Created.
    pub created_at: Timestamp,
    /// Last transition.
    pub updated_at: Timestamp,
}

/// The version of an operation row a transition expects to find: the `(state,
/// attempts)` its caller read. If another writer moved the row on in between (signed a
/// new attempt, confirmed or failed it), the transition is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// State read.
    pub state: OperationState,
    /// Attempts read.
    pub attempts: u32,
}

impl Operation {
    /// This row's version, for a compare-and-set transition from it.
    pub fn expect(&self) -> Expect {
        Expect {
            state: self.state,
            attempts: self.attempts,
        }
    }
}

/// The error of a refused transition: what the row is now against what was expected.
async fn refused(tx: &mut Tx, key: &str, expect: Expect, to: OperationState) -> Result<StoreError> {
    let now = on_tx!(tx, |c| sqlx::query(
        "SELECT state, attempts FROM operations WHERE idempotency_key = $1"
    )
    .bind(key)
    .fetch_optional(&mut *c)
    .await?
    .map(|r| Ok::<_, StoreError>((r.text("state")?, r.int("attempts")?)))
    .transpose()?)
    .ok_or_else(|| StoreError::NotFound(format!("operation {key}")))?;
    Ok(StoreError::Journal(format!(
        "operation {key}: cannot go from {} (attempt {}) to {}: it is {} (attempt {})",
        expect.state.as_str(),
        expect.attempts,
        to.as_str(),
        now.0,
        now.1
    )))
}

/// Most undelegations and withdrawals [`Store::exit_operations`] returns (a bound on the
/// read; decades of daily exits).
pub const MAX_EXIT_OPERATIONS: usize = 100_000;

const COLS: &str = "idempotency_key, plan_id, seq, token, kind, validator, amount, state, tx_id, payload, valid_until, attempts, error, epoch, created_at, updated_at";

fn decode<R: RowExt>(r: &R) -> Result<Operation> {
    let kind = r.text("kind")?;
    let state = r.text("state")?;
    Ok(Operation {
        idempotency_key: r.text("idempotency_key")?,
        plan_id: r.text("plan_id")?,
        seq: r.int("seq")? as u32,
        token: r.text("token")?,
        kind: OpKind::parse(&kind).ok_or_else(|| StoreError::corrupt("operations", format!("kind {kind:?}")))?,
        validator: r.text("validator")?,
        amount: r.amount("amount", "operations")?,
        state: OperationState::parse(&state)
            .ok_or_else(|| StoreError::corrupt("operations", format!("state {state:?}")))?,
        tx_id: r.opt_text("tx_id")?,
        payload: r.opt_text("payload")?,
        valid_until: r.opt_ts("valid_until")?,
        attempts: r.int("attempts")? as u32,
        error: r.opt_text("error")?,
        epoch: r.int("epoch")? as u64,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

async fn log(
    tx: &mut Tx,
    key: &str,
    from: Option<OperationState>,
    to: OperationState,
    tx_id: Option<&str>,
    detail: &str,
    now: Timestamp,
) -> Result<()> {
    on_tx!(tx, |c| {
        sqlx::query(
        "INSERT INTO operation_log (idempotency_key, at, from_state, to_state, tx_id, detail) VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(key)
    .bind(now.0)
    .bind(from.map(|s| s.as_str()))
    .bind(to.as_str())
    .bind(tx_id)
    .bind(detail)
    .execute(&mut *c)
    .await?
            .rows_affected()
    });
    Ok(())
}

impl Store {
    /// Records operations as intents. Keys already present are left as they are (a
    /// plan executed again does not restart its operations). Returns how many were new.
    pub async fn record_intents(&self, ops: &[NewOperation], now: Timestamp) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "INSERT INTO operations ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, 'intent', NULL, NULL, NULL, 0, NULL, $8, $9, $9) \
             ON CONFLICT (idempotency_key) DO NOTHING"
        );
        let mut new = 0;
        for op in ops {
            let n = on_tx!(&mut tx, |c| sqlx::query(&sql)
                .bind(&op.idempotency_key)
                .bind(&op.plan_id)
                .bind(i64::from(op.seq))
                .bind(&op.token)
                .bind(op.kind.as_str())
                .bind(&op.validator)
                .bind(DbAmount(op.amount.0))
                .bind(op.epoch as i64)
                .bind(now.0)
                .execute(&mut *c)
                .await?
                .rows_affected());
            if n == 1 {
                log(
                    &mut tx,
                    &op.idempotency_key,
                    None,
                    OperationState::Intent,
                    None,
                    "planned",
                    now,
                )
                .await?;
                new += 1;
            }
        }
        tx.commit().await?;
        Ok(new)
    }

    /// One operation.
    pub async fn operation(&self, key: &str) -> Result<Option<Operation>> {
        let sql = format!("SELECT {COLS} FROM operations WHERE idempotency_key = $1");
        on_pool!(self, |p| {
            let row = sqlx::query(&sql).bind(key).fetch_optional(p).await?;
            row.map(|r| decode(&r)).transpose()
        })
    }

    /// Operations still open (intent or submitted), oldest first; all tokens when
    /// `token` is `None`.
    pub async fn open_operations(&self, token: Option<&str>) -> Result<Vec<Operation>> {
        let sql = format!(
            "SELECT {COLS} FROM operations WHERE state IN ('intent', 'submitted') AND ($1 = '' OR token = $1) ORDER BY created_at, plan_id, seq"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(&sql).bind(token.unwrap_or("")).fetch_all(p).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Operations of a token (or all), newest first, at most `limit`.
    pub async fn operations(&self, token: Option<&str>, limit: u32) -> Result<Vec<Operation>> {
        let sql = format!(
            "SELECT {COLS} FROM operations WHERE ($1 = '' OR token = $1) ORDER BY created_at DESC, plan_id, seq LIMIT $2"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(token.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// A token's undelegations and withdrawals not refused (intent, submitted, confirmed,
    /// reconciled), oldest first, at most [`MAX_EXIT_OPERATIONS`]: what an adapter whose
    /// unbonding entries are named after journal keys (Sonic's wrID) needs to find its
    /// open entries without scanning the chain.
    ///
    /// # Errors
    /// The database's; [`StoreError::Invalid`] past [`MAX_EXIT_OPERATIONS`].
    pub async fn exit_operations(&self, token: &str) -> Result<Vec<Operation>> {
        let sql = format!(
            "SELECT {COLS} FROM operations WHERE token = $1 AND kind IN ('undelegate', 'withdraw') AND state <> 'failed' ORDER BY created_at, plan_id, seq LIMIT $2"
        );
        let ops: Vec<Operation> = on_pool!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(token)
                .bind(MAX_EXIT_OPERATIONS as i64 + 1)
                .fetch_all(p)
                .await?;
            rows.iter().map(decode).collect::<Result<Vec<_>>>()?
        });
        if ops.len() > MAX_EXIT_OPERATIONS {
            return Err(StoreError::Invalid(format!(
                "{token}: more than {MAX_EXIT_OPERATIONS} undelegations and withdrawals in the journal"
            )));
        }
        Ok(ops)
    }

    /// Operations of one plan in order.
    pub async fn plan_operations(&self, plan_id: &str) -> Result<Vec<Operation>> {
        let sql = format!("SELECT {COLS} FROM operations WHERE plan_id = $1 ORDER BY seq");
        on_pool!(self, |p| {
            let rows = sqlx::query(&sql).bind(plan_id).fetch_all(p).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Stake moved in `epoch` (operations not failed whose kind moves stake, see
    /// [`OpKind::moves_stake`]; `instant_exit`: the chain's) and operations sent in it.
    pub async fn moved_in_epoch(&self, token: &str, epoch: u64, instant_exit: bool) -> Result<(Amount, u32)> {
        let rows: Vec<(String, Amount)> = on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT kind, amount FROM operations WHERE token = $1 AND epoch = $2 AND state <> 'failed'",
            )
            .bind(token)
            .bind(epoch as i64)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok((r.text("kind")?, r.amount("amount", "operations")?)))
                .collect::<Result<Vec<_>>>()?
        });
        let mut moved = Amount::ZERO;
        for (kind, amount) in &rows {
            if OpKind::parse(kind).is_some_and(|k| k.moves_stake(instant_exit)) {
                moved = moved.checked_add(*amount, "moved this epoch")?;
            }
        }
        Ok((moved, rows.len() as u32))
    }

    /// Per validator: stake our undelegations released (confirmed or reconciled) less what
    /// withdrawals took back (any not failed), base units; validators where that is zero
    /// are left out. For chains that pay matured unbonding back by themselves.
    ///
    /// # Errors
    /// A store error, or an amount column that is not base units.
    pub async fn released_not_withdrawn(&self, token: &str) -> Result<BTreeMap<String, Amount>> {
        let rows: Vec<(String, String, Amount, String)> = on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT kind, validator, amount, state FROM operations WHERE token = $1 AND kind IN ('undelegate', 'withdraw') AND state <> 'failed'",
            )
            .bind(token)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.text("kind")?,
                        r.text("validator")?,
                        r.amount("amount", "operations")?,
                        r.text("state")?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?
        });
        let mut released: BTreeMap<String, (Amount, Amount)> = BTreeMap::new();
        for (kind, validator, amount, state) in rows {
            let e = released.entry(validator).or_default();
            if kind == "withdraw" {
                e.1 = e.1.checked_add(amount, "withdrawn")?;
            } else if state == "confirmed" || state == "reconciled" {
                e.0 = e.0.checked_add(amount, "released")?;
            }
        }
        Ok(released
            .into_iter()
            .filter_map(|(v, (r, w))| r.checked_sub(w, "").ok().filter(|a| !a.is_zero()).map(|a| (v, a)))
            .collect())
    }

    /// `intent|submitted → submitted` with a (new) signed transaction, persisted before
    /// the transaction is sent: a compare-and-set from `expect` (the row as read before
    /// signing), so of two writers that signed from the same row only one records its
    /// transaction, and only that one may broadcast.
    ///
    /// # Errors
    /// [`StoreError::Journal`] when the row is no longer at `expect` or `expect` is not
    /// open; [`StoreError::Fenced`] on a stale lease.
    pub async fn mark_submitted(
        &self,
        key: &str,
        expect: Expect,
        tx_id: &str,
        payload: &str,
        valid_until: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let n = match expect.state.is_open() {
            false => 0,
            true => on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE operations SET state = 'submitted', tx_id = $1, payload = $2, valid_until = $3, attempts = attempts + 1, updated_at = $4 \
                     WHERE idempotency_key = $5 AND state = $6 AND attempts = $7",
                )
                .bind(tx_id)
                .bind(payload)
                .bind(valid_until.map(|t| t.0))
                .bind(now.0)
                .bind(key)
                .bind(expect.state.as_str())
                .bind(i64::from(expect.attempts))
                .execute(&mut *c)
                .await?
                .rows_affected()
            }),
        };
        if n != 1 {
            return Err(refused(&mut tx, key, expect, OperationState::Submitted).await?);
        }
        log(
            &mut tx,
            key,
            Some(expect.state),
            OperationState::Submitted,
            Some(tx_id),
            "signed; about to broadcast",
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `submitted → confirmed`, with the ledger entries of its effect, atomically: a
    /// compare-and-set from `expect` (submitted, at the attempt whose transaction the
    /// chain confirmed).
    ///
    /// # Errors
    /// [`StoreError::Journal`] when the row is no longer at `expect`;
    /// [`StoreError::Fenced`] on a stale lease.
    pub async fn mark_confirmed(&self, key: &str, expect: Expect, entries: &[Entry], now: Timestamp) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let n = match expect.state {
            OperationState::Submitted => on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE operations SET state = 'confirmed', error = NULL, updated_at = $1 \
                     WHERE idempotency_key = $2 AND state = 'submitted' AND attempts = $3",
                )
                .bind(now.0)
                .bind(key)
                .bind(i64::from(expect.attempts))
                .execute(&mut *c)
                .await?
                .rows_affected()
            }),
            _ => 0,
        };
        if n != 1 {
            return Err(refused(&mut tx, key, expect, OperationState::Confirmed).await?);
        }
        insert_entries(&mut tx, entries, now).await?;
        log(
            &mut tx,
            key,
            Some(OperationState::Submitted),
            OperationState::Confirmed,
            None,
            "finalized on chain",
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `intent|submitted → failed` with the reason: a compare-and-set from `expect`.
    ///
    /// # Errors
    /// [`StoreError::Journal`] when the row is no longer at `expect` or `expect` is not
    /// open; [`StoreError::Fenced`] on a stale lease.
    pub async fn mark_failed(&self, key: &str, expect: Expect, reason: &str, now: Timestamp) -> Result<()> {
        let mut tx = self.write_tx().await?;
        let n = match expect.state.is_open() {
            false => 0,
            true => on_tx!(&mut tx, |c| {
                sqlx::query(
                    "UPDATE operations SET state = 'failed', error = $1, updated_at = $2 \
                     WHERE idempotency_key = $3 AND state = $4 AND attempts = $5",
                )
                .bind(reason)
                .bind(now.0)
                .bind(key)
                .bind(expect.state.as_str())
                .bind(i64::from(expect.attempts))
                .execute(&mut *c)
                .await?
                .rows_affected()
            }),
        };
        if n != 1 {
            return Err(refused(&mut tx, key, expect, OperationState::Failed).await?);
        }
        log(
            &mut tx,
            key,
            Some(expect.state),
            OperationState::Failed,
            None,
            reason,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// `confirmed → reconciled` for every confirmed operation of `token` (after a
    /// reconciliation with no drift). Returns how many.
    pub async fn mark_reconciled(&self, token: &str, now: Timestamp) -> Result<u64> {
        // none confirmed (the usual case): no write transaction
        let confirmed: i64 = on_pool!(self, |p| sqlx::query(
            "SELECT COUNT(*) AS n FROM operations WHERE token = $1 AND state = 'confirmed'"
        )
        .bind(token)
        .fetch_one(p)
        .await?
        .int("n")?);
        if confirmed == 0 {
            return Ok(0);
        }
        let mut tx = self.write_tx().await?;
        let keys: Vec<String> = on_tx!(&mut tx, |c| sqlx::query(
            "SELECT idempotency_key FROM operations WHERE token = $1 AND state = 'confirmed'"
        )
        .bind(token)
        .fetch_all(&mut *c)
        .await?
        .iter()
        .map(|r| r.text("idempotency_key"))
        .collect::<Result<_>>()?);
        for k in &keys {
            on_tx!(&mut tx, |c| {
                sqlx::query(
                "UPDATE operations SET state = 'reconciled', updated_at = $1 WHERE idempotency_key = $2 AND state = 'confirmed'"
            )
            .bind(now.0)
            .bind(k)
            .execute(&mut *c)
            .await?
            .rows_affected()
            });
            log(
                &mut tx,
                k,
                Some(OperationState::Confirmed),
                OperationState::Reconciled,
                None,
                "positions match the ledger",
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(keys.len() as u64)
    }

    /// The transition log of an operation: `(at, from, to, tx_id, detail)`.
    pub async fn operation_log(
        &self,
        key: &str,
    ) -> Result<Vec<(Timestamp, Option<String>, String, Option<String>, String)>> {
        on_pool!(self, |p| {
            let rows = sqlx::query(
                "SELECT at, from_state, to_state, tx_id, detail FROM operation_log WHERE idempotency_key = $1 ORDER BY at",
            )
            .bind(key)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.ts("at")?,
                        r.opt_text("from_state")?,
                        r.text("to_state")?,
                        r.opt_text("tx_id")?,
                        r.text("detail")?,
                    ))
                })
                .collect()
        })
    }
}
