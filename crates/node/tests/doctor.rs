//! `softstake doctor` end to end through the binary: a healthy simulated chain passes with
//! exit 0; an unreachable endpoint and an unknown token fail with exit 1 and a fix per
//! failed line. The real chains' doctor runs against their local chains in softstake-e2e.

mod common;

use common::{Setup, SIM_CHAIN, TOKENS};

fn sqlite(s: &Setup) -> String {
    format!("sqlite://{}", s.dir.path().join("doctor.db").display())
}

#[test]
fn success_doctor_passes_on_a_healthy_chain() {
    let s = Setup::new("sqlite://unused.db");
    let s = Setup {
        db_url: sqlite(&s),
        ..s
    };
    let out = s.cli(&["doctor"]);
    for check in [
        "config",
        "endpoint",
        "chain",
        "unbonding period",
        "signer balance",
        "validators",
        "rate limit",
    ] {
        assert!(out.contains(check), "{check} missing:\n{out}");
    }
    assert!(out.contains("PASS:") && out.contains(" 0 failed"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn fail_doctor_reports_an_unreachable_endpoint_with_its_fix() {
    let chain = format!(
        "{SIM_CHAIN}\n[chains.TST2]\nadapter = \"sim-remote\"\nrpc_url = \"http://127.0.0.1:1\"\nrate_limit_per_sec = 50\n"
    )
    .replace("[chains.TST2]", "[chains.TSU]");
    let tokens = format!(
        "{TOKENS}\n{}",
        TOKENS
            .split("[tokens.TST]")
            .nth(1)
            .map(|t| format!("[tokens.TSU]{t}"))
            .unwrap()
    );
    let s = Setup::with_chain("sqlite://unused.db", &tokens, &chain);
    let s = Setup {
        db_url: sqlite(&s),
        ..s
    };
    let o = s.run_cli_raw(&["doctor"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    let line = out
        .lines()
        .find(|l| l.contains("TSU") && l.contains("endpoint"))
        .unwrap_or_default();
    assert!(line.contains("FAIL"), "{out}");
    assert!(
        out.contains("check rpc_url and that the node is up"),
        "the fix is printed:\n{out}"
    );
    assert!(
        err.contains("preflight of network test failed: 1 line(s) marked FAIL"),
        "{err}"
    );
    // the healthy token still passes its own lines, and --token selects it alone
    assert!(
        out.lines()
            .any(|l| l.contains("TST") && l.contains("endpoint") && l.contains("PASS")),
        "{out}"
    );
    assert!(s.cli(&["doctor", "--token", "tst"]).contains(" 0 failed"));
    let unknown = s.cli_fails(&["doctor", "--token", "XYZ"]);
    assert!(unknown.contains("no chain configured for XYZ"), "{unknown}");
}
