//! The balance feed against the real NATS JetStream server (127.0.0.1:4222, or
//! `SOFTSTAKE_TEST_NATS_URL`), on SQLite and on PostgreSQL: a publisher, duplicates and
//! poison messages, a consumer killed between its commit and its acks, a second consumer
//! that takes over; every event is counted once and every poison message is
//! dead-lettered with its error.

use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use sqlx::Connection;

use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp, TokenRegistry};
use softstake_node::config::NatsFeedConfig;
use softstake_node::feed::{Feed, InjectedCrash};
use softstake_store::Store;

const EVENTS: usize = 300;

fn nats_url() -> String {
    std::env::var("SOFTSTAKE_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn registry() -> TokenRegistry {
    TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap()
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("T{}_{nanos}", std::process::id())
}

fn config(tag: &str) -> NatsFeedConfig {
    NatsFeedConfig {
        url: nats_url(),
        stream: format!("SOFTSTAKE_{tag}"),
        subject_prefix: format!("test.{tag}.balances"),
        consumer: "ingest".into(),
        batch: 64,
        fetch_wait_ms: 200,
        ack_wait_secs: 1,
        dead_letter_subject: format!("test.{tag}.dead"),
        tokens: None,
    }
}

fn body(id: &str, ts: &str, account: &str, token: &str, balance: &str) -> String {
    format!(r#"{{"event_id":"{id}","ts":"{ts}","account_id":"{account}","token":"{token}","balance":"{balance}"}}"#)
}

async fn publish_all(js: &jetstream::Context, cfg: &NatsFeedConfig) -> usize {
    let subject = format!("{}.SOL", cfg.subject_prefix);
    let mut bodies = Vec::new();
    for i in 0..EVENTS {
        let ts = format!("2025-06-02T{:02}:{:02}:{:02}Z", i / 3600 % 24, i / 60 % 60, i % 60);
        bodies.push(body(
            &format!("e-{i}"),
            &ts,
            &format!("acct-{}", i % 40),
            "SOL",
            &format!("{}.5", i),
        ));
    }
    // Duplicates: the exchange re-sends some events (same id).
    for i in (0..EVENTS).step_by(7) {
        bodies.push(bodies[i].clone());
    }
    let poison = vec![
        "{not json".to_string(),
        body("p-1", "2025-06-02T00:00:00Z", &"x".repeat(200), "SOL", "1"),
        body("p-2", "2025-06-02T00:00:00Z", "acct-1", "BNB", "1"),
        body("p-3", "2025-06-02T00:00:00Z", "acct-1", "SOL", "-4"),
        // A late event: its day is already closed.
        body("p-4", "2025-06-01T12:00:00Z", "acct-1", "SOL", "4"),
    ];
    let n_poison = poison.len();
    // Interleave the poison with the events.
    for (k, p) in poison.into_iter().enumerate() {
        bodies.insert(k * 61 + 5, p);
    }
    for b in bodies {
        js.publish(subject.clone(), b.into()).await.unwrap().await.unwrap();
    }
    n_poison
}

async fn count_events(url: &str) -> i64 {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM balance_events WHERE ts >= $1")
            .bind(Day::parse("2025-06-02").unwrap().start().0)
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM balance_events WHERE ts >= $1")
            .bind(Day::parse("2025-06-02").unwrap().start().0)
            .fetch_one(&mut c)
            .await
            .unwrap()
    }
}

async fn scenario(db_url: String) {
    let reg = registry();
    let store = Store::open(&db_url).await.unwrap();
    // 2025-06-01 is closed before the feed starts.
    store
        .ingest_events(&[BalanceEvent {
            ts: Timestamp::parse_rfc3339("2025-06-01T01:00:00Z").unwrap(),
            account_id: "acct-1".into(),
            token: "SOL".into(),
            balance: Amount(1),
        }])
        .await
        .unwrap();
    store
        .close_day(
            &reg,
            "SOL",
            Day::parse("2025-06-01").unwrap(),
            Timestamp::parse_rfc3339("2025-06-02T00:00:01Z").unwrap(),
            100,
        )
        .await
        .unwrap();
    let tag = unique();
    let cfg = config(&tag);
    let client = async_nats::connect(&cfg.url).await.unwrap_or_else(|e| {
        panic!(
            "NATS with JetStream is required at {} (SOFTSTAKE_TEST_NATS_URL): {e}",
            cfg.url
        )
    });
    let js = jetstream::new(client);
    // The first consumer creates the streams; it is killed after its second commit.
    let first = Feed::connect(&cfg, &reg, store.clone()).await.unwrap();
    let n_poison = publish_all(&js, &cfg).await;
    let consumer = first.consumer("SOL").await.unwrap();
    let one = first.step(&consumer, "SOL").await.unwrap();
    assert_eq!(one.fetched, 64);
    first.crash_after_next_commit();
    let crashed = first.step(&consumer, "SOL").await;
    assert!(
        crashed
            .as_ref()
            .err()
            .is_some_and(|e| e.downcast_ref::<InjectedCrash>().is_some()),
        "{crashed:?}"
    );
    drop(consumer);
    drop(first);
    // A new consumer takes over: the crashed batch is delivered again after ack_wait.
    let second = Feed::connect(&cfg, &reg, store.clone()).await.unwrap();
    let consumer = second.consumer("SOL").await.unwrap();
    let (mut inserted, mut duplicates, mut dead) = (one.inserted, one.duplicates, one.dead);
    let mut done = false;
    for _ in 0..300 {
        let r = second.step(&consumer, "SOL").await.unwrap();
        inserted += r.inserted;
        duplicates += r.duplicates;
        dead += r.dead;
        let mut c = consumer.clone();
        let info = c.info().await.unwrap();
        if r.fetched == 0 && info.num_pending == 0 && info.num_ack_pending == 0 {
            done = true;
            break;
        }
    }
    assert!(done, "the feed was not drained");
    // Every event once. The crashed step's events were committed but not acked: delivered
    // again, they count as duplicates, as do the re-sent ones.
    assert_eq!(count_events(&db_url).await, EVENTS as i64);
    let resent = EVENTS.div_ceil(7);
    assert_eq!(
        (inserted + duplicates) as usize,
        EVENTS + resent,
        "inserted {inserted}, duplicates {duplicates}"
    );
    assert!(
        (inserted as usize) < EVENTS,
        "the crashed step had committed events before its acks"
    );
    assert!(dead as usize <= n_poison);
    let dead_stream = js.get_stream(format!("{}_DEAD", cfg.stream)).await.unwrap();
    let dlq = dead_stream
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("check".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut msgs = dlq
        .fetch()
        .max_messages(100)
        .expires(Duration::from_millis(500))
        .messages()
        .await
        .unwrap();
    let mut errors = Vec::new();
    while let Some(m) = msgs.next().await {
        let m = m.unwrap();
        errors.push(
            m.headers
                .as_ref()
                .and_then(|h| h.get("Softstake-Error"))
                .map(|v| v.to_string())
                .unwrap_or_default(),
        );
    }
    assert_eq!(errors.len(), n_poison, "{errors:?}");
    for want in [
        "not a feed message",
        "account_id",
        "token \"BNB\"",
        "balance",
        "closed day",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "no dead letter for {want:?}: {errors:?}"
        );
    }
    js.delete_stream(&cfg.stream).await.unwrap();
    js.delete_stream(format!("{}_DEAD", cfg.stream)).await.unwrap();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_feed_counts_every_event_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(format!("sqlite://{}/feed.db", dir.path().display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_feed_counts_every_event_once_on_postgres() {
    let admin =
        std::env::var("SOFTSTAKE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("softstake_feed_{}", unique().to_lowercase());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let r = tokio::spawn(scenario(url)).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await
        .unwrap();
    if let Err(e) = r {
        std::panic::resume_unwind(e.into_panic());
    }
}
