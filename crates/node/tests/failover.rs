//! Failover of two `softstake run` processes on one PostgreSQL store and one shared chain
//! (`softstake simnet`, served over HTTP, counting each operation's on-chain effects):
//!
//! - the leader killed (`abort`, as kill -9) at each journal step;
//! - the leader frozen (SIGSTOP) past its lease at a journal step, the standby taking
//!   over, then the leader continued (SIGCONT): its writes are refused as stale;
//! - the leader's database sessions terminated (`pg_terminate_backend`);
//! - every backend of the store terminated, repeatedly, while plans execute.
//!
//! After each: exactly one on-chain effect per confirmed operation and none for a failed
//! one, no open operation left, no day paid twice, and every closed day paid.

mod common;

use common::*;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

use softstake_core::{Amount, Timestamp};
use softstake_node::api::pb;
use softstake_node::simnet::{Call, RemoteSim};

const TOKENS_F: &str = r#"
[program]
excluded_jurisdictions = ["US"]

[tokens.TST]
chain = "sim"
decimals = 9
base_unit = "nanotst"
min_holding = "1"
cap = "1000"
fee_bps = 1000
unbonding_period_secs = 7200
epoch_secs = 3600
min_delegation = "1"

[tokens.TST.buffer]
approval_threshold_bps = 10000
max_move_per_epoch_bps = 10000
"#;

/// The daemons start the day before the balances arrive, so the accounts they activate
/// are eligible on 2025-05-31 and the plan stakes.
const START: &str = "2025-05-30T08:00:00Z";
const CLOSE: &str = "2025-06-01T00:01:00Z";
const PAY: &str = "2025-06-01T00:06:00Z";

/// The shared chain: a `softstake simnet` process.
struct Simnet {
    child: Child,
    client: RemoteSim,
}

impl Drop for Simnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Simnet {
    async fn start(s: &Setup, port: u16, latency_ms: u64) -> Simnet {
        let child = Command::new(env!("CARGO_BIN_EXE_softstake"))
            .current_dir(s.dir.path())
            .args(["--config", "config.toml", "simnet", "--token", "TST"])
            .args([
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--genesis",
                "2025-05-30T00:00:00Z",
            ])
            .args(["--latency-ms", &latency_ms.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let client = RemoteSim::new("TST", &format!("http://127.0.0.1:{port}")).unwrap();
        let net = Simnet { child, client };
        let start = Instant::now();
        while net.client.call::<Timestamp>(&Call::Now).await.is_err() {
            assert!(start.elapsed() < Duration::from_secs(30), "simnet did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let ten_thousand_tst = Amount(10_000 * 1_000_000_000);
        net.client.call::<()>(&Call::Fund(ten_thousand_tst)).await.unwrap();
        net.advance(START).await;
        net
    }

    async fn advance(&self, to: &str) {
        let t = Timestamp::parse_rfc3339(to).unwrap();
        self.client.call::<()>(&Call::Advance(t)).await.unwrap();
    }

    async fn effects(&self) -> BTreeMap<String, u32> {
        self.client.effects().await.unwrap()
    }
}

fn chain_section(port: u16) -> String {
    format!(
        "[chains.TST]\nadapter = \"sim-remote\"\nrpc_url = \"http://127.0.0.1:{port}\"\nreward_series = \"solana\"\nvalidator_set = \"solana\"\nsync_interval_secs = 1\nseed = 5\n"
    )
}

/// Two daemons on one store and one chain, A started first (so A leads).
struct Pair {
    db: PgDb,
    s: Setup,
    net: Simnet,
    a: Daemon,
    b: Daemon,
    b_grpc: u16,
}

impl Pair {
    /// Starts the chain and both daemons; A gets `drill` as `SOFTSTAKE_CRASH_AT`.
    async fn start(drill: Option<&str>, latency_ms: u64) -> Pair {
        let db = PgDb::new().await;
        let port = free_port();
        let s = Setup::with_chain(&db.url, TOKENS_F, &chain_section(port));
        let net = Simnet::start(&s, port, latency_ms).await;
        let a_db = format!("{}?application_name=softstake-a", db.url);
        let env: Vec<(&str, &str)> = drill.map(|d| ("SOFTSTAKE_CRASH_AT", d)).into_iter().collect();
        let a = s.spawn_full("config.toml", START, "a.log", &a_db, &env);
        wait_ready(&a, s.metrics);
        let (bg, br, bm) = (free_port(), free_port(), free_port());
        s.write_config(bg, br, bm, "config-b.toml");
        let b_db = format!("{}?application_name=softstake-b", db.url);
        let b = s.spawn_full("config-b.toml", START, "b.log", &b_db, &[]);
        wait_ready(&b, bm);
        assert!(
            lease_holder(&db.url).await.contains(&format!("pid {} ", a.child.id())),
            "A leads"
        );
        onboard_with(
            s.grpc,
            &[
                ("alice", "400000000000"),
                ("bob", "300000000000"),
                ("carol", "50000000000"),
            ],
        )
        .await;
        Pair {
            db,
            s,
            net,
            a,
            b,
            b_grpc: bg,
        }
    }

    /// Moves the chain and both daemons' clocks to `to` (a daemon that is gone is skipped).
    async fn set_time(&self, to: &str) {
        self.net.advance(to).await;
        for port in [self.s.grpc, self.b_grpc] {
            // a frozen or dead daemon does not answer: bounded, and skipped
            let _ = tokio::time::timeout(Duration::from_secs(3), async {
                let ch = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
                    .unwrap()
                    .connect()
                    .await
                    .ok()?;
                let mut admin = pb::admin_client::AdminClient::new(authed(ch, Some("t-admin")));
                admin.set_clock(pb::SetClockRequest { now: to.into() }).await.ok()
            })
            .await;
        }
    }

    /// Waits for the survivor to settle and pay, then checks the invariants.
    async fn settle_and_check(&self, survivor: &Daemon) {
        eventually(survivor, 90, "the day closed and every operation resolved", || async {
            let mut c = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
            let closed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM closed_days")
                .fetch_one(&mut c)
                .await
                .unwrap();
            let open: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM operations WHERE state IN ('intent', 'submitted')")
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            let ops: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operations")
                .fetch_one(&mut c)
                .await
                .unwrap();
            closed >= 1 && ops > 0 && open == 0
        })
        .await;
        self.set_time(PAY).await;
        eventually(survivor, 60, "every closed day paid", || async {
            let mut c = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
            let unpaid: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM closed_days c WHERE NOT EXISTS \
                 (SELECT 1 FROM distributions d WHERE d.token = c.token AND d.day = c.day)",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            unpaid == 0
        })
        .await;
        let mut c = sqlx::PgConnection::connect(&self.db.url).await.unwrap();
        let dup: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT token, day, account_id FROM payouts GROUP BY token, day, account_id HAVING COUNT(*) > 1) d",
        )
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(dup, 0, "no day paid twice");
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT idempotency_key, state FROM operations")
            .fetch_all(&mut c)
            .await
            .unwrap();
        let effects = self.net.effects().await;
        let mut confirmed = 0;
        for (key, state) in &rows {
            let n = effects.get(key).copied().unwrap_or(0);
            match state.as_str() {
                "confirmed" | "reconciled" => {
                    confirmed += 1;
                    assert_eq!(n, 1, "{key} is {state} with {n} on-chain effects");
                }
                "failed" => assert_eq!(n, 0, "{key} failed but took effect {n} times"),
                other => panic!("{key} still {other}"),
            }
        }
        assert!(confirmed > 0, "the plan confirmed operations: {rows:?}");
        assert!(
            effects.values().all(|n| *n <= 1),
            "an operation took effect twice: {effects:?}"
        );
    }
}

async fn lease_holder(db_url: &str) -> String {
    let mut c = sqlx::PgConnection::connect(db_url).await.unwrap();
    sqlx::query_scalar::<_, Option<String>>("SELECT holder FROM leases WHERE token = 'TST'")
        .fetch_optional(&mut c)
        .await
        .unwrap()
        .flatten()
        .unwrap_or_default()
}

async fn lease_generation(db_url: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(db_url).await.unwrap();
    sqlx::query_scalar("SELECT generation FROM leases WHERE token = 'TST'")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

/// The process state letter from /proc (`T` when stopped).
fn proc_state(pid: u32) -> char {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next().unwrap_or('?'))
        })
        .unwrap_or('?')
}

async fn wait_until<F: FnMut() -> bool>(secs: u64, what: &str, log: &Daemon, mut f: F) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}; log:\n{}",
            log.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The leader aborts (as kill -9) at `point` of its first operation; the standby takes
/// over after the lease lapses, recovers the journal and finishes.
async fn killed_at(point: &str) {
    let mut p = Pair::start(Some(&format!("abort:{point}")), 0).await;
    p.set_time(CLOSE).await;
    let Pair { a, .. } = &mut p;
    let start = Instant::now();
    while a.child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "A never reached {point}; log:\n{}",
            a.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        a.log_tail().contains("drill: aborting"),
        "A aborted at the drill:\n{}",
        a.log_tail()
    );
    let b_pid = p.b.child.id();
    let url = p.db.url.clone();
    eventually(&p.b, 30, "B takes the lease", || {
        let url = url.clone();
        async move { lease_holder(&url).await.contains(&format!("pid {b_pid} ")) }
    })
    .await;
    p.settle_and_check(&p.b).await;
    assert!(lease_generation(&p.db.url).await >= 2);
    p.db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_leader_killed_after_intent() {
    killed_at("after_intent").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_leader_killed_after_sign() {
    killed_at("after_sign").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_leader_killed_after_submitted() {
    killed_at("after_submitted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_leader_killed_after_broadcast() {
    killed_at("after_broadcast").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_leader_killed_after_confirmed_status() {
    killed_at("after_confirmed_status").await;
}

/// The leader freezes at `point` (SIGSTOP) past its lease; the standby takes over and
/// finishes; the leader is continued (SIGCONT) and every write it tries is refused.
async fn frozen_at(point: &str) {
    let p = Pair::start(Some(&format!("stop:{point}")), 0).await;
    p.set_time(CLOSE).await;
    let a_pid = p.a.child.id();
    wait_until(60, "A to stop itself", &p.a, || proc_state(a_pid) == 'T').await;
    let b_pid = p.b.child.id();
    let url = p.db.url.clone();
    eventually(&p.b, 30, "B takes the lease from the frozen A", || {
        let url = url.clone();
        async move { lease_holder(&url).await.contains(&format!("pid {b_pid} ")) }
    })
    .await;
    // past the frozen attempt's validity too: B must sign anew where A never sent
    p.net.advance("2025-06-01T00:04:00Z").await;
    p.settle_and_check(&p.b).await;
    let before = p.net.effects().await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a_pid as i32),
        nix::sys::signal::Signal::SIGCONT,
    )
    .unwrap();
    wait_until(30, "A to find its lease stale", &p.a, || {
        let log = p.a.log_tail();
        log.contains("drill: continued") && (log.contains("is stale") || log.contains("lease lost"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = p.net.effects().await;
    for (key, n) in &before {
        assert_eq!(after.get(key), Some(n), "the stale leader acted on the chain for {key}");
    }
    p.settle_and_check(&p.b).await;
    assert!(
        lease_holder(&p.db.url).await.contains(&format!("pid {b_pid} ")),
        "B still leads"
    );
    p.db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_frozen_leader_after_sign_is_fenced() {
    frozen_at("after_sign").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_frozen_leader_after_submitted_is_fenced() {
    frozen_at("after_submitted").await;
}

async fn terminate(db: &PgDb, only_app: Option<&str>) -> i64 {
    let mut c = sqlx::PgConnection::connect(&db.admin).await.unwrap();
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = $1 AND pid <> pg_backend_pid() AND ($2 = '' OR application_name = $2)) t",
    )
    .bind(&db.name)
    .bind(only_app.unwrap_or(""))
    .fetch_one(&mut c)
    .await
    .unwrap()
}

/// The leader's database sessions are terminated while its plan executes on a slow
/// chain: its statements fail, it retries, and nothing acts twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_leader_sessions_terminated() {
    let p = Pair::start(None, 150).await;
    p.set_time(CLOSE).await;
    let url = p.db.url.clone();
    eventually(&p.a, 60, "A to start executing", || {
        let url = url.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operations")
                .fetch_one(&mut c)
                .await
                .unwrap();
            n > 0
        }
    })
    .await;
    for _ in 0..3 {
        terminate(&p.db, Some("softstake-a")).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    p.settle_and_check(&p.a).await;
    p.db.drop_db().await;
}

/// Every backend of the store is terminated, again and again, while plans execute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_every_backend_terminated_while_executing() {
    let p = Pair::start(None, 150).await;
    p.set_time(CLOSE).await;
    let mut killed = 0;
    for _ in 0..8 {
        killed += terminate(&p.db, None).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(killed > 0, "no backend was terminated");
    p.settle_and_check(&p.a).await;
    p.db.drop_db().await;
}

/// While a daemon leads the token, mutating CLI commands refuse, naming it; once it is
/// gone and its lease lapsed, the CLI takes the lease (a new generation) and acts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_cli_refuses_while_a_daemon_leads() {
    let mut p = Pair::start(None, 0).await;
    let a_pid = p.a.child.id();
    for args in [
        vec!["close-day", "--day", "2025-05-29", "--token", "TST"],
        vec!["distribute", "--day", "2025-05-29", "--token", "TST"],
        vec!["sync", "--token", "TST"],
        vec!["reconcile", "--token", "TST"],
    ] {
        let err = p.s.cli_fails(&args);
        assert!(
            err.contains("TST is led by softstake run pid") && err.contains(&format!("pid {a_pid} ")),
            "{args:?}: {err}"
        );
    }
    // both daemons gone: the lease lapses and the CLI takes it
    let gen_before = lease_generation(&p.db.url).await;
    for d in [&mut p.a, &mut p.b] {
        d.child.kill().unwrap();
        d.child.wait().unwrap();
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    p.s.cli(&["reconcile", "--token", "TST"]);
    assert!(
        lease_generation(&p.db.url).await > gen_before,
        "the CLI took a new generation"
    );
    assert!(lease_holder(&p.db.url).await.contains("softstake reconcile"));
    p.db.drop_db().await;
}

/// `/readyz` answers ready only once the journal is recovered: a daemon started over a
/// journal with an open operation (its leader aborted after persisting `submitted`) on a
/// slow chain reports ready only when no operation is open any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_ready_only_after_recovery() {
    let mut p = Pair::start(Some("abort:after_submitted"), 300).await;
    // B must not recover it first: stop it
    p.b.child.kill().unwrap();
    p.b.child.wait().unwrap();
    p.set_time(CLOSE).await;
    let start = Instant::now();
    while p.a.child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "A never aborted:\n{}",
            p.a.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open = |url: String| async move {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM operations WHERE state IN ('intent', 'submitted')")
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    assert!(open(p.db.url.clone()).await > 0, "A left an open operation");
    tokio::time::sleep(Duration::from_secs(4)).await; // A's lease lapses
    let (cg, cr, cm) = (free_port(), free_port(), free_port());
    p.s.write_config(cg, cr, cm, "config-c.toml");
    let c = p.s.spawn("config-c.toml", CLOSE, "c.log");
    let mut saw_recovering = false;
    let start = Instant::now();
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "C never ready:\n{}",
            c.log_tail()
        );
        match http_get(cm, "/readyz") {
            Some((200, _)) => break,
            Some((503, body)) => saw_recovering |= body.contains("recovering"),
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        open(p.db.url.clone()).await,
        0,
        "ready before the journal was recovered"
    );
    assert!(saw_recovering, "readyz never answered 503 while recovering");
    drop(c);
    p.db.drop_db().await;
}

/// On SQLite one process writes: while a daemon runs on the file, the CLI's reads work
/// and its writes are refused naming the daemon; a second daemon on the file stays
/// read-only and never leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_second_writer_on_sqlite_is_refused() {
    let s = Setup::new("sqlite://data/store.db");
    let a = s.spawn("config.toml", START, "a.log");
    wait_ready(&a, s.metrics);
    let err = s.cli_fails(&["close-day", "--day", "2025-05-29", "--token", "TST"]);
    assert!(
        err.contains("is open for writing by another process") && err.contains(&format!("pid {} ", a.child.id())),
        "{err}"
    );
    let out = s.cli(&["status", "--token", "TST"]);
    assert!(out.contains("TST"), "reads work: {out}");
    let (bg, br, bm) = (free_port(), free_port(), free_port());
    s.write_config(bg, br, bm, "config-b.toml");
    let b = s.spawn("config-b.toml", START, "b.log");
    eventually(&b, 30, "B logs that it cannot lead", || async {
        b.log_tail().contains("is open for writing by another process")
    })
    .await;
    let (_, metrics_b) = http_get(bm, "/metrics").unwrap_or_default();
    assert!(
        !metrics_b.contains("softstake_leader{token=\"TST\"} 1"),
        "B must not lead:\n{metrics_b}"
    );
}
