//! The service's security settings against real `softstake run` processes: the REST API
//! over TLS when `service.tls_cert`/`tls_key` are set (and no plaintext beside it), and
//! the refusal to start a network with real chains on unsafe settings.

mod common;

use common::*;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A self-signed certificate for `localhost` and 127.0.0.1 and its key (PEM), made by the
/// `openssl` command line (Debian's `openssl`, installed by `scripts/setup.sh`).
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .output()
        .expect("openssl (scripts/setup.sh installs it)");
    assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stderr));
    (cert, key)
}

/// One HTTP/1.1 GET over TLS trusting only `ca`; the raw response.
async fn tls_get(port: u16, ca: &Path, path: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake with the REST API");
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut out))
        .await
        .expect("the REST API answers within 10 s")
        .ok();
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_rest_serves_tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let s = Setup::new(&format!("sqlite://{}/tls.db", dir.path().display()));
    let (cert, key) = self_signed(s.dir.path());
    let path = s.dir.path().join("config.toml");
    let text = std::fs::read_to_string(&path).unwrap().replacen(
        "[service]\n",
        &format!(
            "[service]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
        1,
    );
    std::fs::write(&path, text).unwrap();
    let d = s.spawn("config.toml", "2025-05-31T08:00:00Z", "tls.log");
    wait_ready(&d, s.metrics);
    // over TLS: the API answers (no key: Binance's -2015)
    let answer = tls_get(s.rest, &cert, "/sapi/v1/soft-staking/list").await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}\n{}", d.log_tail());
    assert!(answer.contains("-2015"), "{answer}");
    // plaintext on the same port gets no HTTP answer
    let plain = {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", s.rest)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(c, "GET /sapi/v1/soft-staking/list HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).to_string()
    };
    assert!(!plain.contains("-2015"), "plaintext was served: {plain}");
}

#[test]
fn fail_real_network_refuses_unsafe_settings() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tokens.toml"), TOKENS).unwrap();
    // a real adapter, the repository's devnet-admin token, gRPC on every interface, no TLS
    let cfg = format!(
        "network = \"mainnet\"\ntokens = \"tokens.toml\"\ndata_dir = \"data\"\n\n[service]\ngrpc_addr = \"0.0.0.0:{}\"\nrest_addr = \"127.0.0.1:{}\"\nmetrics_addr = \"127.0.0.1:{}\"\n\n[[service.clients]]\nname = \"devnet-admin\"\ntoken_sha256 = \"{}\"\nroles = [\"admin\"]\n\n[chains.TST]\nadapter = \"tron\"\nrpc_url = \"http://127.0.0.1:1\"\n",
        free_port(),
        free_port(),
        free_port(),
        softstake_node::config::PUBLIC_TOKEN_SHA256[0],
    );
    std::fs::write(dir.path().join("mainnet.toml"), cfg).unwrap();
    let started = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_softstake"))
        .current_dir(dir.path())
        .args([
            "--config",
            "mainnet.toml",
            "--db",
            &format!("sqlite://{}/m.db", dir.path().display()),
        ])
        .args(["run", "--manual-clock", "2025-05-31T08:00:00Z"])
        .output()
        .unwrap();
    assert!(!o.status.success(), "a mainnet daemon started on unsafe settings");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused before starting anything"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    for why in [
        "refusing to start",
        "grpc_addr",
        "TLS is off",
        "devnet-admin",
        "--manual-clock",
    ] {
        assert!(err.contains(why), "{why:?} missing from: {err}");
    }
    assert!(!dir.path().join("m.db").exists(), "nothing was created");
}

/// `softstake_scheduler_cycles_total` from the daemon's /metrics.
fn cycles(metrics_port: u16) -> f64 {
    let (_, body) = http_get(metrics_port, "/metrics").expect("metrics answer");
    body.lines()
        .find(|l| l.starts_with("softstake_scheduler_cycles_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// One plain REST GET with an API key header; status, the used-weight header, body.
fn rest_get(port: u16, path: &str) -> Option<(u16, Option<String>, String)> {
    let (status, head, body) = http_request(port, path, &[("X-MBX-APIKEY", "not-a-key")])?;
    let used = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("x-mbx-used-weight-1m:")
            .map(|v| v.trim().to_string())
    });
    Some((status, used, body))
}

/// Floods both APIs from several clients for a bounded time and count: the per-IP REST
/// limit answers 429/-1003 with the used weight on every answer, the per-client gRPC limit
/// RESOURCE_EXHAUSTED, and the daemon's schedule keeps ticking meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn success_schedule_keeps_its_pace_under_an_api_flood() {
    const FLOOD: Duration = Duration::from_secs(8);
    const MAX_REQUESTS_PER_CLIENT: usize = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let s = Setup::new(&format!("sqlite://{}/flood.db", dir.path().display()));
    let d = s.spawn("config.toml", "2025-05-31T08:00:00Z", "flood.log");
    wait_ready(&d, s.metrics);
    let before = cycles(s.metrics);
    let started = Instant::now();
    let mut rest = Vec::new();
    for _ in 0..3 {
        let port = s.rest;
        rest.push(tokio::task::spawn_blocking(move || {
            let mut seen = Vec::new();
            while started.elapsed() < FLOOD && seen.len() < MAX_REQUESTS_PER_CLIENT {
                if let Some(r) = rest_get(port, "/sapi/v1/soft-staking/list?timestamp=1&signature=00") {
                    seen.push(r);
                }
            }
            seen
        }));
    }
    let mut grpc = Vec::new();
    for _ in 0..3 {
        let port = s.grpc;
        grpc.push(tokio::spawn(async move {
            let mut t = softstake_node::api::pb::treasury_client::TreasuryClient::new(authed(
                channel(port).await,
                Some("t-reader"),
            ));
            let mut codes = Vec::new();
            while started.elapsed() < FLOOD && codes.len() < MAX_REQUESTS_PER_CLIENT {
                let r = t
                    .get_pool_status(softstake_node::api::pb::GetPoolStatusRequest { token: "TST".into() })
                    .await;
                codes.push(r.map(|_| tonic::Code::Ok).unwrap_or_else(|e| e.code()));
            }
            codes
        }));
    }
    let mut answers = Vec::new();
    for h in rest {
        answers.extend(h.await.unwrap());
    }
    let mut codes = Vec::new();
    for h in grpc {
        codes.extend(h.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ran = cycles(s.metrics) - before;
    // tick_secs = 1: at least half the ticks ran while the APIs were flooded
    assert!(
        ran >= (elapsed / 2.0).floor(),
        "{ran} cycles in {elapsed:.1} s under load\n{}",
        d.log_tail()
    );
    assert!(answers.len() > 10, "{} REST answers", answers.len());
    assert!(
        answers.iter().all(|(_, used, _)| used.is_some()),
        "X-MBX-USED-WEIGHT-1M on every answer"
    );
    let limited: Vec<_> = answers.iter().filter(|(st, _, _)| *st == 429).collect();
    assert!(!limited.is_empty(), "the per-IP weight limit answered 429");
    assert!(limited
        .iter()
        .all(|(_, used, b)| b.contains("-1003") && used.as_deref() == Some("12000")));
    assert!(
        answers.iter().any(|(st, _, b)| *st == 401 && b.contains("-2015")),
        "answers before the limit"
    );
    assert!(codes.contains(&tonic::Code::Ok), "gRPC served");
    assert!(
        codes.contains(&tonic::Code::ResourceExhausted),
        "the per-client gRPC limit answered"
    );
    assert!(
        codes
            .iter()
            .all(|c| matches!(c, tonic::Code::Ok | tonic::Code::ResourceExhausted)),
        "{:?}",
        codes
            .iter()
            .filter(|c| !matches!(c, tonic::Code::Ok | tonic::Code::ResourceExhausted))
            .take(5)
            .collect::<Vec<_>>()
    );
}
