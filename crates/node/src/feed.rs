//! The exchange's balance feed from NATS JetStream.
//!
//! ```text
//!  exchange ─▶ <prefix>.<TOKEN> ─▶ stream <stream> ─▶ durable pull consumer <consumer>-<TOKEN>
//!     fetch ≤ batch ─▶ parse each message ─┬─ poison ─▶ <dead_letter_subject> (stream <stream>_DEAD,
//!                                          │            error in headers) ─▶ ack
//!                                          └─ events ─▶ one ingest transaction ─▶ commit ─▶ ack
//! ```
//!
//! Acks follow commits, so a consumer killed between the two gets the batch again; the
//! store is idempotent by event id (the message's `event_id`, else its `Nats-Msg-Id`
//! header, else `nats:<stream>:<stream sequence>`), so redeliveries and duplicates count
//! once. A message the store refuses for good (an event in a closed day, a conflicting
//! balance, an id reused) is isolated, dead-lettered with its error and acked; nothing else
//! stops. Database errors are transient: nothing is acked and the batch comes back after
//! `ack_wait_secs`.
//!
//! Message body (JSON): `{"event_id": "…", "ts": "RFC 3339", "account_id": "…",
//! "token": "SOL", "balance": "12.5"}` (balance in token units, as in `balances.csv`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, consumer::PullConsumer, AckKind};
use async_nats::HeaderMap;
use futures_util::StreamExt;
use serde::Deserialize;
use tracing::{info, warn};

use softstake_core::twab::BalanceEvent;
use softstake_core::{Timestamp, TokenRegistry};
use softstake_store::{IngestEvent, Store, StoreError};

use crate::config::NatsFeedConfig;
use crate::input::MAX_ACCOUNT_ID_BYTES;

/// One message of the feed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedMessage {
    #[serde(default)]
    event_id: Option<String>,
    ts: String,
    account_id: String,
    token: String,
    balance: String,
}

/// What one fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StepReport {
    /// Messages fetched.
    pub fetched: u64,
    /// New events stored.
    pub inserted: u64,
    /// Events already stored (redeliveries, duplicates).
    pub duplicates: u64,
    /// Messages sent to the dead-letter subject.
    pub dead: u64,
}

/// The error an injected crash ends a step with (tests: a consumer killed between the
/// commit and the acks).
#[derive(Debug, thiserror::Error)]
#[error("injected crash after the commit, before the acks")]
pub struct InjectedCrash;

/// A connection to the feed.
#[derive(Debug)]
pub struct Feed {
    js: jetstream::Context,
    cfg: NatsFeedConfig,
    registry: TokenRegistry,
    store: Store,
    crash_after_commit: AtomicBool,
}

impl Feed {
    /// Connects and makes sure the feed's stream (subjects `<prefix>.*`) and the
    /// dead-letter stream exist.
    pub async fn connect(cfg: &NatsFeedConfig, registry: &TokenRegistry, store: Store) -> Result<Feed> {
        let client = async_nats::connect(&cfg.url)
            .await
            .with_context(|| format!("connecting to NATS at {}", cfg.url))?;
        let js = jetstream::new(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![format!("{}.*", cfg.subject_prefix)],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .with_context(|| format!("stream {}", cfg.stream))?;
        js.get_or_create_stream(jetstream::stream::Config {
            name: format!("{}_DEAD", cfg.stream),
            subjects: vec![cfg.dead_letter_subject.clone()],
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .with_context(|| format!("stream {}_DEAD", cfg.stream))?;
        Ok(Feed {
            js,
            cfg: cfg.clone(),
            registry: registry.clone(),
            store,
            crash_after_commit: AtomicBool::new(false),
        })
    }

    /// The subject of `token`'s events.
    pub fn subject(&self, token: &str) -> String {
        format!("{}.{token}", self.cfg.subject_prefix)
    }

    /// The durable pull consumer of `token` (created if missing), acknowledging explicitly.
    pub async fn consumer(&self, token: &str) -> Result<PullConsumer> {
        let name = format!("{}-{token}", self.cfg.consumer);
        let stream = self.js.get_stream(&self.cfg.stream).await?;
        stream
            .get_or_create_consumer(
                &name,
                jetstream::consumer::pull::Config {
                    durable_name: Some(name.clone()),
                    filter_subject: self.subject(token),
                    ack_policy: jetstream::consumer::AckPolicy::Explicit,
                    ack_wait: Duration::from_secs(self.cfg.ack_wait_secs),
                    max_ack_pending: (self.cfg.batch as i64).saturating_mul(4),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("consumer {name}"))
    }

    /// Makes the next step stop after its commit without acking (tests).
    pub fn crash_after_next_commit(&self) {
        self.crash_after_commit.store(true, Ordering::SeqCst);
    }

    /// Consumes `token`'s events until `stop` turns true; transient failures are logged
    /// and retried with a pause.
    pub async fn run(&self, token: &str, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        let consumer = self.consumer(token).await?;
        info!(token = %token, subject = %self.subject(token), "consuming the balance feed");
        while !*stop.borrow() {
            tokio::select! {
                r = self.step(&consumer, token) => match r {
                    Ok(rep) if rep.fetched > 0 => {
                        metrics::counter!("softstake_feed_events_total", "token" => token.to_string(), "outcome" => "inserted").increment(rep.inserted);
                        metrics::counter!("softstake_feed_events_total", "token" => token.to_string(), "outcome" => "duplicate").increment(rep.duplicates);
                        metrics::counter!("softstake_feed_events_total", "token" => token.to_string(), "outcome" => "dead_letter").increment(rep.dead);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        warn!(token = %token, error = %format!("{e:#}"), "balance feed step failed; the batch will be delivered again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                _ = stop.changed() => {}
            }
        }
        Ok(())
    }

    /// One fetch: at most `batch` messages, committed in one transaction, then acked.
    ///
    /// # Errors
    /// NATS or database failures (nothing acked: the messages come back), or
    /// [`InjectedCrash`].
    pub async fn step(&self, consumer: &PullConsumer, token: &str) -> Result<StepReport> {
        let mut messages = consumer
            .fetch()
            .max_messages(self.cfg.batch)
            .expires(Duration::from_millis(self.cfg.fetch_wait_ms))
            .messages()
            .await?;
        let mut rep = StepReport::default();
        let mut good: Vec<(jetstream::Message, IngestEvent)> = Vec::new();
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| anyhow::anyhow!("fetching from the balance feed: {e}"))?;
            rep.fetched += 1;
            match self.parse(&m, token) {
                Ok(ev) => good.push((m, ev)),
                Err(why) => {
                    self.dead_letter(&m, &why).await?;
                    rep.dead += 1;
                }
            }
        }
        if good.is_empty() {
            return Ok(rep);
        }
        let events: Vec<IngestEvent> = good.iter().map(|(_, e)| e.clone()).collect();
        match self.store.ingest_batch(&events).await {
            Ok(r) => {
                self.after_commit()?;
                rep.inserted += r.inserted;
                rep.duplicates += r.duplicates;
                for (m, _) in &good {
                    ack(m).await?;
                }
            }
            Err(e) if permanent(&e) => {
                warn!(token = %token, error = %e, "a batch of the feed was refused; isolating the bad messages");
                for (m, ev) in &good {
                    match self.store.ingest_batch(std::slice::from_ref(ev)).await {
                        Ok(r) => {
                            rep.inserted += r.inserted;
                            rep.duplicates += r.duplicates;
                            ack(m).await?;
                        }
                        Err(e) if permanent(&e) => {
                            self.dead_letter(m, &e.to_string()).await?;
                            rep.dead += 1;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
        Ok(rep)
    }

    fn after_commit(&self) -> Result<()> {
        if self.crash_after_commit.swap(false, Ordering::SeqCst) {
            return Err(InjectedCrash.into());
        }
        Ok(())
    }

    /// The event in a message, or why it is poison.
    fn parse(&self, m: &jetstream::Message, token: &str) -> std::result::Result<IngestEvent, String> {
        let info = m.info().map_err(|e| format!("not a JetStream message: {e}"))?;
        let seq = info.stream_sequence;
        let stream = info.stream.to_string();
        let f: FeedMessage =
            serde_json::from_slice(&m.payload).map_err(|e| format!("body is not a feed message: {e}"))?;
        if f.token != token {
            return Err(format!("token {:?} on the subject of {token}", f.token));
        }
        let cfg = self.registry.get(&f.token).map_err(|e| format!("token: {e}"))?;
        let ts = Timestamp::parse_rfc3339(&f.ts).map_err(|e| format!("ts: {e}"))?;
        if f.account_id.is_empty() || f.account_id.len() > MAX_ACCOUNT_ID_BYTES {
            return Err(format!("account_id: 1–{MAX_ACCOUNT_ID_BYTES} bytes"));
        }
        let balance = cfg.parse_amount(&f.balance).map_err(|e| format!("balance: {e}"))?;
        let header_id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string());
        let event_id = f
            .event_id
            .filter(|s| !s.is_empty())
            .or(header_id)
            .unwrap_or_else(|| format!("nats:{stream}:{seq}"));
        Ok(IngestEvent {
            event: BalanceEvent {
                ts,
                account_id: f.account_id,
                token: f.token,
                balance,
            },
            event_id: Some(event_id),
            line: Some(seq),
        })
    }

    /// Publishes a poison message to the dead-letter subject with its error (waiting for
    /// JetStream's ack), then acks the original.
    async fn dead_letter(&self, m: &jetstream::Message, why: &str) -> Result<()> {
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
        let mut h = HeaderMap::new();
        h.insert("Softstake-Error", why.replace(['\r', '\n'], " ").as_str());
        h.insert("Softstake-Subject", m.subject.as_str());
        h.insert("Softstake-Stream-Seq", seq.to_string().as_str());
        // JetStream's duplicate window drops a second copy if this message is redelivered.
        h.insert("Nats-Msg-Id", format!("dead:{}:{seq}", self.cfg.stream).as_str());
        self.js
            .publish_with_headers(self.cfg.dead_letter_subject.clone(), h, m.payload.clone())
            .await?
            .await
            .context("dead-letter publish not acknowledged")?;
        warn!(subject = %m.subject, seq, error = %why, "balance feed message dead-lettered");
        ack(m).await
    }
}

/// Acks and waits for the server's confirmation.
async fn ack(m: &jetstream::Message) -> Result<()> {
    match m.double_ack_with(AckKind::Ack).await {
        Ok(()) => Ok(()),
        Err(e) => bail!("acking a feed message: {e}"),
    }
}

/// Whether the store refused the events for good (as opposed to a failure worth retrying).
fn permanent(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::EventInClosedDay { .. }
            | StoreError::ConflictingEvent { .. }
            | StoreError::EventIdReused { .. }
            | StoreError::Invalid(_)
            | StoreError::Core(_)
    )
}
