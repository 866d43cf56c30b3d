//! The day close: TWAB per account, eligibility, Σe, in one transaction under the token's
//! day lock, as a merge of sorted streams.
//!
//! ```text
//!  openings  daily_balances(day − 1).closing, by account ──┐  (reader connections,
//!  events    of the day, by (account, ts) ──────────────────┼─  after the lock is taken;
//!  accounts  by id, in pages that skip gaps ────────────────┘   a closed day never changes)
//!        ▼ merge by account id: one TwabAccumulator at a time
//!  eligible_for_day ─▶ daily rows in id order, in chunks (PostgreSQL: COPY FREEZE into a
//!  new leaf, keyed and attached at the end) ─▶ closed_days
//! ```
//!
//! Memory is a few chunks, whatever the number of accounts or events. The closing balance
//! of each account is a column of its daily row, so the next day opens from that day's
//! rows: nothing is rewritten per account (the first close of a token opens from every
//! earlier event instead). The events are read on a connection of their own after this
//! transaction holds the token's day lock: an ingest committed before it is seen, one
//! after it waits for the lock and is then refused. Days close in order per token; closing
//! a closed day again is a no-op that returns the first result.

use std::collections::VecDeque;
use std::time::Instant;

use futures_util::TryStreamExt;
use tokio::sync::mpsc;
use tracing::{debug, info};

use softstake_core::eligibility::{eligible_for_day, Account};
use softstake_core::twab::{apply_error, TwabAccumulator};
use softstake_core::{Amount, Day, Timestamp, TokenConfig, TokenRegistry};

use crate::accounts::accounts_from_pool;
use crate::balances::{check_close_order, closed_record, last_closed, CloseOutcome};
use crate::db::{insert_rows, on_tx, DbAmount, Pool, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::pg::{self, copy_in, field, literal};
use crate::Store;

/// Rows written per chunk, rows read per batch and accounts read per page.
const CHUNK: usize = 20_000;

/// Nanoseconds in a day (SQLite keeps each event's day number).
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

impl Store {
    /// Closes `day` for `token`: TWAB per account, eligibility, Σe; stores the daily rows
    /// (with each account's closing balance) and the closed-day record in one transaction
    /// under the token's day lock.
    ///
    /// `max_accounts` bounds the accounts of one close (a runaway feed fails loudly).
    /// Idempotent: a closed day is returned as it was with `already_closed = true`.
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
            debug!(token = %token, day = %day, elapsed_ms = started.elapsed().as_millis() as u64, "leaves vacuumed");
        }
        let mut tx = self.write_tx().await?;
        Store::lock_token_days(&mut tx, token).await?;
        if let Some(done) = closed_record(&mut tx, token, day).await? {
            return Ok(done);
        }
        let last = last_closed(&mut tx, token).await?;
        check_close_order(token, day, last)?;
        let mut openings = Reader::openings(&self.pool, token, last);
        let mut events = Reader::events(&self.pool, token, last.is_none(), day);
        let mut w = DailyWriter::new(token, day);
        if let Tx::Postgres(t) = &mut tx {
            // The day's rows go to a new leaf, unindexed, keyed and attached at the end.
            let leaf: String = sqlx::query_scalar("SELECT softstake_daily_leaf_table($1, $2)")
                .bind(day.to_string())
                .bind(token)
                .fetch_one(&mut **t)
                .await?;
            w.leaf = Some(leaf);
        }
        let n = merge(
            &mut tx,
            &self.pool,
            registry,
            cfg,
            &mut openings,
            &mut events,
            &mut w,
            max_accounts,
        )
        .await?;
        w.flush(&mut tx).await?;
        openings.finish().await?;
        events.finish().await?;
        debug!(token = %token, day = %day, events = n, elapsed_ms = started.elapsed().as_millis() as u64, "daily rows written");
        if let Tx::Postgres(t) = &mut tx {
            sqlx::query("SELECT softstake_daily_leaf_attach($1, $2)")
                .bind(day.to_string())
                .bind(token)
                .execute(&mut **t)
                .await?;
        }
        self.pauses.hold(crate::PausePoint::CloseStreamed).await;
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
            token = %token, day = %day, events = n, accounts = out.accounts, eligible_accounts = out.eligible_accounts,
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
        // Leaves whose pages are not all known all-visible (relallvisible as of the last
        // VACUUM or ANALYZE; a bulk load analyzes its frozen leaves).
        let leaves: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid \
             WHERE c.relkind = 'r' AND (c.relallvisible < c.relpages OR c.relpages = 0) \
             AND (c.relname::text = softstake_event_leaf_name($1, $2) \
                  OR ($3 AND c.relname::text ~ ('^balance_events_[0-9]{8}_' || lower($2) || '$') \
                      AND c.relname::text <= softstake_event_leaf_name($1, $2)))",
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

/// Merges the openings and the events by account, one accumulator at a time, and writes
/// each account's daily row; returns the events read.
#[allow(clippy::too_many_arguments)]
async fn merge(
    tx: &mut Tx,
    pool: &Pool,
    registry: &TokenRegistry,
    cfg: &TokenConfig,
    openings: &mut Reader<(String, u128)>,
    events: &mut Reader<(String, i64, u128)>,
    w: &mut DailyWriter,
    max_accounts: usize,
) -> Result<u64> {
    let mut accounts = AccountCursor::default();
    let (mut n, mut seen) = (0u64, 0usize);
    let mut prev: Option<String> = None;
    loop {
        let next = match (openings.peek().await?, events.peek().await?) {
            (None, None) => break,
            (Some(o), None) => o.0.clone(),
            (None, Some(e)) => e.0.clone(),
            (Some(o), Some(e)) => std::cmp::min_by(&o.0, &e.0, |a, b| a.as_bytes().cmp(b.as_bytes())).clone(),
        };
        if prev.as_ref().is_some_and(|p| p.as_bytes() >= next.as_bytes()) {
            return Err(StoreError::corrupt(
                "balance_events",
                format!("account {next:?} out of order"),
            ));
        }
        seen += 1;
        if seen > max_accounts {
            return Err(StoreError::Invalid(format!(
                "the close of {} {} passes the bound of {max_accounts} accounts (max_accounts_per_close)",
                w.token, w.day
            )));
        }
        let opening = match openings.peek().await? {
            Some(o) if o.0 == next => openings.pop().map(|o| o.1).unwrap_or(0),
            _ => 0,
        };
        let mut acc = TwabAccumulator::open(w.day, Amount(opening));
        while let Some(e) = events.peek().await? {
            if e.0 != next {
                break;
            }
            let Some((id, ts, bal)) = events.pop() else { break };
            acc.apply(Timestamp(ts), Amount(bal))
                .map_err(|err| apply_error(&id, &w.token, Timestamp(ts), Amount(bal), err))?;
            n += 1;
        }
        let (average, closing) = acc.finish();
        if !(average.is_zero() && closing.is_zero()) {
            let account = accounts.get(pool, &next).await?;
            let eligible = eligible_for_day(account.as_ref(), w.day, average, cfg, registry);
            w.push(&next, average, eligible, closing)?;
            if w.rows.len() >= CHUNK {
                w.flush(tx).await?;
            }
        }
        prev = Some(next);
    }
    Ok(n)
}

/// Rows of a sorted stream read by a task on a connection of its own, a batch at a time
/// (at most two batches queued).
struct Reader<T> {
    rx: mpsc::Receiver<Result<Vec<T>>>,
    buf: VecDeque<T>,
    done: bool,
    task: tokio::task::JoinHandle<()>,
}

impl<T: Send + 'static> Reader<T> {
    /// Runs `read` on a new task; it sends batches until the stream ends.
    fn spawn<F, Fut>(read: F) -> Reader<T>
    where
        F: FnOnce(mpsc::Sender<Result<Vec<T>>>) -> Fut,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(2);
        let fut = read(tx.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = fut.await {
                let _ = tx.send(Err(e)).await;
            }
        });
        Reader {
            rx,
            buf: VecDeque::new(),
            done: false,
            task,
        }
    }

    async fn fill(&mut self) -> Result<()> {
        while self.buf.is_empty() && !self.done {
            match self.rx.recv().await {
                Some(batch) => self.buf.extend(batch?),
                None => self.done = true,
            }
        }
        Ok(())
    }

    async fn peek(&mut self) -> Result<Option<&T>> {
        self.fill().await?;
        Ok(self.buf.front())
    }

    fn pop(&mut self) -> Option<T> {
        self.buf.pop_front()
    }

    /// Waits for the reader task (it has sent everything).
    async fn finish(self) -> Result<()> {
        drop(self.rx);
        self.task
            .await
            .map_err(|e| StoreError::Invalid(format!("a close reader stopped: {e}")))
    }
}

/// Sends `rows` in batches of [`CHUNK`]; false when the receiver is gone.
async fn send_batches<T, S>(tx: &mpsc::Sender<Result<Vec<T>>>, mut rows: S) -> Result<()>
where
    S: futures_util::Stream<Item = std::result::Result<T, StoreError>> + Unpin,
{
    let mut batch = Vec::with_capacity(CHUNK);
    while let Some(r) = rows.try_next().await? {
        batch.push(r);
        if batch.len() == CHUNK
            && tx
                .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(CHUNK))))
                .await
                .is_err()
        {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        let _ = tx.send(Ok(batch)).await;
    }
    Ok(())
}

impl Reader<(String, u128)> {
    /// `(account, closing)` of the previous closed day's rows with a closing balance.
    fn openings(pool: &Pool, token: &str, prev: Option<Day>) -> Reader<(String, u128)> {
        let (pool, token) = (pool.clone(), token.to_string());
        Reader::spawn(move |tx| async move {
            let Some(prev) = prev else { return Ok(()) };
            match pool {
                Pool::Postgres(p) => {
                    let q = format!(
                        "SELECT account_id, closing FROM daily_balances WHERE token = {} AND day = {} AND closing <> 0 ORDER BY account_id",
                        literal(&token),
                        literal(&prev.to_string())
                    );
                    let parse = |b: &[u8], f: &[Option<std::ops::Range<usize>>]| {
                        let bad = |e: String| StoreError::corrupt("daily_balances", e);
                        Ok((
                            pg::text(field(b, f, 0, "account_id")?).map_err(bad)?.to_string(),
                            pg::numeric_decode(field(b, f, 1, "closing")?).map_err(bad)?,
                        ))
                    };
                    pg::stream_batches(&p, &q, CHUNK, parse, &tx, Ok).await
                }
                Pool::Sqlite(p) => {
                    let mut c = p.acquire().await?;
                    let rows = sqlx::query(
                        "SELECT account_id, closing FROM daily_balances WHERE token = $1 AND day = $2 AND closing <> '0' ORDER BY account_id",
                    )
                    .bind(&token)
                    .bind(prev.to_string())
                    .fetch(&mut *c)
                    .map_err(StoreError::from)
                    .and_then(|r| async move { Ok((r.text("account_id")?, r.amount("closing", "daily_balances")?.0)) });
                    send_batches(&tx, Box::pin(rows)).await
                }
            }
        })
    }
}

impl Reader<(String, i64, u128)> {
    /// `(account, ts, balance)` of the day's events (every earlier one too for a token's
    /// first close), ordered by account then time.
    fn events(pool: &Pool, token: &str, first: bool, day: Day) -> Reader<(String, i64, u128)> {
        let (pool, token) = (pool.clone(), token.to_string());
        Reader::spawn(move |tx| async move {
            match pool {
                Pool::Postgres(p) => {
                    let from = if first { i64::MIN } else { day.start().0 };
                    let q = format!(
                        "SELECT account_id, ts, balance FROM balance_events WHERE token = {} AND ts >= {from} AND ts < {} \
                         ORDER BY account_id, ts",
                        literal(&token),
                        day.end().0
                    );
                    let parse = |b: &[u8], f: &[Option<std::ops::Range<usize>>]| {
                        let bad = |e: String| StoreError::corrupt("balance_events", e);
                        Ok((
                            pg::text(field(b, f, 0, "account_id")?).map_err(bad)?.to_string(),
                            pg::int8(field(b, f, 1, "ts")?).map_err(bad)?,
                            pg::numeric_decode(field(b, f, 2, "balance")?).map_err(bad)?,
                        ))
                    };
                    pg::stream_batches(&p, &q, CHUNK, parse, &tx, Ok).await
                }
                Pool::Sqlite(p) => {
                    let d = day.start().0.div_euclid(NANOS_PER_DAY);
                    let sql = if first {
                        "SELECT account_id, ts, balance FROM balance_events WHERE token = $1 AND day <= $2 ORDER BY account_id, ts"
                    } else {
                        "SELECT account_id, ts, balance FROM balance_events WHERE token = $1 AND day = $2 ORDER BY account_id, ts"
                    };
                    let mut c = p.acquire().await?;
                    let rows = sqlx::query(sql)
                        .bind(&token)
                        .bind(d)
                        .fetch(&mut *c)
                        .map_err(StoreError::from)
                        .and_then(|r| async move {
                            Ok((
                                r.text("account_id")?,
                                r.int("ts")?,
                                r.amount("balance", "balance_events")?.0,
                            ))
                        });
                    send_batches(&tx, Box::pin(rows)).await
                }
            }
        })
    }
}

/// Walks the accounts table in id order alongside the closed accounts, a page at a time
/// on a pooled connection, jumping over stretches of accounts that hold none of the token.
#[derive(Default)]
struct AccountCursor {
    page: VecDeque<Account>,
    exhausted: bool,
}

impl AccountCursor {
    /// The account `id`, if it exists. Ids must be asked in increasing (byte) order.
    async fn get(&mut self, pool: &Pool, id: &str) -> Result<Option<Account>> {
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
            let page = accounts_from_pool(pool, id, CHUNK as i64).await?;
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
    /// PostgreSQL: the standalone leaf the rows are copied into.
    leaf: Option<String>,
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
            leaf: None,
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
                let leaf = self
                    .leaf
                    .as_deref()
                    .ok_or_else(|| StoreError::Invalid("daily leaf not created".into()))?;
                copy_in(
                    t,
                    // FREEZE: the leaf was created in this transaction (all-visible rows).
                    &format!(
                        "COPY \"{}\" (token, day, account_id, average, eligible, closing) FROM STDIN (FORMAT binary, FREEZE)",
                        leaf.replace('"', "\"\"")
                    ),
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
