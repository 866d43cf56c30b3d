//! Shared harness of the daemon tests: a working folder with a config and free ports,
//! `softstake run` processes with their logs, a PostgreSQL database per test, gRPC
//! clients with bearer tokens, and polling with the daemon's log on failure.

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sqlx::Connection;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use softstake_node::api::pb;
use softstake_node::config::Role;

pub const TOKENS: &str = r#"
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
"#;

/// The in-process simulated chain of TST (state saved in the data folder).
pub const SIM_CHAIN: &str = "[chains.TST]\nadapter = \"sim\"\nreward_series = \"solana\"\nvalidator_set = \"solana\"\nsync_interval_secs = 1\nseed = 5\n";

pub const ROLES: [(&str, Role); 5] = [
    ("t-ingest", Role::Ingest),
    ("t-reader", Role::Reader),
    ("t-treasury", Role::Treasury),
    ("t-allocator", Role::Allocator),
    ("t-admin", Role::Admin),
];

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn sha(t: &str) -> String {
    hex::encode(Sha256::digest(t.as_bytes()))
}

/// A daemon's working folder, config and ports.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub grpc: u16,
    pub rest: u16,
    pub metrics: u16,
    pub db_url: String,
    /// tokens.toml.
    pub tokens: String,
    /// The `[chains.TST]` section and anything after `[service]`\'s clients.
    pub chain: String,
}

impl Setup {
    /// A daemon folder on `db_url` with [`TOKENS`] and the in-process simulated chain.
    pub fn new(db_url: &str) -> Setup {
        Setup::with_chain(db_url, TOKENS, SIM_CHAIN)
    }

    /// A daemon folder on `db_url` with these tokens and `[chains.TST]` section.
    pub fn with_chain(db_url: &str, tokens: &str, chain: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let s = Setup {
            dir,
            grpc: free_port(),
            rest: free_port(),
            metrics: free_port(),
            db_url: db_url.to_string(),
            tokens: tokens.to_string(),
            chain: chain.to_string(),
        };
        s.write_config(s.grpc, s.rest, s.metrics, "config.toml");
        s
    }

    pub fn write_config(&self, grpc: u16, rest: u16, metrics: u16, name: &str) -> PathBuf {
        std::fs::write(self.dir.path().join("tokens.toml"), &self.tokens).unwrap();
        let clients: String = ROLES
            .iter()
            .map(|(t, r)| {
                format!(
                    "[[service.clients]]\nname = \"{t}\"\ntoken_sha256 = \"{}\"\nroles = [\"{}\"]\n",
                    sha(t),
                    format!("{r:?}").to_lowercase()
                )
            })
            .collect();
        let cfg = format!(
            "network = \"test\"\ntokens = \"tokens.toml\"\ndata_dir = \"data\"\n\n[service]\ngrpc_addr = \"127.0.0.1:{grpc}\"\nrest_addr = \"127.0.0.1:{rest}\"\nmetrics_addr = \"127.0.0.1:{metrics}\"\ntick_secs = 1\nlease_ttl_secs = 3\n{clients}\n{}",
            self.chain
        );
        let path = self.dir.path().join(name);
        std::fs::write(&path, cfg).unwrap();
        path
    }

    pub fn spawn(&self, config: &str, clock: &str, log: &str) -> Daemon {
        self.spawn_env(config, clock, log, &[])
    }

    /// `softstake run` with extra environment (e.g. a `SOFTSTAKE_CRASH_AT` drill).
    pub fn spawn_env(&self, config: &str, clock: &str, log: &str, env: &[(&str, &str)]) -> Daemon {
        self.spawn_full(config, clock, log, &self.db_url, env)
    }

    /// `softstake run` on `db_url` (e.g. with its own `application_name`) with `env`.
    pub fn spawn_full(&self, config: &str, clock: &str, log: &str, db_url: &str, env: &[(&str, &str)]) -> Daemon {
        let log_path = self.dir.path().join(log);
        let logf = std::fs::File::create(&log_path).unwrap();
        // Its own process group: when another member of the test's group exits, a group
        // left with a stopped member (a SIGSTOP drill) gets SIGHUP + SIGCONT from the
        // kernel (POSIX orphaned process groups), which would end the frozen daemon.
        let child = Command::new(env!("CARGO_BIN_EXE_softstake"))
            .process_group(0)
            .current_dir(self.dir.path())
            .args(["--config", config, "--db", db_url, "run", "--manual-clock", clock])
            .env("SOFTSTAKE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .unwrap();
        Daemon { child, log: log_path }
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let o = self.run_cli(args);
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Runs the CLI expecting it to fail; returns its stderr.
    pub fn cli_fails(&self, args: &[&str]) -> String {
        let o = self.run_cli(args);
        assert!(
            !o.status.success(),
            "{args:?} succeeded: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    }

    /// Runs the CLI and returns its output, whatever its exit status.
    #[allow(dead_code)]
    pub fn run_cli_raw(&self, args: &[&str]) -> std::process::Output {
        self.run_cli(args)
    }

    fn run_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_softstake"))
            .current_dir(self.dir.path())
            .args(["--config", "config.toml", "--db", &self.db_url])
            .args(args)
            .output()
            .unwrap()
    }
}

pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
}

impl Daemon {
    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        s.lines()
            .rev()
            .take(400)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.0 GET (status, body) for /metrics and /readyz.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http_request(port, path, &[]).map(|(status, _, body)| (status, body))
}

/// Minimal HTTP/1.0 GET with extra headers: status, response head, body.
pub fn http_request(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let extra: String = headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n{extra}\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((buf.as_str(), ""));
    Some((status, head.to_string(), body.to_string()))
}

pub fn wait_ready(d: &Daemon, metrics_port: u16) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Some((200, _)) = http_get(metrics_port, "/readyz") {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("daemon not ready in 60 s; log:\n{}", d.log_tail());
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.0 {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

pub type Authed = InterceptedService<Channel, Bearer>;

pub async fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

pub fn authed(ch: Channel, token: Option<&str>) -> Authed {
    InterceptedService::new(ch, Bearer(token.map(|t| format!("Bearer {t}").parse().unwrap())))
}

pub async fn set_clock(port: u16, now: &str) {
    let mut admin = pb::admin_client::AdminClient::new(authed(channel(port).await, Some("t-admin")));
    admin.set_clock(pb::SetClockRequest { now: now.into() }).await.unwrap();
}

pub async fn pool_status(port: u16) -> pb::PoolStatus {
    let mut t = pb::treasury_client::TreasuryClient::new(authed(channel(port).await, Some("t-reader")));
    t.get_pool_status(pb::GetPoolStatusRequest { token: "TST".into() })
        .await
        .unwrap()
        .into_inner()
        .tokens
        .remove(0)
}

/// Polls `f` until it holds (or panics with the daemon's log after `secs`).
pub async fn eventually<F, Fut>(d: &Daemon, secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("timed out waiting for {what}; log:\n{}", d.log_tail());
}

/// Creates a PostgreSQL database for the test and drops it at the end.
pub struct PgDb {
    pub admin: String,
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub async fn new() -> PgDb {
        let admin = std::env::var("SOFTSTAKE_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!(
            "softstake_svc_{}_{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ u128::from(rand_suffix())
        );
        let mut c = sqlx::PgConnection::connect(&admin)
            .await
            .expect("PostgreSQL is required (SOFTSTAKE_TEST_PG_URL)");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        PgDb { admin, name, url }
    }

    pub async fn drop_db(&self) {
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut c)
                .await;
        }
    }
}

pub fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}

/// Activates alice (DE), bob (FR), carol (US) and streams their balances, twice.
pub async fn onboard(port: u16) {
    onboard_with(port, &[("alice", "100"), ("bob", "300"), ("carol", "50")]).await
}

/// Activates alice (DE), bob (FR), carol (US) and streams `balances` (account, base
/// units) at 2025-05-31T09:00Z, twice.
pub async fn onboard_with(port: u16, holdings: &[(&str, &str)]) {
    let ch = channel(port).await;
    let mut accounts = pb::accounts_client::AccountsClient::new(authed(ch.clone(), Some("t-ingest")));
    for (id, j) in [("alice", "DE"), ("bob", "FR"), ("carol", "US")] {
        accounts
            .activate(pb::ActivateRequest {
                account_id: id.into(),
                jurisdiction: j.into(),
            })
            .await
            .unwrap();
    }
    let mut balances = pb::balances_client::BalancesClient::new(authed(ch, Some("t-ingest")));
    let events: Vec<pb::BalanceEvent> = holdings
        .iter()
        .enumerate()
        .map(|(i, (a, b))| pb::BalanceEvent {
            event_id: format!("ev-{i}"),
            account_id: a.to_string(),
            token: "TST".into(),
            balance_units: b.to_string(),
            ts: "2025-05-31T09:00:00Z".into(),
        })
        .collect();
    let s = balances
        .ingest_balances(tokio_stream::iter(events.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((s.received, s.inserted, s.duplicates), (3, 3, 0));
    let again = balances
        .ingest_balances(tokio_stream::iter(events))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((again.inserted, again.duplicates), (0, 3), "idempotent by event id");
}
