//! `softstake run` as a service: started as a process against the real PostgreSQL (each
//! test creates and drops its own database) with a simulated chain, driven only through
//! its APIs. Covers the daily cycle over two days with an approved plan, metrics, leader
//! failover with no double payout, the role check of every method, and the
//! Binance-compatible REST API with the official Python client.

mod common;

use common::*;

use std::path::Path;
use std::process::Command;

use sqlx::Connection;
use tonic::{Code, Status};

use softstake_node::api::auth::{roles_for, METHODS};
use softstake_node::api::pb;
use softstake_node::config::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_daemon_runs_two_days_through_the_api() {
    let db = PgDb::new().await;
    let s = Setup::new(&db.url);
    let d = s.spawn("config.toml", "2025-05-31T08:00:00Z", "a.log");
    wait_ready(&d, s.metrics);
    onboard(s.grpc).await;
    // bad input is refused with the field named
    let mut balances = pb::balances_client::BalancesClient::new(authed(channel(s.grpc).await, Some("t-ingest")));
    let bad = pb::BalanceEvent {
        event_id: "x".into(),
        account_id: "alice".into(),
        token: "TST".into(),
        balance_units: "-1".into(),
        ts: "2025-05-31T10:00:00Z".into(),
    };
    let e = balances
        .ingest_balances(tokio_stream::iter(vec![bad]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("events[0].balance_units"), "{}", e.message());

    // The activation day closes with nothing eligible.
    set_clock(s.grpc, "2025-06-01T00:10:00Z").await;
    eventually(&d, 30, "2025-05-31 closed", || async {
        pool_status(s.grpc).await.last_closed_day == "2025-05-31"
    })
    .await;
    // The next day alice and bob are eligible (carol is a US person): the plan to stake
    // needs approval.
    set_clock(s.grpc, "2025-06-02T00:10:00Z").await;
    let mut treasury = pb::treasury_client::TreasuryClient::new(authed(channel(s.grpc).await, Some("t-treasury")));
    let proposed = std::sync::Arc::new(std::sync::Mutex::new(None));
    eventually(&d, 30, "a proposed plan", || {
        let mut t = treasury.clone();
        let slot = proposed.clone();
        async move {
            let plans = t
                .list_plans(pb::ListPlansRequest {
                    token: "TST".into(),
                    limit: 10,
                })
                .await
                .unwrap()
                .into_inner()
                .plans;
            let found = plans.into_iter().find(|p| p.status == "proposed");
            let got = found.is_some();
            *slot.lock().unwrap() = found;
            got
        }
    })
    .await;
    let plan = proposed.lock().unwrap().clone().unwrap();
    assert!(plan.needs_approval && !plan.operations.is_empty());
    let approved = treasury
        .approve_plan(pb::ApprovePlanRequest {
            plan_id: plan.plan_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (approved.status.as_str(), approved.approved_by.as_str()),
        ("approved", "t-treasury")
    );
    eventually(&d, 30, "the plan's delegations confirmed", || {
        let mut t = treasury.clone();
        async move {
            let ops = t
                .list_operations(pb::ListOperationsRequest {
                    token: "TST".into(),
                    limit: 50,
                })
                .await
                .unwrap()
                .into_inner()
                .operations;
            !ops.is_empty() && ops.iter().all(|o| o.state == "confirmed" || o.state == "reconciled")
        }
    })
    .await;
    // The morning after, the rewards realized on 2025-06-02 are paid.
    set_clock(s.grpc, "2025-06-03T00:10:00Z").await;
    let mut rewards = pb::rewards_client::RewardsClient::new(authed(channel(s.grpc).await, Some("t-reader")));
    let history = |who: &'static str| {
        let mut r = rewards.clone();
        async move {
            r.list_distributions(pb::ListDistributionsRequest {
                account_id: who.into(),
                token: String::new(),
                page_size: 10,
                page_token: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .rows
        }
    };
    eventually(&d, 30, "2025-06-02 distributed", || async {
        history("alice").await.iter().any(|r| r.day == "2025-06-02")
    })
    .await;
    let alice = history("alice").await;
    let bob = history("bob").await;
    assert!(history("carol").await.is_empty(), "excluded jurisdiction is never paid");
    let reward = |rows: &[pb::Distribution]| -> f64 {
        rows.iter()
            .find(|r| r.day == "2025-06-02")
            .unwrap()
            .reward_units
            .parse()
            .unwrap()
    };
    assert!(reward(&alice) > 0.0, "alice: {alice:?}");
    let ratio = reward(&bob) / reward(&alice);
    assert!((ratio - 3.0).abs() < 0.01, "bob holds 3× alice: {ratio}");
    // pagination
    let page = rewards
        .list_distributions(pb::ListDistributionsRequest {
            account_id: "alice".into(),
            token: "TST".into(),
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.rows.len(), 1);
    assert!(!page.next_page_token.is_empty());
    let apr = rewards
        .get_apr(pb::GetAprRequest { token: "TST".into() })
        .await
        .unwrap()
        .into_inner()
        .aprs;
    assert_eq!(apr[0].token, "TST");
    // metrics
    let (code, body) = http_get(s.metrics, "/metrics").unwrap();
    assert_eq!(code, 200);
    for m in [
        "softstake_pool_custodial{token=\"TST\"} 450",
        "softstake_leader{token=\"TST\"} 1",
        "softstake_staked{",
        "softstake_operations{",
        "softstake_rpc_latency_seconds",
        "softstake_day_close_seconds",
        "softstake_apr{",
    ] {
        assert!(body.contains(m), "metric {m} missing:\n{body}");
    }
    // the Binance-compatible API with the official client
    binance_client(&s, "alice").await;
    drop(d);
    db.drop_db().await;
}

async fn binance_client(s: &Setup, account: &str) {
    let out = s.cli(&["api-key", "create", "--account", account]);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("api_key "))
        .unwrap()
        .trim()
        .to_string();
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret "))
        .unwrap()
        .trim()
        .to_string();
    let python = std::env::var("SOFTSTAKE_PYTHON")
        .unwrap_or_else(|_| format!("{}/.cache/softstake/venv/bin/python", std::env::var("HOME").unwrap()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/binance/client.py");
    let o = Command::new(&python)
        .arg(script)
        .args([&format!("http://127.0.0.1:{}", s.rest), &key, &secret, "TST"])
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e} (scripts/setup.sh installs the client)"));
    assert!(
        o.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["set"]["success"], true);
    let row = v["list_asset"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["asset"] == "TST")
        .cloned()
        .unwrap();
    assert_eq!(
        (row["minAmount"].as_str(), row["maxCap"].as_str()),
        (Some("1"), Some("1000"))
    );
    assert!(
        row["totalProfit"].as_str().unwrap().parse::<f64>().unwrap() > 0.0,
        "{row}"
    );
    assert_eq!(v["list"]["status"], true);
    let rewards = v["rewards"]["rows"].as_array().unwrap();
    assert!(!rewards.is_empty(), "{v}");
    assert_eq!(rewards[0]["rewardAsset"], "TST");
    assert!(rewards[0]["time"].as_i64().unwrap() > 0);
    assert_eq!(v["retry_same_url"][1]["success"], true);
    assert_eq!(v["retry_same_url"][2], 400, "a replayed signed URL is refused: {v}");
    assert_eq!(v["retry_same_url"][3]["code"], -1022);
    assert_eq!(v["set_again"]["success"], true);
    assert_eq!(v["duplicate"][0], 400);
    assert_eq!(v["duplicate"][1]["code"], -1101, "{v}");
    assert_eq!(v["page_overflow"][1]["code"], -1101, "{v}");
    assert_eq!(v["time_overflow"][1]["code"], -1100, "{v}");
    assert!(v["bad_signature"].as_str().unwrap().contains("-1022"), "{v}");
    assert_eq!(v["stale"][0], 400);
    assert_eq!(v["stale"][1]["code"], -1021);
    assert_eq!(v["bad_key"][0], 401);
    assert_eq!(v["bad_key"][1]["code"], -2015);
    assert!(v["bad_key_client"].as_str().unwrap().contains("-2015"), "{v}");
    // a signed request works until the key is revoked, then it is refused as unknown
    let (status, body) = signed_get(s.rest, &key, &secret, "/sapi/v1/soft-staking/list");
    assert_eq!(status, 200, "{body}");
    let listed = s.cli(&["api-key", "list", "--account", account]);
    assert!(listed.contains(&key) && listed.contains("active"), "{listed}");
    s.cli(&["api-key", "revoke", &key]);
    let listed = s.cli(&["api-key", "list", "--account", account]);
    assert!(listed.contains("revoked"), "{listed}");
    assert!(!listed.contains(&secret), "list never prints a secret");
    let (status, body) = signed_get(s.rest, &key, &secret, "/sapi/v1/soft-staking/list");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("-2015"), "{body}");
}

/// A GET signed as Binance's `USER_DATA` endpoints are (fresh timestamp); status and body.
fn signed_get(port: u16, key: &str, secret: &str, path: &str) -> (u16, String) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let q = format!("timestamp={now_ms}");
    let sig = softstake_node::api::binance::sign(secret, &q);
    let (status, _, body) = http_request(port, &format!("{path}?{q}&signature={sig}"), &[("X-MBX-APIKEY", key)])
        .expect("the REST API answers");
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_standby_finishes_the_day_after_the_leader_dies() {
    let db = PgDb::new().await;
    let s = Setup::new(&db.url);
    let mut a = s.spawn("config.toml", "2025-05-31T08:00:00Z", "a.log");
    wait_ready(&a, s.metrics);
    let (bg, br, bm) = (free_port(), free_port(), free_port());
    s.write_config(bg, br, bm, "config-b.toml");
    let b = s.spawn("config-b.toml", "2025-05-31T08:00:00Z", "b.log");
    wait_ready(&b, bm);
    onboard(s.grpc).await;
    for port in [s.grpc, bg] {
        set_clock(port, "2025-06-01T00:01:00Z").await;
    }
    // the leader closes the day; the standby only watches
    eventually(&a, 30, "A closes 2025-05-31", || async {
        pool_status(bg).await.last_closed_day == "2025-05-31"
    })
    .await;
    let (_, metrics_b) = http_get(bm, "/metrics").unwrap();
    assert!(
        metrics_b.contains("softstake_leader{token=\"TST\"} 0"),
        "B is standby:\n{metrics_b}"
    );
    // the leader dies before the payout window (00:05)
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    set_clock(bg, "2025-06-01T00:06:00Z").await;
    eventually(&b, 60, "B takes over the lease", || async {
        http_get(bm, "/metrics").is_some_and(|(_, m)| m.contains("softstake_leader{token=\"TST\"} 1"))
    })
    .await;
    // day 2 runs on B alone; each day is paid exactly once
    set_clock(bg, "2025-06-02T00:10:00Z").await;
    eventually(&b, 30, "2025-06-01 closed and paid", || async {
        pool_status(bg).await.last_closed_day == "2025-06-01"
    })
    .await;
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    eventually(&b, 30, "2025-06-01 distributed", || {
        let url = db.url.clone();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let n: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM distributions WHERE token = 'TST' AND day = '2025-06-01'")
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
            n == 1
        }
    })
    .await;
    let closed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM closed_days")
        .fetch_one(&mut c)
        .await
        .unwrap();
    let paid: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM distributions")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(closed, paid, "every closed day paid once");
    let dup: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM (SELECT token, day, account_id FROM payouts GROUP BY token, day, account_id HAVING COUNT(*) > 1) d")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(dup, 0, "no double payout");
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM operations WHERE state IN ('intent', 'submitted')")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(open, 0, "the standby resolved every operation");
    let mut rewards = pb::rewards_client::RewardsClient::new(authed(channel(bg).await, Some("t-reader")));
    rewards.get_apr(pb::GetAprRequest::default()).await.unwrap();
    drop(b);
    db.drop_db().await;
}

/// Calls `method` with `token` and returns the status code (OK when the call passed the
/// authorization layer, whatever the handler then answered).
async fn call(port: u16, method: &str, token: Option<&str>) -> Code {
    let ch = authed(channel(port).await, token);
    let code = |r: Result<(), Status>| match r {
        Ok(()) => Code::Ok,
        Err(s) => s.code(),
    };
    let m = method.rsplit('/').next().unwrap();
    let service = method.trim_start_matches("/softstake.v1.").split('/').next().unwrap();
    match (service, m) {
        ("Accounts", "Activate") => code(
            pb::accounts_client::AccountsClient::new(ch)
                .activate(pb::ActivateRequest {
                    account_id: "zed".into(),
                    jurisdiction: "DE".into(),
                })
                .await
                .map(|_| ()),
        ),
        ("Accounts", "Deactivate") => code(
            pb::accounts_client::AccountsClient::new(ch)
                .deactivate(pb::DeactivateRequest {
                    account_id: "zed".into(),
                })
                .await
                .map(|_| ()),
        ),
        ("Accounts", "GetAccount") => code(
            pb::accounts_client::AccountsClient::new(ch)
                .get_account(pb::GetAccountRequest {
                    account_id: "zed".into(),
                })
                .await
                .map(|_| ()),
        ),
        ("Balances", "IngestBalances") => code(
            pb::balances_client::BalancesClient::new(ch)
                .ingest_balances(tokio_stream::iter(Vec::<pb::BalanceEvent>::new()))
                .await
                .map(|_| ()),
        ),
        ("Rewards", "ListDistributions") => code(
            pb::rewards_client::RewardsClient::new(ch)
                .list_distributions(pb::ListDistributionsRequest {
                    account_id: "zed".into(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
        ),
        ("Rewards", "GetApr") => code(
            pb::rewards_client::RewardsClient::new(ch)
                .get_apr(pb::GetAprRequest::default())
                .await
                .map(|_| ()),
        ),
        ("Treasury", "GetPoolStatus") => code(
            pb::treasury_client::TreasuryClient::new(ch)
                .get_pool_status(pb::GetPoolStatusRequest::default())
                .await
                .map(|_| ()),
        ),
        ("Treasury", "ListPlans") => code(
            pb::treasury_client::TreasuryClient::new(ch)
                .list_plans(pb::ListPlansRequest::default())
                .await
                .map(|_| ()),
        ),
        ("Treasury", "ApprovePlan") => code(
            pb::treasury_client::TreasuryClient::new(ch)
                .approve_plan(pb::ApprovePlanRequest { plan_id: "nope".into() })
                .await
                .map(|_| ()),
        ),
        ("Treasury", "RejectPlan") => code(
            pb::treasury_client::TreasuryClient::new(ch)
                .reject_plan(pb::RejectPlanRequest {
                    plan_id: "nope".into(),
                    reason: "r".into(),
                })
                .await
                .map(|_| ()),
        ),
        ("Treasury", "AcknowledgeDrift") => code(
            pb::treasury_client::TreasuryClient::new(ch)
                .acknowledge_drift(pb::AcknowledgeDriftRequest { alert_id: 999 })
                .await
                .map(|_| ()),
        ),
        ("Treasury", "ListOperations") => code(
            pb::treasury_client::TreasuryClient::new(ch)
                .list_operations(pb::ListOperationsRequest::default())
                .await
                .map(|_| ()),
        ),
        ("Admin", "SetClock") => code(
            pb::admin_client::AdminClient::new(ch)
                .set_clock(pb::SetClockRequest {
                    now: "2025-05-31T08:00:00Z".into(),
                })
                .await
                .map(|_| ()),
        ),
        other => panic!("no call for {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_every_method_checks_roles() {
    let dir = tempfile::tempdir().unwrap();
    let s = Setup::new(&format!("sqlite://{}/roles.db", dir.path().display()));
    let d = s.spawn("config.toml", "2025-05-31T08:00:00Z", "roles.log");
    wait_ready(&d, s.metrics);
    let mut seen = std::collections::BTreeSet::new();
    for method in METHODS {
        seen.insert(method);
        let allowed = roles_for(method).unwrap();
        assert_eq!(
            call(s.grpc, method, None).await,
            Code::Unauthenticated,
            "{method} without a token"
        );
        assert_eq!(
            call(s.grpc, method, Some("t-wrong")).await,
            Code::Unauthenticated,
            "{method} with an unknown token"
        );
        for (token, role) in ROLES {
            let got = call(s.grpc, method, Some(token)).await;
            let may = role == Role::Admin || allowed.contains(&role);
            if may {
                assert!(
                    !matches!(got, Code::PermissionDenied | Code::Unauthenticated),
                    "{method} as {role:?}: {got:?}"
                );
            } else {
                assert_eq!(got, Code::PermissionDenied, "{method} as {role:?}");
            }
        }
    }
    assert_eq!(seen.len(), 13, "every method of the proto");
    // health and reflection are open
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel(s.grpc).await);
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "softstake.v1.Treasury".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        h.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}
