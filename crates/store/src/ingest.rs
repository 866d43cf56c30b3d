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
//! PostgreSQL partitions `balance_events` by UTC day and token; the leaves a batch needs
//! are created first, each in its own short transaction (`softstake_event_partition`).
//! A bulk ingest ([`Store::begin_bulk_ingest`]) instead fills new leaves while they are
//! standalone and unindexed, then builds their keys and attaches them at the commit:
//! maintaining a B-tree row by row costs several microseconds a row, building it once
//! about one.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use softstake_core::twab::BalanceEvent;
use softstake_core::{Day, Timestamp};

use crate::balances::last_closed;
use crate::db::{insert_rows, on_tx, Pool, RowExt, Tx, Val};
use crate::error::{Result, StoreError};
use crate::pg::{copy_in, CopyWriter};
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
    /// PostgreSQL leaves `(day start, token)` seen, and how their rows go in.
    leaves: BTreeMap<(i64, String), Leaf>,
    bulk: bool,
    report: IngestReport,
    checked: bool,
    staging_ready: bool,
}

/// How rows of one `(day, token)` leaf go in (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leaf {
    /// The leaf exists (attached, with its key): through the parent, checked.
    Attached,
    /// A bulk load created it in this transaction: copied in without a key, indexed and
    /// attached at [`Ingest::check`].
    Bulk(String),
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
            leaves: BTreeMap::new(),
            bulk: false,
            report: IngestReport::default(),
            checked: false,
            staging_ready: false,
        })
    }

    /// Starts a bulk ingest (a file, a backfill): on PostgreSQL, the `(day, token)` leaves
    /// that do not exist yet are filled while standalone, without an index, and indexed
    /// and attached at the commit (PostgreSQL's bulk-loading advice: load, then index);
    /// other rows go in as with [`Store::begin_ingest`]. Takes no feed event ids.
    ///
    /// Duplicate keys within a bulk-loaded leaf are found when its index is built:
    /// [`StoreError::BulkDuplicates`] then refuses the whole ingest, and the caller runs it
    /// again with [`Store::begin_ingest`], which checks row by row (exact duplicates are
    /// fine there, and a conflict is reported with its line).
    pub async fn begin_bulk_ingest(&self) -> Result<Ingest<'_>> {
        let mut ing = self.begin_ingest().await?;
        if let Tx::Postgres(t) = &mut ing.tx {
            // Index builds at the commit sort in memory up to this much (this session only).
            sqlx::query("SET LOCAL maintenance_work_mem = '512MB'")
                .execute(&mut **t)
                .await?;
        }
        ing.bulk = true;
        Ok(ing)
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

    /// Creates the `balance_events` leaf of `(day start, token)` if it does not exist yet,
    /// in its own short transaction (PostgreSQL).
    async fn ensure_partition(&self, day: i64, token: &str) -> Result<()> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(());
        };
        sqlx::query("SELECT softstake_event_partition($1, $2)")
            .bind(day)
            .bind(token)
            .execute(p)
            .await?;
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
        if self.bulk && batch.iter().any(|e| e.event_id.is_some()) {
            return Err(StoreError::Invalid("a bulk ingest takes no feed event ids".into()));
        }
        self.note(batch)?;
        let n = batch.len() as u64;
        let inserted = match &mut self.tx {
            Tx::Postgres(_) => self.push_pg(batch).await?,
            Tx::Sqlite(_) => self.insert_batch(batch).await?,
        };
        self.report.inserted += inserted;
        self.report.duplicates += n - inserted;
        Ok(())
    }

    /// PostgreSQL: rows of bulk leaves are copied into them; the rest through the parent.
    async fn push_pg(&mut self, batch: &[IngestEvent]) -> Result<u64> {
        let mut bulk: BTreeMap<String, Vec<&IngestEvent>> = BTreeMap::new();
        let mut plain: Vec<IngestEvent> = Vec::new();
        for e in batch {
            let key = (e.event.ts.day().start().0, e.event.token.clone());
            let leaf = match self.leaves.get(&key) {
                Some(l) => l.clone(),
                None => {
                    let l = self.open_leaf(key.0, &key.1, e.event_id.is_some()).await?;
                    self.leaves.insert(key, l.clone());
                    l
                }
            };
            match leaf {
                Leaf::Bulk(name) => bulk.entry(name).or_default().push(e),
                Leaf::Attached => plain.push(e.clone()),
            }
        }
        let mut inserted = 0;
        for (name, rows) in &bulk {
            let Tx::Postgres(t) = &mut self.tx else { break };
            inserted += copy_in(
                t,
                // FREEZE: the leaf was created in this transaction, so its rows are written
                // frozen and all-visible, and the close reads them by an index-only scan.
                &format!(
                    "COPY {} (token, ts, account_id, balance) FROM STDIN (FORMAT binary, FREEZE)",
                    ident(name)
                ),
                4,
                rows,
                |w, e| write_event_row(w, e),
            )
            .await?;
        }
        if !plain.is_empty() {
            inserted += match self.copy_batch(&plain).await? {
                Some(n) => n,
                None => self.staged(&plain).await?,
            };
        }
        Ok(inserted)
    }

    /// How rows of a `(day, token)` leaf seen for the first time go in: a bulk ingest
    /// creates a missing leaf standalone in its transaction (holding the leaf's lock until
    /// the commit); otherwise the leaf is created and attached in a short transaction of
    /// its own.
    async fn open_leaf(&mut self, day: i64, token: &str, has_id: bool) -> Result<Leaf> {
        let Tx::Postgres(t) = &mut self.tx else {
            return Ok(Leaf::Attached);
        };
        // An existing leaf is attached (leaves are attached in the transaction that
        // creates them, or by the bulk load that fills them, at its commit).
        let exists: bool = sqlx::query_scalar("SELECT softstake_table_exists(softstake_event_leaf_name($1, $2))")
            .bind(day)
            .bind(token)
            .fetch_one(&mut **t)
            .await?;
        if exists {
            return Ok(Leaf::Attached);
        }
        if self.bulk && !has_id {
            // Take the leaf's lock (held to the commit), then look again: another ingest
            // may have created it while we waited.
            let name: String = sqlx::query_scalar("SELECT softstake_event_leaf($1, $2)")
                .bind(day)
                .bind(token)
                .fetch_one(&mut **t)
                .await?;
            let exists: bool = sqlx::query_scalar("SELECT softstake_table_exists($1)")
                .bind(&name)
                .fetch_one(&mut **t)
                .await?;
            if exists {
                return Ok(Leaf::Attached);
            }
            sqlx::query("SELECT softstake_event_leaf_table($1, $2, false)")
                .bind(day)
                .bind(token)
                .execute(&mut **t)
                .await?;
            return Ok(Leaf::Bulk(name));
        }
        self.store.ensure_partition(day, token).await?;
        Ok(Leaf::Attached)
    }

    /// Bulk leaves: builds each one's primary key (refusing duplicate keys), analyzes it
    /// and attaches it under its day.
    async fn publish_bulk(&mut self) -> Result<()> {
        let bulk: Vec<((i64, String), String)> = self
            .leaves
            .iter()
            .filter_map(|(k, l)| match l {
                Leaf::Bulk(n) => Some((k.clone(), n.clone())),
                Leaf::Attached => None,
            })
            .collect();
        let Tx::Postgres(t) = &mut self.tx else {
            return Ok(());
        };
        for ((day, token), name) in bulk {
            sqlx::query("SAVEPOINT bulk_key").execute(&mut **t).await?;
            let keyed = sqlx::query(&format!(
                "ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (account_id, ts) INCLUDE (token, balance)",
                ident(&name),
                ident(&format!("{name}_pkey"))
            ))
            .execute(&mut **t)
            .await;
            match keyed {
                Ok(_) => {}
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
                    sqlx::query("ROLLBACK TO SAVEPOINT bulk_key").execute(&mut **t).await?;
                    return Err(StoreError::BulkDuplicates {
                        token,
                        day: Timestamp(day).day().to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            sqlx::query(&format!("ANALYZE {}", ident(&name)))
                .execute(&mut **t)
                .await?;
            sqlx::query("SELECT softstake_event_leaf_attach($1, $2)")
                .bind(day)
                .bind(&token)
                .execute(&mut **t)
                .await?;
        }
        Ok(())
    }

    /// Records each token's earliest event and the days the batch touches.
    fn note(&mut self, batch: &[IngestEvent]) -> Result<()> {
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
            self.days.insert(ev.ts.day().start().0);
        }
        if self.days.len() > MAX_DAYS_PER_INGEST {
            return Err(StoreError::Invalid(format!(
                "one ingest touches more than {MAX_DAYS_PER_INGEST} UTC days; split the backfill into several files"
            )));
        }
        Ok(())
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
                write_event_row,
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
        // In key order, so the clustered B-tree is written page by page.
        let mut sorted: Vec<&IngestEvent> = batch.iter().collect();
        sorted.sort_by(|a, b| {
            (&a.event.token, day_number(a.event.ts), &a.event.account_id, a.event.ts).cmp(&(
                &b.event.token,
                day_number(b.event.ts),
                &b.event.account_id,
                b.event.ts,
            ))
        });
        let rows: Vec<Vec<Val>> = sorted
            .iter()
            .map(|e| {
                vec![
                    Val::T(e.event.token.clone()),
                    Val::I(day_number(e.event.ts)),
                    Val::T(e.event.account_id.clone()),
                    Val::I(e.event.ts.0),
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
            "INSERT INTO balance_events (token, day, account_id, ts, balance)",
            "ON CONFLICT DO NOTHING",
            5,
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
             SELECT token, ts, account_id, balance FROM ingest_staging WHERE true ORDER BY token, account_id, ts ON CONFLICT DO NOTHING"
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
                    "CREATE TEMP TABLE IF NOT EXISTS ingest_staging (line BIGINT, token TEXT NOT NULL, day BIGINT NOT NULL, \
                     ts BIGINT NOT NULL, account_id TEXT NOT NULL, balance TEXT NOT NULL, event_id TEXT)"
                }
            };
            on_tx!(&mut self.tx, |c| sqlx::query(ddl)
                .execute(&mut *c)
                .await?
                .rows_affected());
            self.staging_ready = true;
        }
        let empty = match &self.tx {
            Tx::Postgres(_) => "TRUNCATE ingest_staging",
            Tx::Sqlite(_) => "DELETE FROM ingest_staging",
        };
        on_tx!(&mut self.tx, |c| sqlx::query(empty)
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
                // Statistics, so the checks join it to the events by index, not by scans.
                sqlx::query("ANALYZE ingest_staging").execute(&mut **t).await?;
            }
            Tx::Sqlite(_) => {
                let rows: Vec<Vec<Val>> = batch
                    .iter()
                    .map(|e| {
                        vec![
                            e.line.map(|l| Val::I(l as i64)).unwrap_or(Val::NullI),
                            Val::T(e.event.token.clone()),
                            Val::I(day_number(e.event.ts)),
                            Val::I(e.event.ts.0),
                            Val::T(e.event.account_id.clone()),
                            Val::A(e.event.balance),
                            e.event_id.clone().map(Val::T).unwrap_or(Val::NullT),
                        ]
                    })
                    .collect();
                insert_rows(
                    &mut self.tx,
                    "INSERT INTO ingest_staging (line, token, day, ts, account_id, balance, event_id)",
                    "",
                    7,
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
        let sql = match &self.tx {
            Tx::Postgres(_) => {
                "SELECT s.line, s.token, s.account_id, s.ts, e.balance AS existing, s.balance AS new_balance \
                 FROM ingest_staging s JOIN balance_events e \
                 ON e.token = s.token AND e.ts = s.ts AND e.account_id = s.account_id \
                 WHERE e.balance <> s.balance ORDER BY s.line LIMIT 1"
            }
            // The day number lets SQLite use the clustered key (token, day, account_id, ts).
            Tx::Sqlite(_) => {
                "SELECT s.line, s.token, s.account_id, s.ts, e.balance AS existing, s.balance AS new_balance \
                 FROM ingest_staging s JOIN balance_events e \
                 ON e.token = s.token AND e.day = s.day AND e.account_id = s.account_id AND e.ts = s.ts \
                 WHERE e.balance <> s.balance ORDER BY s.line LIMIT 1"
            }
        };
        let conflict = on_tx!(&mut self.tx, |c| {
            let row = sqlx::query(sql).fetch_optional(&mut *c).await?;
            row.map(|r| -> Result<StoreError> {
                Ok(StoreError::ConflictingEvent {
                    line: r.opt_int("line")?.map(|l| l as u64),
                    token: r.text("token")?.into(),
                    account_id: r.text("account_id")?.into(),
                    ts: r.ts("ts")?.to_rfc3339().into(),
                    existing: r.amount("existing", "balance_events")?.to_string().into(),
                    new: r.amount("new_balance", "ingest_staging")?.to_string().into(),
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
        self.publish_bulk().await?;
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

/// The UTC day number of `ts` (days since 1970-01-01; SQLite keys events by it).
pub(crate) fn day_number(ts: Timestamp) -> i64 {
    ts.0.div_euclid(86_400_000_000_000)
}

/// A quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
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

/// One `balance_events` row in `COPY` column order `(token, ts, account_id, balance)`.
fn write_event_row(w: &mut CopyWriter, e: &IngestEvent) {
    w.text(&e.event.token);
    w.int8(e.event.ts.0);
    w.text(&e.event.account_id);
    w.numeric(e.event.balance.0);
}
