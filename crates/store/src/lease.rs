//! Leader leases with fencing tokens, one per token.
//!
//! The design is the fencing token of M. Kleppmann, "How to do distributed locking"
//! (2016, martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html): a lease
//! alone cannot stop a leader that was paused (GC, SIGSTOP, a VM migration) past its
//! expiry from writing after a successor took over, so every write carries the
//! generation of the lease its writer holds, and the store refuses a write whose
//! generation is no longer the current one.
//!
//! ```text
//!  take:   SELECT … FOR UPDATE ─▶ free or expired ─▶ generation + 1, holder, expiry
//!  renew:  UPDATE expiry WHERE holder AND generation      (0 rows: the lease was lost)
//!  write:  BEGIN ─▶ SELECT generation … FOR KEY SHARE ─▶ ≠ mine ─▶ StoreError::Fenced
//!                                                        = mine ─▶ the write ─▶ COMMIT
//! ```
//!
//! On PostgreSQL the fence check takes `FOR KEY SHARE` on the lease row, which conflicts
//! with the `FOR UPDATE` of a take-over and not with a renewal: a take-over waits for the
//! fenced transactions in flight and every later one sees the new generation, while the
//! leader renews its lease during its own long writes (a day close) without waiting on
//! itself. SQLite serializes every writer (`BEGIN IMMEDIATE`), so a read in the write
//! transaction is enough there.
//!
//! Expiry times are the holders' wall clock in Unix milliseconds. They only decide when
//! a standby may take over (liveness); safety does not depend on clocks.

use crate::db::{on_tx, RowExt, Tx};
use crate::error::{Result, StoreError};
use crate::Store;

/// The lease a [`Store`] handle writes under: its token and generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// Token symbol.
    pub token: String,
    /// Generation of the lease the writer holds.
    pub generation: i64,
}

/// A token's lease row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Token symbol.
    pub token: String,
    /// Current generation (grows by one at each take-over).
    pub generation: i64,
    /// Who holds (or last held) it.
    pub holder: Option<String>,
    /// When the current generation was taken, Unix milliseconds.
    pub acquired_at_ms: i64,
    /// When it lapses unless renewed, Unix milliseconds (0: released).
    pub expires_at_ms: i64,
}

impl LeaseRecord {
    /// True when a holder other than `holder` may still act under it at `now_ms`.
    pub fn held_by_other(&self, holder: &str, now_ms: i64) -> bool {
        self.expires_at_ms > now_ms && self.holder.as_deref().is_some_and(|h| h != holder)
    }
}

/// What [`Store::take_lease`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseTake {
    /// The caller now holds a new generation.
    Taken {
        /// The new generation.
        generation: i64,
    },
    /// Another holder's lease has not expired.
    HeldBy(LeaseRecord),
}

/// Longest a lease statement may run or wait for a lock on PostgreSQL: a lease call
/// that cannot finish in this time fails and is retried on the next tick.
const LEASE_STATEMENT_TIMEOUT: &str = "5s";

const LEASE_COLS: &str = "token, generation, holder, acquired_at_ms, expires_at_ms";

fn decode<R: RowExt>(r: &R) -> Result<LeaseRecord> {
    Ok(LeaseRecord {
        token: r.text("token")?,
        generation: r.int("generation")?,
        holder: r.opt_text("holder")?,
        acquired_at_ms: r.int("acquired_at_ms")?,
        expires_at_ms: r.int("expires_at_ms")?,
    })
}

/// Refuses the transaction when `fence` is not the token's current generation. In a
/// write transaction on PostgreSQL (`lock`) the lease row is held `FOR KEY SHARE` until
/// the transaction ends, so a take-over waits for it.
pub(crate) async fn check_fence(tx: &mut Tx, fence: &Fence, lock: bool) -> Result<()> {
    let sql = match tx {
        Tx::Postgres(_) if lock => "SELECT generation, holder FROM leases WHERE token = $1 FOR KEY SHARE",
        _ => "SELECT generation, holder FROM leases WHERE token = $1",
    };
    let row = on_tx!(tx, |c| {
        sqlx::query(sql)
            .bind(&fence.token)
            .fetch_optional(&mut *c)
            .await?
            .map(|r| Ok::<_, StoreError>((r.int("generation")?, r.opt_text("holder")?)))
            .transpose()?
    });
    let (current, holder) = row.unwrap_or((0, None));
    if current != fence.generation {
        return Err(StoreError::Fenced {
            token: fence.token.as_str().into(),
            generation: fence.generation,
            current,
            holder: holder.unwrap_or_else(|| "nobody".into()).into(),
        });
    }
    Ok(())
}

impl Store {
    /// A handle on the same database whose every write for `token` is fenced by
    /// `generation`: each write transaction first checks, in the transaction, that the
    /// token's lease is still at `generation`, and fails with [`StoreError::Fenced`]
    /// otherwise, changing nothing.
    pub fn fenced(&self, token: &str, generation: i64) -> Store {
        let mut s = self.clone();
        s.fence = Some(std::sync::Arc::new(Fence {
            token: token.to_string(),
            generation,
        }));
        s
    }

    /// The fence this handle writes under, if any.
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_deref()
    }

    /// Checks, without writing, that this handle's fence is still current (before a side
    /// effect outside the database, e.g. broadcasting a transaction). Unfenced handles
    /// pass.
    ///
    /// # Errors
    /// [`StoreError::Fenced`] when another instance took the lease; [`StoreError::Db`].
    pub async fn check_fence(&self) -> Result<()> {
        let Some(f) = self.fence.as_deref() else {
            return Ok(());
        };
        let mut tx = self.read_tx().await?;
        check_fence(&mut tx, f, false).await
    }

    /// Takes `token`'s lease for `holder` until `now_ms + ttl_ms` when it is free, expired,
    /// or already `holder`'s: the generation grows by one either way, so writes under an
    /// earlier generation (this holder's included) are refused from here on. A lease that
    /// another holder keeps renewing is left alone ([`LeaseTake::HeldBy`]).
    ///
    /// On PostgreSQL the row is locked `FOR UPDATE`, so the take-over waits for fenced
    /// writes in flight (bounded by a 5 s lock and statement timeout).
    ///
    /// # Errors
    /// [`StoreError::Db`] (including the timeout); [`StoreError::ReadOnly`].
    pub async fn take_lease(&self, token: &str, holder: &str, ttl_ms: i64, now_ms: i64) -> Result<LeaseTake> {
        let mut tx = self.lease_tx().await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO leases (token, generation, holder, acquired_at_ms, expires_at_ms) VALUES ($1, 0, NULL, 0, 0) \
             ON CONFLICT (token) DO NOTHING"
        )
        .bind(token)
        .execute(&mut *c)
        .await?
        .rows_affected());
        let lock = match &tx {
            Tx::Postgres(_) => " FOR UPDATE",
            Tx::Sqlite(_) => "",
        };
        let sql = format!("SELECT {LEASE_COLS} FROM leases WHERE token = $1{lock}");
        let cur = on_tx!(&mut tx, |c| decode(
            &sqlx::query(&sql).bind(token).fetch_one(&mut *c).await?
        )?);
        if cur.held_by_other(holder, now_ms) {
            return Ok(LeaseTake::HeldBy(cur));
        }
        let generation = cur
            .generation
            .checked_add(1)
            .ok_or_else(|| StoreError::corrupt("leases", format!("{token}: generation at its maximum")))?;
        let expires = now_ms.saturating_add(ttl_ms);
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE leases SET generation = $1, holder = $2, acquired_at_ms = $3, expires_at_ms = $4 WHERE token = $5"
        )
        .bind(generation)
        .bind(holder)
        .bind(now_ms)
        .bind(expires)
        .bind(token)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(LeaseTake::Taken { generation })
    }

    /// Extends `holder`'s lease of `token` at `generation` to `now_ms + ttl_ms`. Returns
    /// false when the lease is no longer this holder's generation (it was taken over):
    /// the caller must stop acting for the token.
    ///
    /// # Errors
    /// [`StoreError::Db`] (including the 5 s timeout on PostgreSQL).
    pub async fn renew_lease(
        &self,
        token: &str,
        holder: &str,
        generation: i64,
        ttl_ms: i64,
        now_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.lease_tx().await?;
        let n = on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE leases SET expires_at_ms = $1 WHERE token = $2 AND holder = $3 AND generation = $4"
        )
        .bind(now_ms.saturating_add(ttl_ms))
        .bind(token)
        .bind(holder)
        .bind(generation)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Gives up `holder`'s lease of `token` at `generation` (its expiry becomes 0, so a
    /// standby takes it at once). A lease already taken over is left alone.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub async fn release_lease(&self, token: &str, holder: &str, generation: i64) -> Result<()> {
        let mut tx = self.lease_tx().await?;
        on_tx!(&mut tx, |c| sqlx::query(
            "UPDATE leases SET expires_at_ms = 0 WHERE token = $1 AND holder = $2 AND generation = $3"
        )
        .bind(token)
        .bind(holder)
        .bind(generation)
        .execute(&mut *c)
        .await?
        .rows_affected());
        tx.commit().await?;
        Ok(())
    }

    /// Every token's lease row, by token.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub async fn leases(&self) -> Result<Vec<LeaseRecord>> {
        let sql = format!("SELECT {LEASE_COLS} FROM leases ORDER BY token");
        let mut tx = self.read_tx().await?;
        on_tx!(&mut tx, |c| {
            let rows = sqlx::query(&sql).fetch_all(&mut *c).await?;
            rows.iter().map(decode).collect()
        })
    }
}

impl Store {
    /// A write transaction for a lease call: unfenced (the lease calls move the fence),
    /// bounded on PostgreSQL in lock wait and statement time.
    async fn lease_tx(&self) -> Result<Tx> {
        let mut tx = self.unfenced_write_tx().await?;
        if let Tx::Postgres(t) = &mut tx {
            for setting in ["lock_timeout", "statement_timeout"] {
                sqlx::query(&format!("SET LOCAL {setting} = '{LEASE_STATEMENT_TIMEOUT}'"))
                    .execute(&mut **t)
                    .await?;
            }
        }
        Ok(tx)
    }
}
