//! The balance feed: events in bounded batches, all or nothing per ingest, idempotent.
//!
//! ```text
//!  begin_ingest ─▶ push(batch) … push(batch) ─▶ check (token locks, days open) ─▶ commit
//!                    │
//!                    ├─ PostgreSQL: SAVEPOINT; COPY … FROM STDIN (FORMAT binary) straight
//!                    │  into balance_events (and balance_event_ids); a duplicate key rolls
//!                    │  the batch back to the savepoint and takes the staged path
//!                    ├─ SQLite: multi-row INSERT … ON CONFLICT DO NOTHING; if some rows
//!                    │  were already there, the staged path checks them
//!                    └─ staged path: batch → temp table ingest_staging, set-based checks
//!                       (same key with another balance, an id reused for another event),
//!                       INSERT … SELECT … ON CONFLICT DO NOTHING
//! ```
//!
//! Memory is one batch, whatever the size of the file or stream. One transaction holds the
//! whole ingest: an error anywhere leaves the store as it was. The check that no event
//! falls in a closed day runs under the token's day lock ([`Store::lock_token_days`]),
//! held until the commit, so a concurrent close either sees the events or they are
//! refused; never lost.
//!
//! PostgreSQL partitions `balance_events` by UTC day; the partitions a batch needs are
//! created first, each in its own short transaction (`softstake_event_partition`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use softstake_core::twab::BalanceEvent;
use softstake_core::{Day, Timestamp};

use crate::balances::last_closed;
use crate::db::{insert_rows, on_tx, Pool, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::pg::copy_in;
use crate::Store;

/// What an ingest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestReport {
    /// New events stored.
    pub inserted: u64,
    /// Events already stored with the same balance (skipped).
    pub duplicates: u64,
}

/// One event to ingest, with the feed's event id (idempotency key) and where it came
/// from (a file line or a feed position) for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestEvent {
    /// The event.
    pub event: BalanceEvent,
    /// The feed's id for it, if any.
    pub event_id: Option<String>,
    /// Its line in the input, if known.
    pub line: Option<u64>,
}

/// The earliest event of a token in an ingest (for the closed-day check).
#[derive(Debug, Clone)]
struct First {
    ts: Timestamp,
    line: Option<u64>,
    account_id: String,
}

/// An ingest in progress: one transaction, fed batch by batch. Dropping it without
/// [`Ingest::commit`] rolls everything back.
#[derive(Debug)]
pub struct Ingest<'s> {
    store: &'s Store,
    tx: Tx,
    first: BTreeMap<String, First>,
    days: BTreeSet<i64>,
    report: IngestReport,
    checked: bool,
    staging_ready: bool,
}

/// Largest number of distinct UTC days one ingest may touch (each is a partition on
/// PostgreSQL); a backfill beyond it is split into several ingests.
pub const MAX_DAYS_PER_INGEST: usize = 1_000;

impl Store {
    /// Starts an ingest (one transaction).
    ///
    /// # Errors
    /// [`StoreError::Db`] when no connection is available.
    pub async fn begin_ingest(&self) -> Result<Ingest<'_>> {
        Ok(Ingest {
            store: self,
            tx: self.write_tx().await?,
            first: BTreeMap::new(),
            days: BTreeSet::new(),
            report: IngestReport::default(),
            checked: false,
            staging_ready: false,
        })
    }

    /// Stores balance events (all or nothing).
    ///
    /// Errors: [`StoreError::EventInClosedDay`] for an event in a closed day of its
    /// token; [`StoreError::ConflictingEvent`] for an event whose `(token, account, ts)`
    /// is already stored — in this batch or before — with another balance.
    pub async fn ingest_events(&self, events: &[BalanceEvent]) -> Result<IngestReport> {
        let batch: Vec<IngestEvent> = events
            .iter()
            .map(|e| IngestEvent {
                event: e.clone(),
                event_id: None,
                line: None,
            })
            .collect();
        self.ingest_batch(&batch).await
    }

    /// Stores balance events carrying the feed's event ids (all or nothing), idempotent
    /// by id: an id already stored with the same event is a duplicate; with another
    /// event it is refused ([`StoreError::EventIdReused`]). Other errors as
    /// [`Store::ingest_events`].
    pub async fn ingest_events_with_ids(&self, events: &[(Option<String>, BalanceEvent)]) -> Result<IngestReport> {
        let batch: Vec<IngestEvent> = events
            .iter()
            .enumerate()
            .map(|(i, (id, e))| IngestEvent {
                event: e.clone(),
                event_id: id.clone(),
                line: Some(i as u64 + 1),
            })
            .collect();
        self.ingest_batch(&batch).await
    }

    /// One batch as one ingest.
    pub async fn ingest_batch(&self, batch: &[IngestEvent]) -> Result<IngestReport> {
        let mut ing = self.begin_ingest().await?;
        ing.push(batch).await?;
        ing.commit().await
    }

    /// Creates the `balance_events` partitions of `days` (UTC day starts, nanoseconds) that
    /// do not exist yet, each in its own short transaction (PostgreSQL; no-op on SQLite).
    async fn ensure_partitions(&self, days: &[i64]) -> Result<()> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(());
        };
        for d in days {
            sqlx::query("SELECT softstake_event_partition($1)")
                .bind(*d)
                .execute(p)
                .await?;
        }
        Ok(())
    }
}

impl Ingest<'_> {
    /// Adds a batch. Memory: the batch itself; the store keeps it in the transaction.
    ///
    /// Errors: [`StoreError::ConflictingEvent`], [`StoreError::EventIdReused`] (with the
    /// event's line), [`StoreError::Invalid`] past [`MAX_DAYS_PER_INGEST`] days. After an
    /// error the ingest must be dropped (nothing is stored).
    pub async fn push(&mut self, batch: &[IngestEvent]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.checked {
            return Err(StoreError::Invalid("ingest: push after check".into()));
        }
        check_batch_ids(batch)?;
        let new_days = self.note(batch)?;
        self.store.ensure_partitions(&new_days).await?;
        let n = batch.len() as u64;
        let inserted = match &mut self.tx {
            Tx::Postgres(_) => match self.copy_batch(batch).await? {
                Some(inserted) => inserted,
                None => self.staged(batch).await?,
            },
            Tx::Sqlite(_) => self.insert_batch(batch).await?,
        };
        self.report.inserted += inserted;
        self.report.duplicates += n - inserted;
        Ok(())
    }

    /// Records each token's earliest event and the days the batch touches; returns the
    /// days not seen before (UTC day starts, nanoseconds).
    fn note(&mut self, batch: &[IngestEvent]) -> Result<Vec<i64>> {
        let mut new_days = Vec::new();
        for e in batch {
            let ev = &e.event;
            match self.first.get_mut(&ev.token) {
                Some(f) if f.ts <= ev.ts => {}
                Some(f) => {
                    *f = First {
                        ts: ev.ts,
                        line: e.line,
                        account_id: ev.account_id.clone(),
                    }
                }
                None => {
                    self.first.insert(
                        ev.token.clone(),
                        First {
                            ts: ev.ts,
                            line: e.line,
                            account_id: ev.account_id.clone(),
                        },
                    );
                }
            }
            let day = ev.ts.day().start().0;
            if self.days.insert(day) {
                new_days.push(day);
            }
        }
        if self.days.len() > MAX_DAYS_PER_INGEST {
            return Err(StoreError::Invalid(format!(
                "one ingest touches more than {MAX_DAYS_PER_INGEST} UTC days; split the backfill into several files"
            )));
        }
        Ok(new_days)
    }

    /// PostgreSQL fast path: the batch is copied straight into `balance_events` under a
    /// savepoint. `None` when a key (or event id) was already there: the savepoint is
    /// rolled back and the caller takes the staged path.
    async fn copy_batch(&mut self, batch: &[IngestEvent]) -> Result<Option<u64>> {
        let Tx::Postgres(t) = &mut self.tx else {
            return Ok(None);
        };
        let c: &mut sqlx::PgConnection = t;
        sqlx::query("SAVEPOINT ingest_batch").execute(&mut *c).await?;
        let copied = async {
            let n = copy_in(
                c,
                "COPY balance_events (token, ts, account_id, balance) FROM STDIN (FORMAT binary)",
                4,
                batch,
                |w, e| {
                    w.text(&e.event.token);
                    w.int8(e.event.ts.0);
                    w.text(&e.event.account_id);
                    w.numeric(e.event.balance.0);
                },
            )
            .await?;
            let ids: Vec<&IngestEvent> = batch.iter().filter(|e| e.event_id.is_some()).collect();
            if !ids.is_empty() {
                copy_in(
                    c,
                    "COPY balance_event_ids (event_id, token, ts, account_id) FROM STDIN (FORMAT binary)",
                    4,
                    &ids,
                    |w, e| {
                        w.text(e.event_id.as_deref().unwrap_or_default());
                        w.text(&e.event.token);
                        w.int8(e.event.ts.0);
                        w.text(&e.event.account_id);
                    },
                )
                .await?;
            }
            Ok::<u64, sqlx::Error>(n)
        }
        .await;
        match copied {
            Ok(n) => {
                sqlx::query("RELEASE SAVEPOINT ingest_batch").execute(&mut *c).await?;
                Ok(Some(n))
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                sqlx::query("ROLLBACK TO SAVEPOINT ingest_batch")
                    .execute(&mut *c)
                    .await?;
                sqlx::query("RELEASE SAVEPOINT ingest_batch").execute(&mut *c).await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// SQLite path: multi-row inserts that skip existing keys; when some were skipped
    /// (or some ids were known), the staged path checks the batch.
    async fn insert_batch(&mut self, batch: &[IngestEvent]) -> Result<u64> {
        let rows: Vec<Vec<Val>> = batch
            .iter()
            .map(|e| {
                vec![
                    Val::T(e.event.token.clone()),
                    Val::I(e.event.ts.0),
                    Val::T(e.event.account_id.clone()),
                    Val::A(e.event.balance),
                ]
            })
            .collect();
        let ids: Vec<Vec<Val>> = batch
            .iter()
            .filter_map(|e| {
                e.event_id.as_ref().map(|id| {
                    vec![
                        Val::T(id.clone()),
                        Val::T(e.event.token.clone()),
                        Val::I(e.event.ts.0),
                        Val::T(e.event.account_id.clone()),
                    ]
                })
            })
            .collect();
        let inserted = insert_rows(
            &mut self.tx,
            "INSERT INTO balance_events (token, ts, account_id, balance)",
            "ON CONFLICT DO NOTHING",
            4,
            &rows,
        )
        .await?;
        let new_ids = insert_rows(
            &mut self.tx,
            "INSERT INTO balance_event_ids (event_id, token, ts, account_id)",
            "ON CONFLICT DO NOTHING",
            4,
            &ids,
        )
        .await?;
        if inserted < rows.len() as u64 || new_ids < ids.len() as u64 {
            self.stage(batch).await?;
            self.check_staged().await?;
        }
        Ok(inserted)
    }

    /// The staged path: checks the batch against what is stored, then inserts what is new.
    async fn staged(&mut self, batch: &[IngestEvent]) -> Result<u64> {
        self.stage(batch).await?;
        self.check_staged().await?;
        let inserted = on_tx!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO balance_events (token, ts, account_id, balance) \
             SELECT token, ts, account_id, balance FROM ingest_staging WHERE true ORDER BY token, ts, account_id ON CONFLICT DO NOTHING"
        )
        .execute(&mut *c)
        .await?
        .rows_affected()
        });
        on_tx!(&mut self.tx, |c| {
            sqlx::query(
            "INSERT INTO balance_event_ids (event_id, token, ts, account_id) \
             SELECT event_id, token, ts, account_id FROM ingest_staging WHERE event_id IS NOT NULL ON CONFLICT DO NOTHING"
        )
        .execute(&mut *c)
        .await?
            .rows_affected()
        });
        Ok(inserted)
    }

    /// Loads the batch into the session's `ingest_staging` table (emptied first).
    async fn stage(&mut self, batch: &[IngestEvent]) -> Result<()> {
        if !self.staging_ready {
            let ddl = match &self.tx {
                Tx::Postgres(_) => {
                    "CREATE TEMP TABLE IF NOT EXISTS ingest_staging (line BIGINT, token TEXT COLLATE \"C\" NOT NULL, \
                     ts BIGINT NOT NULL, account_id TEXT COLLATE \"C\" NOT NULL, balance NUMERIC(39,0) NOT NULL, event_id TEXT)"
                }
                Tx::Sqlite(_) => {
                    "CREATE TEMP TABLE IF NOT EXISTS ingest_staging (line BIGINT, token TEXT NOT NULL, ts BIGINT NOT NULL, \
                     account_id TEXT NOT NULL, balance TEXT NOT NULL, event_id TEXT)"
                }
            };
            on_tx!(&mut self.tx, |c| sqlx::query(ddl)
                .execute(&mut *c)
                .await?
                .rows_affected());
            self.staging_ready = true;
        }
        on_tx!(&mut self.tx, |c| sqlx::query("DELETE FROM ingest_staging")
            .execute(&mut *c)
            .await?
            .rows_affected());
        match &mut self.tx {
            Tx::Postgres(t) => {
                copy_in(
                    t,
                    "COPY ingest_staging (line, token, ts, account_id, balance, event_id) FROM STDIN (FORMAT binary)",
                    6,
                    batch,
                    |w, e| {
                        match e.line {
                            Some(l) => w.int8(l as i64),
                            None => w.null(),
                        }
                        w.text(&e.event.token);
                        w.int8(e.event.ts.0);
                        w.text(&e.event.account_id);
                        w.numeric(e.event.balance.0);
                        match &e.event_id {
                            Some(id) => w.text(id),
                            None => w.null(),
                        }
                    },
                )
                .await?;
            }
            Tx::Sqlite(_) => {
                let rows: Vec<Vec<Val>> = batch
                    .iter()
                    .map(|e| {
                        vec![
                            e.line.map(|l| Val::I(l as i64)).unwrap_or(Val::NullI),
                            Val::T(e.event.token.clone()),
                            Val::I(e.event.ts.0),
                            Val::T(e.event.account_id.clone()),
                            Val::A(e.event.balance),
                            e.event_id.clone().map(Val::T).unwrap_or(Val::NullT),
                        ]
                    })
                    .collect();
                insert_rows(
                    &mut self.tx,
                    "INSERT INTO ingest_staging (line, token, ts, account_id, balance, event_id)",
                    "",
                    6,
                    &rows,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Refuses a staged event whose key is stored with another balance, or whose id is
    /// stored for another event; names the first offending line.
    async fn check_staged(&mut self) -> Result<()> {
        let conflict = on_tx!(&mut self.tx, |c| {
            let row = sqlx::query(
                "SELECT s.line, s.token, s.account_id, s.ts, e.balance AS existing, s.balance AS new_balance \
                 FROM ingest_staging s JOIN balance_events e \
                 ON e.token = s.token AND e.ts = s.ts AND e.account_id = s.account_id \
                 WHERE e.balance <> s.balance ORDER BY s.line LIMIT 1",
            )
            .fetch_optional(&mut *c)
            .await?;
            row.map(|r| -> Result<StoreError> {
                Ok(StoreError::ConflictingEvent {
                    line: r.opt_int("line")?.map(|l| l as u64),
                    token: r.text("token")?,
                    account_id: r.text("account_id")?,
                    ts: r.ts("ts")?.to_rfc3339(),
                    existing: r.amount("existing", "balance_events")?.to_string(),
                    new: r.amount("new_balance", "ingest_staging")?.to_string(),
                })
            })
            .transpose()?
        });
        if let Some(e) = conflict {
            return Err(e);
        }
        let reused = on_tx!(&mut self.tx, |c| {
            let row = sqlx::query(
                "SELECT s.line, s.event_id FROM ingest_staging s JOIN balance_event_ids i ON i.event_id = s.event_id \
                 WHERE i.token <> s.token OR i.ts <> s.ts OR i.account_id <> s.account_id ORDER BY s.line LIMIT 1",
            )
            .fetch_optional(&mut *c)
            .await?;
            row.map(|r| -> Result<StoreError> {
                Ok(StoreError::EventIdReused {
                    line: r.opt_int("line")?.map(|l| l as u64),
                    event_id: r.text("event_id")?,
                })
            })
            .transpose()?
        });
        match reused {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Takes the day lock of every token in the ingest (in symbol order) and refuses the
    /// ingest if an event falls in a day already closed for its token. The locks are held
    /// until the ingest commits or is dropped. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::EventInClosedDay`] naming the first such event and its line.
    pub async fn check(&mut self) -> Result<()> {
        if self.checked {
            return Ok(());
        }
        for (token, first) in &self.first {
            Store::lock_token_days(&mut self.tx, token).await?;
            let Some(last) = last_closed(&mut self.tx, token).await? else {
                continue;
            };
            if first.ts < last.end() {
                return Err(StoreError::EventInClosedDay {
                    line: first.line,
                    token: token.clone(),
                    account_id: first.account_id.clone(),
                    ts: first.ts.to_rfc3339(),
                    last_closed: last.to_string(),
                });
            }
        }
        self.checked = true;
        Ok(())
    }

    /// What the ingest stored so far.
    pub fn report(&self) -> IngestReport {
        self.report
    }

    /// The UTC days the ingest touched.
    pub fn days(&self) -> Vec<Day> {
        self.days.iter().map(|d| Timestamp(*d).day()).collect()
    }

    /// [`Ingest::check`]s, then commits everything pushed.
    pub async fn commit(mut self) -> Result<IngestReport> {
        self.check().await?;
        let report = self.report;
        self.tx.commit().await?;
        Ok(report)
    }
}

/// Refuses an event id given to two different events within one batch.
fn check_batch_ids(batch: &[IngestEvent]) -> Result<()> {
    let mut ids: HashMap<&str, &IngestEvent> = HashMap::new();
    for e in batch {
        let Some(id) = e.event_id.as_deref() else { continue };
        if let Some(prev) = ids.insert(id, e) {
            if prev.event != e.event {
                return Err(StoreError::EventIdReused {
                    line: e.line,
                    event_id: id.to_string(),
                });
            }
        }
    }
    Ok(())
}
