//! Retention of the balance feed: closed days' events are exported and dropped.
//!
//! ```text
//!  archivable_days(before) ─▶ each day with events, every token in it closed
//!  archive_day(day, sink)  ─▶ stream the day's events (token, ts, account order) to the
//!                             sink ─▶ sink.finish (file durable) ─▶ drop them
//!                             (DROP the day's partition on PostgreSQL, DELETE on SQLite)
//!                             and their feed ids ─▶ archived_days record ─▶ commit
//! ```
//!
//! A closed day never changes and the next day opens from its daily rows, so its events
//! are needed only for audits (the stateless replay reads the exported files). An error
//! anywhere, the sink's included, drops nothing.

use futures_util::TryStreamExt;

use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp};

use crate::balances::last_closed;
use crate::db::{on_tx, Pool, RowExt, Tx};
use crate::error::{Result, StoreError};
use crate::pg::{self, copy_out, field};
use crate::Store;

/// One day with events before the cutoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDay {
    /// The UTC day.
    pub day: Day,
    /// Events stored for it.
    pub events: u64,
    /// Tokens with events on it (each closed through the day).
    pub tokens: Vec<String>,
}

/// What an archive run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArchiveReport {
    /// Days exported (and dropped unless kept).
    pub days: Vec<ArchiveDay>,
}

/// Where archived events go (a file, in the CLI). Called in `(token, ts, account)` order;
/// `finish` must make the output durable before the events are dropped.
pub trait ArchiveSink {
    /// One event.
    fn event(&mut self, e: &BalanceEvent) -> std::io::Result<()>;
    /// All events were given (`events` of them): flush, sync and publish the output.
    fn finish(&mut self, events: u64) -> std::io::Result<()>;
}

const NANOS_PER_DAY: i64 = 86_400_000_000_000;

impl Store {
    /// The days before `before` that hold events, each with its tokens and count, oldest
    /// first.
    ///
    /// Errors: [`StoreError::Invalid`] naming the first day with events of a token not
    /// closed through that day (archiving it would lose them).
    pub async fn archivable_days(&self, before: Day) -> Result<Vec<ArchiveDay>> {
        let mut tx = self.read_tx().await?;
        let counts = day_token_counts(&mut tx, before).await?;
        let mut out: Vec<ArchiveDay> = Vec::new();
        for (day, token, n) in counts {
            let closed = last_closed(&mut tx, &token).await?;
            if closed.is_none_or(|c| c < day) {
                return Err(StoreError::Invalid(format!(
                    "cannot archive {day}: {token} has {n} events on it but is closed only through {}; close it first",
                    closed.map(|c| c.to_string()).unwrap_or_else(|| "no day".into())
                )));
            }
            match out.last_mut() {
                Some(d) if d.day == day => {
                    d.events += n;
                    d.tokens.push(token);
                }
                _ => out.push(ArchiveDay {
                    day,
                    events: n,
                    tokens: vec![token],
                }),
            }
        }
        Ok(out)
    }

    /// Streams `day`'s events to `sink`, then (unless `keep`) drops them and their feed
    /// ids and records the day as archived, in one transaction. Returns the events given.
    ///
    /// Errors: the sink's ([`StoreError::Io`]); [`StoreError::Invalid`] when a token with
    /// events on the day is not closed through it (checked again under the token locks).
    pub async fn archive_day(&self, day: Day, keep: bool, sink: &mut dyn ArchiveSink, now: Timestamp) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        let tokens: Vec<String> = day_token_counts_of(&mut tx, day)
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        for t in &tokens {
            Store::lock_token_days(&mut tx, t).await?;
            if last_closed(&mut tx, t).await?.is_none_or(|c| c < day) {
                return Err(StoreError::Invalid(format!(
                    "cannot archive {day}: {t} is not closed through it"
                )));
            }
        }
        let io = |e: std::io::Error| StoreError::Io {
            path: format!("archive of {day}"),
            source: e,
        };
        let n = stream_day(&mut tx, day, &mut |e| sink.event(e).map_err(io)).await?;
        sink.finish(n).map_err(io)?;
        if keep {
            return Ok(n);
        }
        drop_day(&mut tx, day, &tokens).await?;
        on_tx!(&mut tx, |c| {
            sqlx::query(
            "INSERT INTO archived_days (day, events, archived_at) VALUES ($1, $2, $3) \
             ON CONFLICT (day) DO UPDATE SET events = archived_days.events + excluded.events, archived_at = excluded.archived_at"
        )
        .bind(day.to_string())
        .bind(n as i64)
        .bind(now.0)
        .execute(&mut *c)
        .await?
            .rows_affected()
        });
        tx.commit().await?;
        Ok(n)
    }
}

/// `(day, token, events)` for every day before `before` with events, by day then token.
async fn day_token_counts(tx: &mut Tx, before: Day) -> Result<Vec<(Day, String, u64)>> {
    let days: Vec<Day> = match tx {
        Tx::Postgres(t) => {
            // One partition per day: read the catalogue instead of scanning the events.
            let rows = sqlx::query(
                "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = 'balance_events'::regclass ORDER BY c.relname",
            )
            .fetch_all(&mut **t)
            .await?;
            let mut days = Vec::new();
            for r in &rows {
                let name = r.text("name")?;
                let ymd = name.trim_start_matches("balance_events_");
                let d = (ymd.len() == 8)
                    .then(|| Day::parse(&format!("{}-{}-{}", &ymd[..4], &ymd[4..6], &ymd[6..])).ok())
                    .flatten()
                    .ok_or_else(|| StoreError::corrupt("balance_events", format!("partition {name:?}")))?;
                if d < before {
                    days.push(d);
                }
            }
            days
        }
        Tx::Sqlite(t) => {
            let rows = sqlx::query(
                "SELECT DISTINCT (ts - ((ts % $1) + $1) % $1) AS d FROM balance_events WHERE ts < $2 ORDER BY d",
            )
            .bind(NANOS_PER_DAY)
            .bind(before.start().0)
            .fetch_all(&mut **t)
            .await?;
            rows.iter()
                .map(|r| Ok(Timestamp(r.int("d")?).day()))
                .collect::<Result<Vec<_>>>()?
        }
    };
    let mut out = Vec::new();
    for d in days {
        for (token, n) in day_token_counts_of(tx, d).await? {
            out.push((d, token, n));
        }
    }
    Ok(out)
}

/// `(token, events)` of one day.
async fn day_token_counts_of(tx: &mut Tx, day: Day) -> Result<Vec<(String, u64)>> {
    on_tx!(tx, |c| {
        let rows = sqlx::query(
            "SELECT token, COUNT(*) AS n FROM balance_events WHERE ts >= $1 AND ts < $2 GROUP BY token ORDER BY token",
        )
        .bind(day.start().0)
        .bind(day.end().0)
        .fetch_all(&mut *c)
        .await?;
        rows.iter()
            .map(|r| Ok((r.text("token")?, r.count("n", "balance_events")?)))
            .collect()
    })
}

/// Streams the day's events in `(token, ts, account)` order.
async fn stream_day(tx: &mut Tx, day: Day, f: &mut dyn FnMut(&BalanceEvent) -> Result<()>) -> Result<u64> {
    let (from, to) = (day.start().0, day.end().0);
    match tx {
        Tx::Postgres(t) => {
            let q = format!(
                "SELECT token, ts, account_id, balance FROM balance_events WHERE ts >= {from} AND ts < {to} \
                 ORDER BY token, ts, account_id"
            );
            copy_out(t, &q, |b, fl| {
                let bad = |e: String| StoreError::corrupt("balance_events", e);
                let e = BalanceEvent {
                    token: pg::text(field(b, fl, 0, "token")?).map_err(bad)?.to_string(),
                    ts: Timestamp(pg::int8(field(b, fl, 1, "ts")?).map_err(bad)?),
                    account_id: pg::text(field(b, fl, 2, "account_id")?).map_err(bad)?.to_string(),
                    balance: Amount(pg::numeric_decode(field(b, fl, 3, "balance")?).map_err(bad)?),
                };
                f(&e)
            })
            .await
        }
        Tx::Sqlite(t) => {
            let mut rows = sqlx::query(
                "SELECT token, ts, account_id, balance FROM balance_events WHERE ts >= $1 AND ts < $2 \
                 ORDER BY token, ts, account_id",
            )
            .bind(from)
            .bind(to)
            .fetch(&mut **t);
            let mut n = 0;
            while let Some(r) = rows.try_next().await? {
                f(&BalanceEvent {
                    token: r.text("token")?,
                    ts: r.ts("ts")?,
                    account_id: r.text("account_id")?,
                    balance: r.amount("balance", "balance_events")?,
                })?;
                n += 1;
            }
            Ok(n)
        }
    }
}

/// Removes the day's events and feed ids.
async fn drop_day(tx: &mut Tx, day: Day, tokens: &[String]) -> Result<()> {
    let (from, to) = (day.start().0, day.end().0);
    match tx {
        Tx::Postgres(t) => {
            // DROP takes an exclusive lock on the parent for a moment: wait at most 30 s for
            // running statements rather than queueing everything behind it indefinitely.
            sqlx::query("SET LOCAL lock_timeout = '30s'").execute(&mut **t).await?;
            let name = sqlx::query("SELECT to_regclass($1)::text AS name")
                .bind(format!("balance_events_{}", day.0.format("%Y%m%d")))
                .fetch_one(&mut **t)
                .await?
                .opt_text("name")?;
            if let Some(name) = name {
                sqlx::query(&format!("DROP TABLE {}", pg_ident(&name)))
                    .execute(&mut **t)
                    .await?;
            }
        }
        Tx::Sqlite(t) => {
            for token in tokens {
                sqlx::query("DELETE FROM balance_events WHERE token = $1 AND day = $2")
                    .bind(token)
                    .bind(from.div_euclid(NANOS_PER_DAY))
                    .execute(&mut **t)
                    .await?;
            }
        }
    }
    on_tx!(tx, |c| sqlx::query(
        "DELETE FROM balance_event_ids WHERE ts >= $1 AND ts < $2"
    )
    .bind(from)
    .bind(to)
    .execute(&mut *c)
    .await?
    .rows_affected());
    Ok(())
}

/// A quoted SQL identifier.
fn pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The pool kind, for callers that report what archiving does on each backend.
impl Store {
    /// True when archiving drops whole partitions (PostgreSQL) rather than deleting rows.
    pub fn archive_drops_partitions(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }
}
