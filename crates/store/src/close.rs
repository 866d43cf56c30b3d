//! The day close: TWAB per account, eligibility, Σe, in one transaction under the token's
//! day lock.
//!
//! ```text
//!  openings: daily_balances(day − 1).closing ─┐  (stream)
//!  events of the day, in time order ──────────┼─▶ DayCloser (64 bytes + id per account)
//!                                             │
//!  finish: accounts by id ─ merge ─ accounts table (pages by id, skipping gaps)
//!                              └─▶ eligible_for_day ─▶ daily_balances rows in chunks
//!                                  (COPY on PostgreSQL) ─▶ closed_days
//! ```
//!
//! Memory grows with the accounts holding the token, never with events; rows are written
//! in chunks as they are produced. The closing balance of each account is a column of its
//! daily row, so the next day opens from that day's rows: nothing is rewritten per account
//! (the first close of a token opens from every earlier event instead). Days close in
//! order per token; closing a closed day again is a no-op that returns the first result.

use std::collections::VecDeque;
use std::time::Instant;

use futures_util::TryStreamExt;
use tracing::info;

use softstake_core::eligibility::{eligible_for_day, Account};
use softstake_core::twab::{ClosedDay, DayCloser};
use softstake_core::{Amount, Day, Timestamp, TokenConfig, TokenRegistry};

use crate::accounts::accounts_from;
use crate::balances::{check_close_order, closed_record, last_closed, CloseOutcome};
use crate::db::{insert_rows, on_tx, DbAmount, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::pg::{self, copy_in, copy_out, field, literal};
use crate::Store;

/// Rows written per chunk (and accounts read per page).
const CHUNK: usize = 20_000;

impl Store {
    /// Closes `day` for `token`: TWAB per account, eligibility, Σe; stores the daily rows
    /// (with each account's closing balance) and the closed-day record in one transaction
    /// under the token's day lock.
    ///
    /// `max_accounts` bounds the accounts tracked (memory). Idempotent: a closed day is
    /// returned as it was with `already_closed = true`.
    ///
    /// Errors: [`StoreError::DayOrder`] when an earlier day is not closed yet or a later
    /// one already is; unknown token ([`StoreError::Core`]); conflicting events.
    pub async fn close_day(
        &self,
        registry: &TokenRegistry,
        token: &str,
        day: Day,
        now: Timestamp,
        max_accounts: usize,
    ) -> Result<CloseOutcome> {
        let cfg = registry.get(token)?;
        let started = Instant::now();
        if self.closed_day(token, day).await?.is_none() {
            self.vacuum_leaves(token, day).await?;
        }
        let mut tx = self.write_tx().await?;
        Store::lock_token_days(&mut tx, token).await?;
        if let Some(done) = closed_record(&mut tx, token, day).await? {
            return Ok(done);
        }
        let last = last_closed(&mut tx, token).await?;
        check_close_order(token, day, last)?;
        let mut closer = DayCloser::new(day, token, max_accounts);
        let from = match last {
            Some(prev) => {
                load_openings(&mut tx, token, prev, &mut closer).await?;
                day.start().0
            }
            None => i64::MIN,
        };
        let events = stream_events(&mut tx, token, from, day.end().0, &mut closer).await?;
        self.pauses.hold(crate::PausePoint::CloseStreamed).await;
        let closed = closer.finish();
        let mut w = DailyWriter::new(token, day);
        write_days(&mut tx, registry, cfg, &closed, &mut w).await?;
        w.flush(&mut tx).await?;
        let out = w.outcome();
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO closed_days (token, day, closed_at, accounts, eligible_accounts, total_eligible, total_balance) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token)
        .bind(day.to_string())
        .bind(now.0)
        .bind(out.accounts as i64)
        .bind(out.eligible_accounts as i64)
        .bind(DbAmount(out.total_eligible.0))
        .bind(DbAmount(out.total_balance.0))
        .execute(&mut *c)
        .await?
            .rows_affected()
        });
        tx.commit().await?;
        info!(
            token = %token, day = %day, events, accounts = out.accounts, eligible_accounts = out.eligible_accounts,
            total_eligible = %out.total_eligible, elapsed_ms = started.elapsed().as_millis() as u64, "closed day"
        );
        Ok(out)
    }
}

impl Store {
    /// PostgreSQL: vacuums `token`'s leaves of `balance_events` up to `day` (the day's own
    /// for a later close; every earlier one too before the token's first close), so their
    /// pages are all-visible and the close reads them by an index-only scan. Pages already
    /// all-visible (a bulk load copies frozen) are skipped. No-op on SQLite.
    async fn vacuum_leaves(&self, token: &str, day: Day) -> Result<()> {
        let crate::db::Pool::Postgres(p) = &self.pool else {
            return Ok(());
        };
        let first_close = self.last_closed_day(token).await?.is_none();
        let leaves: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid \
             WHERE c.relkind = 'r' AND c.relname::text = ANY(ARRAY[softstake_event_leaf_name($1, $2)]) \
             OR ($3 AND c.relkind = 'r' AND c.relname::text ~ ('^balance_events_[0-9]{8}_' || lower($2) || '$') \
                 AND c.relname::text <= softstake_event_leaf_name($1, $2))",
        )
        .bind(day.start().0)
        .bind(token)
        .bind(first_close)
        .fetch_all(p)
        .await?;
        for leaf in leaves {
            sqlx::query(&format!("VACUUM (ANALYZE) \"{}\"", leaf.replace('"', "\"\"")))
                .execute(p)
                .await?;
        }
        Ok(())
    }
}

/// Opening balances: the closing balances in `prev`'s daily rows.
async fn load_openings(tx: &mut Tx, token: &str, prev: Day, closer: &mut DayCloser) -> Result<()> {
    match tx {
        Tx::Postgres(t) => {
            let q = format!(
                "SELECT account_id, closing FROM daily_balances WHERE token = {} AND day = {} AND closing <> 0",
                literal(token),
                literal(&prev.to_string())
            );
            copy_out(t, &q, |b, f| {
                let id =
                    pg::text(field(b, f, 0, "account_id")?).map_err(|e| StoreError::corrupt("daily_balances", e))?;
                let bal = pg::numeric_decode(field(b, f, 1, "closing")?)
                    .map_err(|e| StoreError::corrupt("daily_balances", format!("closing: {e}")))?;
                closer.set_opening(id, Amount(bal))?;
                Ok(())
            })
            .await?;
        }
        Tx::Sqlite(t) => {
            let mut rows = sqlx::query(
                "SELECT account_id, closing FROM daily_balances WHERE token = $1 AND day = $2 AND closing <> '0'",
            )
            .bind(token)
            .bind(prev.to_string())
            .fetch(&mut **t);
            while let Some(r) = rows.try_next().await? {
                let id = r.text("account_id")?;
                closer.set_opening(&id, r.amount("closing", "daily_balances")?)?;
            }
        }
    }
    Ok(())
}

/// Streams `token`'s events with `from <= ts < to` in time order (ties by account id)
/// into `closer`; returns how many.
async fn stream_events(tx: &mut Tx, token: &str, from: i64, to: i64, closer: &mut DayCloser) -> Result<u64> {
    match tx {
        Tx::Postgres(t) => {
            let q = format!(
                "SELECT account_id, ts, balance FROM balance_events WHERE token = {} AND ts >= {from} AND ts < {to} \
                 ORDER BY ts, account_id",
                literal(token)
            );
            copy_out(t, &q, |b, f| {
                let bad = |e: String| StoreError::corrupt("balance_events", e);
                let id = pg::text(field(b, f, 0, "account_id")?).map_err(bad)?;
                let ts = pg::int8(field(b, f, 1, "ts")?).map_err(bad)?;
                let bal = pg::numeric_decode(field(b, f, 2, "balance")?).map_err(bad)?;
                closer.apply(id, Timestamp(ts), Amount(bal))?;
                Ok(())
            })
            .await
        }
        Tx::Sqlite(t) => {
            let mut rows = sqlx::query(
                "SELECT account_id, ts, balance FROM balance_events WHERE token = $1 AND ts >= $2 AND ts < $3 \
                 ORDER BY ts, account_id",
            )
            .bind(token)
            .bind(from)
            .bind(to)
            .fetch(&mut **t);
            let mut n = 0;
            while let Some(r) = rows.try_next().await? {
                let id = r.text("account_id")?;
                closer.apply(&id, r.ts("ts")?, r.amount("balance", "balance_events")?)?;
                n += 1;
            }
            Ok(n)
        }
    }
}

/// Merges the closed accounts (in id order) with the accounts table and writes the daily
/// rows in chunks.
async fn write_days(
    tx: &mut Tx,
    registry: &TokenRegistry,
    cfg: &TokenConfig,
    closed: &ClosedDay,
    w: &mut DailyWriter,
) -> Result<()> {
    let mut accounts = AccountCursor::default();
    for c in closed.iter() {
        if c.average.is_zero() && c.closing.is_zero() {
            continue;
        }
        let account = accounts.get(tx, c.account_id).await?;
        let eligible = eligible_for_day(account.as_ref(), w.day, c.average, cfg, registry);
        w.push(c.account_id, c.average, eligible, c.closing)?;
        if w.rows.len() >= CHUNK {
            w.flush(tx).await?;
        }
    }
    Ok(())
}

/// Walks the accounts table in id order alongside the closed accounts, a page at a time,
/// jumping over stretches of accounts that hold none of the token.
#[derive(Default)]
struct AccountCursor {
    page: VecDeque<Account>,
    exhausted: bool,
}

impl AccountCursor {
    /// The account `id`, if it exists. Ids must be asked in increasing (byte) order.
    async fn get(&mut self, tx: &mut Tx, id: &str) -> Result<Option<Account>> {
        loop {
            while self
                .page
                .front()
                .is_some_and(|a| a.account_id.as_bytes() < id.as_bytes())
            {
                self.page.pop_front();
            }
            if let Some(front) = self.page.front() {
                return Ok((front.account_id == id).then(|| self.page.pop_front()).flatten());
            }
            if self.exhausted {
                return Ok(None);
            }
            let page = accounts_from(tx, id, CHUNK as i64).await?;
            self.exhausted = page.len() < CHUNK;
            if page.is_empty() {
                return Ok(None);
            }
            self.page = page.into();
        }
    }
}

/// Buffers daily rows and writes them in chunks; keeps the day's totals.
struct DailyWriter {
    token: String,
    day: Day,
    rows: Vec<(String, Amount, Amount, Amount)>,
    last_id: Option<String>,
    accounts: u64,
    eligible_accounts: u64,
    total_eligible: Amount,
    total_balance: Amount,
}

impl DailyWriter {
    fn new(token: &str, day: Day) -> DailyWriter {
        DailyWriter {
            token: token.to_string(),
            day,
            rows: Vec::with_capacity(CHUNK),
            last_id: None,
            accounts: 0,
            eligible_accounts: 0,
            total_eligible: Amount::ZERO,
            total_balance: Amount::ZERO,
        }
    }

    /// Adds one account's row; ids must strictly increase (asserted: the rows are
    /// appended to the index in order and payouts rely on it).
    fn push(&mut self, id: &str, average: Amount, eligible: Amount, closing: Amount) -> Result<()> {
        if self
            .rows
            .last()
            .map(|r| r.0.as_str())
            .or(self.last_id.as_deref())
            .is_some_and(|p| p.as_bytes() >= id.as_bytes())
        {
            return Err(StoreError::corrupt(
                "daily_balances",
                format!("account {id:?} out of order"),
            ));
        }
        self.total_eligible = self.total_eligible.checked_add(eligible, "Σ eligible")?;
        self.total_balance = self.total_balance.checked_add(closing, "Σ closing balances")?;
        self.accounts += 1;
        self.eligible_accounts += u64::from(!eligible.is_zero());
        self.rows.push((id.to_string(), average, eligible, closing));
        Ok(())
    }

    async fn flush(&mut self, tx: &mut Tx) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let day = self.day.to_string();
        match tx {
            Tx::Postgres(t) => {
                copy_in(
                    t,
                    "COPY daily_balances (token, day, account_id, average, eligible, closing) FROM STDIN (FORMAT binary)",
                    6,
                    &self.rows,
                    |w, r| {
                        w.text(&self.token);
                        w.text(&day);
                        w.text(&r.0);
                        w.numeric(r.1 .0);
                        w.numeric(r.2 .0);
                        w.numeric(r.3 .0);
                    },
                )
                .await?;
            }
            Tx::Sqlite(_) => {
                let rows: Vec<Vec<Val>> = self
                    .rows
                    .iter()
                    .map(|r| {
                        vec![
                            Val::T(self.token.clone()),
                            Val::T(day.clone()),
                            Val::T(r.0.clone()),
                            Val::A(r.1),
                            Val::A(r.2),
                            Val::A(r.3),
                        ]
                    })
                    .collect();
                insert_rows(
                    tx,
                    "INSERT INTO daily_balances (token, day, account_id, average, eligible, closing)",
                    "",
                    6,
                    &rows,
                )
                .await?;
            }
        }
        self.last_id = self.rows.pop().map(|r| r.0);
        self.rows.clear();
        Ok(())
    }

    fn outcome(&self) -> CloseOutcome {
        CloseOutcome {
            token: self.token.clone(),
            day: self.day,
            accounts: self.accounts,
            eligible_accounts: self.eligible_accounts,
            total_eligible: self.total_eligible,
            total_balance: self.total_balance,
            already_closed: false,
        }
    }
}
