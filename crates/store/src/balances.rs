//! The balance feed and the day close.
//!
//! Ingest is all-or-nothing per call and idempotent per `(token, account, ts)`; an event
//! in a day already closed for its token is refused (a closed day never changes).
//!
//! The day close streams the day's events in time order through a
//! [`softstake_core::twab::DayCloser`] (one accumulator per account), so its memory grows
//! with accounts, never with events. Days close in order per token; closing a closed day
//! again is a no-op that returns the first result.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Row};
use tracing::info;

use softstake_core::eligibility::eligible_for_day;
use softstake_core::twab::{BalanceEvent, DayCloser};
use softstake_core::{Amount, Day, Timestamp, TokenRegistry};

use crate::error::{Result, StoreError};
use crate::sql::{self, insert_rows, Val};
use crate::Store;

/// What an ingest call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestReport {
    /// New events stored.
    pub inserted: u64,
    /// Events already stored with the same balance (skipped).
    pub duplicates: u64,
}

/// The result of closing one token's day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOutcome {
    /// Token symbol.
    pub token: String,
    /// The day.
    pub day: Day,
    /// Accounts with a balance during the day.
    pub accounts: u64,
    /// Accounts with a positive eligible amount.
    pub eligible_accounts: u64,
    /// Σ eligible, base units.
    pub total_eligible: Amount,
    /// Σ closing balances (custodial total at the end of the day), base units.
    pub total_balance: Amount,
    /// True when the day had been closed before (nothing was written).
    pub already_closed: bool,
}

impl Store {
    /// Stores balance events (all or nothing).
    ///
    /// Errors: [`StoreError::EventInClosedDay`] for an event in a closed day of its
    /// token; [`StoreError::ConflictingEvent`] for an event whose `(token, account, ts)`
    /// is already stored — in this batch or before — with another balance.
    pub async fn ingest_events(&self, events: &[BalanceEvent]) -> Result<IngestReport> {
        let with_ids: Vec<(Option<String>, BalanceEvent)> = events.iter().map(|e| (None, e.clone())).collect();
        self.ingest_events_with_ids(&with_ids).await
    }

    /// Stores balance events carrying the feed's event ids (all or nothing), idempotent
    /// by id: an id already stored with the same event is a duplicate; with another
    /// event it is refused ([`StoreError::EventIdReused`]). Other errors as
    /// [`Store::ingest_events`].
    pub async fn ingest_events_with_ids(&self, events: &[(Option<String>, BalanceEvent)]) -> Result<IngestReport> {
        let unique = dedupe_batch(events)?;
        let mut tx = self.write_tx().await?;
        let plain: Vec<BalanceEvent> = unique.iter().map(|(_, e)| e.clone()).collect();
        check_not_closed(&mut tx, &plain).await?;
        sqlx::query(
            "CREATE TEMP TABLE IF NOT EXISTS staging_events (token TEXT NOT NULL, account_id TEXT NOT NULL, \
             ts BIGINT NOT NULL, balance TEXT NOT NULL, event_id TEXT)",
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM staging_events").execute(&mut *tx).await?;
        let rows: Vec<Vec<Val>> = unique
            .iter()
            .map(|(id, e)| {
                vec![
                    Val::T(e.token.clone()),
                    Val::T(e.account_id.clone()),
                    Val::I(e.ts.0),
                    Val::T(e.balance.0.to_string()),
                    id.clone().map(Val::T).unwrap_or(Val::NullT),
                ]
            })
            .collect();
        insert_rows(
            &mut tx,
            "INSERT INTO staging_events (token, account_id, ts, balance, event_id)",
            "",
            5,
            &rows,
        )
        .await?;
        let conflict = sqlx::query(
            "SELECT s.token, s.account_id, s.ts, e.balance AS existing, s.balance AS new_balance \
             FROM staging_events s JOIN balance_events e \
             ON e.token = s.token AND e.account_id = s.account_id AND e.ts = s.ts \
             WHERE e.balance <> s.balance LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = conflict {
            return Err(StoreError::ConflictingEvent {
                token: r.try_get("token")?,
                account_id: r.try_get("account_id")?,
                ts: sql::ts(&r, "ts")?.to_rfc3339(),
                existing: r.try_get("existing")?,
                new: r.try_get("new_balance")?,
            });
        }
        let reused = sqlx::query(
            "SELECT s.event_id FROM staging_events s JOIN balance_events e ON e.event_id = s.event_id \
             WHERE e.token <> s.token OR e.account_id <> s.account_id OR e.ts <> s.ts OR e.balance <> s.balance LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = reused {
            return Err(StoreError::EventIdReused {
                event_id: r.try_get("event_id")?,
            });
        }
        let inserted = sqlx::query(
            "INSERT INTO balance_events (token, account_id, ts, balance, event_id) \
             SELECT token, account_id, ts, balance, event_id FROM staging_events WHERE 1 = 1 ON CONFLICT DO NOTHING",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM staging_events").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(IngestReport {
            inserted,
            duplicates: events.len() as u64 - inserted,
        })
    }

    /// Closed days of `token` not yet distributed, oldest first.
    pub async fn undistributed_days(&self, token: &str) -> Result<Vec<Day>> {
        let rows = sqlx::query(
            "SELECT c.day FROM closed_days c WHERE c.token = $1 AND NOT EXISTS \
             (SELECT 1 FROM distributions d WHERE d.token = c.token AND d.day = c.day) ORDER BY c.day",
        )
        .bind(token.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| sql::day(r, "day", "closed_days")).collect()
    }

    /// The last closed day of `token`, if any.
    pub async fn last_closed_day(&self, token: &str) -> Result<Option<Day>> {
        let mut conn = self.pool.acquire().await?;
        last_closed(&mut conn, token).await
    }

    /// Closes `day` for `token`: TWAB per account, eligibility, Σe; stores the daily
    /// balances, the closing balances and the closed-day record in one transaction.
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
        let mut tx = self.write_tx().await?;
        if let Some(done) = closed_record(&mut tx, token, day).await? {
            return Ok(done);
        }
        let last = last_closed(&mut tx, token).await?;
        check_close_order(token, day, last)?;
        let mut closer = DayCloser::new(day, token, max_accounts);
        let from = if last.is_some() {
            load_openings(&mut tx, token, &mut closer).await?;
            day.start().0
        } else {
            i64::MIN
        };
        stream_events(&mut tx, token, from, day.end().0, &mut closer).await?;
        let accounts = crate::accounts::load_accounts(&mut tx).await?;
        let closed = closer.finish();
        let mut daily = Vec::new();
        let mut closing = Vec::new();
        let mut total = Amount::ZERO;
        let mut total_balance = Amount::ZERO;
        let mut eligible_accounts = 0u64;
        for c in &closed {
            if c.average.is_zero() && c.closing.is_zero() {
                continue;
            }
            let e = eligible_for_day(accounts.get(&c.account_id), day, c.average, cfg, registry);
            total = total.checked_add(e, "Σ eligible")?;
            eligible_accounts += u64::from(!e.is_zero());
            daily.push(vec![
                Val::T(token.to_string()),
                Val::T(day.to_string()),
                Val::T(c.account_id.clone()),
                Val::T(c.average.0.to_string()),
                Val::T(e.0.to_string()),
            ]);
            if !c.closing.is_zero() {
                total_balance = total_balance.checked_add(c.closing, "Σ closing balances")?;
                closing.push(vec![
                    Val::T(token.to_string()),
                    Val::T(c.account_id.clone()),
                    Val::T(c.closing.0.to_string()),
                    Val::T(day.to_string()),
                ]);
            }
        }
        insert_rows(
            &mut tx,
            "INSERT INTO daily_balances (token, day, account_id, average, eligible)",
            "",
            5,
            &daily,
        )
        .await?;
        sqlx::query("DELETE FROM balances WHERE token = $1")
            .bind(token.to_string())
            .execute(&mut *tx)
            .await?;
        insert_rows(
            &mut tx,
            "INSERT INTO balances (token, account_id, balance, as_of_day)",
            "",
            4,
            &closing,
        )
        .await?;
        sqlx::query(
            "INSERT INTO closed_days (token, day, closed_at, accounts, eligible_accounts, total_eligible, total_balance) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.to_string())
        .bind(day.to_string())
        .bind(now.0)
        .bind(daily.len() as i64)
        .bind(eligible_accounts as i64)
        .bind(total.0.to_string())
        .bind(total_balance.0.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        info!(token = %token, day = %day, accounts = daily.len(), eligible_accounts, total_eligible = %total, "closed day");
        Ok(CloseOutcome {
            token: token.to_string(),
            day,
            accounts: daily.len() as u64,
            eligible_accounts,
            total_eligible: total,
            total_balance,
            already_closed: false,
        })
    }

    /// The closed-day record of `(token, day)`, if closed.
    pub async fn closed_day(&self, token: &str, day: Day) -> Result<Option<CloseOutcome>> {
        let mut conn = self.pool.acquire().await?;
        closed_record(&mut conn, token, day).await
    }

    /// `(day, Σ closing balances, Σ eligible)` of the most recent `limit` closed days of
    /// `token`, oldest first: the custodial history the buffer planner turns into daily
    /// net outflows.
    pub async fn closed_day_totals(&self, token: &str, limit: u32) -> Result<Vec<(Day, Amount, Amount)>> {
        let rows = sqlx::query(
            "SELECT day, total_balance, total_eligible FROM closed_days WHERE token = $1 ORDER BY day DESC LIMIT $2",
        )
        .bind(token.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok((
                    sql::day(r, "day", "closed_days")?,
                    sql::amount(r, "total_balance", "closed_days")?,
                    sql::amount(r, "total_eligible", "closed_days")?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        out.reverse();
        Ok(out)
    }
}

/// Sorts a batch, drops exact duplicates, refuses same-instant conflicts and event ids
/// given to two different events.
fn dedupe_batch(events: &[(Option<String>, BalanceEvent)]) -> Result<Vec<(Option<String>, BalanceEvent)>> {
    let mut ids: std::collections::HashMap<&str, &BalanceEvent> = std::collections::HashMap::new();
    for (id, e) in events {
        if let Some(id) = id {
            if let Some(prev) = ids.insert(id.as_str(), e) {
                if prev != e {
                    return Err(StoreError::EventIdReused { event_id: id.clone() });
                }
            }
        }
    }
    let mut sorted: Vec<&(Option<String>, BalanceEvent)> = events.iter().collect();
    sorted.sort_by(|a, b| (&a.1.token, &a.1.account_id, a.1.ts).cmp(&(&b.1.token, &b.1.account_id, b.1.ts)));
    let mut out: Vec<(Option<String>, BalanceEvent)> = Vec::with_capacity(sorted.len());
    for (id, e) in sorted {
        if let Some((_, prev)) = out.last() {
            if prev.token == e.token && prev.account_id == e.account_id && prev.ts == e.ts {
                if prev.balance != e.balance {
                    return Err(StoreError::ConflictingEvent {
                        token: e.token.clone(),
                        account_id: e.account_id.clone(),
                        ts: e.ts.to_rfc3339(),
                        existing: prev.balance.0.to_string(),
                        new: e.balance.0.to_string(),
                    });
                }
                continue;
            }
        }
        out.push((id.clone(), e.clone()));
    }
    Ok(out)
}

async fn check_not_closed(conn: &mut AnyConnection, events: &[BalanceEvent]) -> Result<()> {
    let tokens: BTreeSet<&str> = events.iter().map(|e| e.token.as_str()).collect();
    for token in tokens {
        let Some(last) = last_closed(conn, token).await? else {
            continue;
        };
        if let Some(e) = events.iter().find(|e| e.token == token && e.ts < last.end()) {
            return Err(StoreError::EventInClosedDay {
                token: token.to_string(),
                account_id: e.account_id.clone(),
                ts: e.ts.to_rfc3339(),
                last_closed: last.to_string(),
            });
        }
    }
    Ok(())
}

pub(crate) async fn last_closed(conn: &mut AnyConnection, token: &str) -> Result<Option<Day>> {
    let row = sqlx::query("SELECT MAX(day) AS day FROM closed_days WHERE token = $1")
        .bind(token.to_string())
        .fetch_one(&mut *conn)
        .await?;
    let d: Option<String> = row.try_get("day")?;
    d.map(|s| Day::parse(&s).map_err(|e| StoreError::corrupt("closed_days", e.to_string())))
        .transpose()
}

async fn closed_record(conn: &mut AnyConnection, token: &str, day: Day) -> Result<Option<CloseOutcome>> {
    let row = sqlx::query(
        "SELECT accounts, eligible_accounts, total_eligible, total_balance FROM closed_days WHERE token = $1 AND day = $2",
    )
    .bind(token.to_string())
    .bind(day.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|r| {
        Ok(CloseOutcome {
            token: token.to_string(),
            day,
            accounts: r.try_get::<i64, _>("accounts")? as u64,
            eligible_accounts: r.try_get::<i64, _>("eligible_accounts")? as u64,
            total_eligible: sql::amount(&r, "total_eligible", "closed_days")?,
            total_balance: sql::amount(&r, "total_balance", "closed_days")?,
            already_closed: true,
        })
    })
    .transpose()
}

fn check_close_order(token: &str, day: Day, last: Option<Day>) -> Result<()> {
    let Some(last) = last else { return Ok(()) };
    let err = |reason: String| StoreError::DayOrder {
        token: token.to_string(),
        day: day.to_string(),
        reason,
    };
    if last > day {
        return Err(err(format!(
            "a later day ({last}) is already closed; days close in order"
        )));
    }
    if last < day.prev() {
        return Err(err(format!(
            "the previous day is not closed (last closed {last}); close {} first",
            last.next()
        )));
    }
    Ok(())
}

async fn load_openings(conn: &mut AnyConnection, token: &str, closer: &mut DayCloser) -> Result<()> {
    let mut rows = sqlx::query("SELECT account_id, balance FROM balances WHERE token = $1")
        .bind(token.to_string())
        .fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        let id: String = r.try_get("account_id")?;
        closer.set_opening(&id, sql::amount(&r, "balance", "balances")?)?;
    }
    Ok(())
}

async fn stream_events(
    conn: &mut AnyConnection,
    token: &str,
    from: i64,
    to: i64,
    closer: &mut DayCloser,
) -> Result<()> {
    let mut rows = sqlx::query(
        "SELECT account_id, ts, balance FROM balance_events WHERE token = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, account_id",
    )
    .bind(token.to_string())
    .bind(from)
    .bind(to)
    .fetch(&mut *conn);
    while let Some(r) = rows.try_next().await? {
        let id: String = r.try_get("account_id")?;
        closer.apply(&id, sql::ts(&r, "ts")?, sql::amount(&r, "balance", "balance_events")?)?;
    }
    Ok(())
}
