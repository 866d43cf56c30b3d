//! The simulator's CI seeds: `softstake simulate` over 200 seeds × 30 days (plus the
//! quiet days) on the embedded devnet config, every invariant checked after every step;
//! each seed simulates one of SOL, NEAR and TRX (drawn from the seed) to stay within
//! five minutes on two cores.
//! A failure prints the seed's replay command and the trace of its last steps.

use std::process::Command;

#[test]
fn success_ci_seeds_hold_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("simulation.md");
    let out = Command::new(env!("CARGO_BIN_EXE_softstake"))
        .current_dir(dir.path())
        .args([
            "simulate",
            "--seeds",
            "0..200",
            "--days",
            "30",
            "--tokens-per-seed",
            "1",
            "--report",
        ])
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simulation failed:\n{stdout}\n{stderr}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("200 seeds × 32 days"), "{text}");
    let value = |key: &str| -> u64 {
        text.lines()
            .find(|l| l.contains(key))
            .and_then(|l| l.split('|').rev().nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    };
    assert_eq!(value("failures"), 0);
    // several checks per simulated day: after every tick, and the final ones
    assert!(value("invariant checks") > 200 * 30 * 4, "{text}");
    for kind in [
        "crash_restart",
        "crash_at_journal_step",
        "store_write_error",
        "stale_leader",
        "late_delivery",
    ] {
        assert!(value(&format!("faults: {kind}")) > 0, "{kind} never injected:\n{text}");
    }
    assert!(value("crashes recovered") > 0, "{text}");
    assert!(value("stale-leader writes refused") > 0, "{text}");
}

#[test]
fn fail_simulate_refuses_a_real_chain_and_an_empty_range() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_softstake"))
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["simulate", "--seeds", "5..5"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("empty range"));
    let o = run(&["simulate", "--seed", "1", "--tokens", "XYZ"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("XYZ has no [chains.XYZ]"));
    let o = run(&["--db", "sqlite://x.db", "simulate", "--seed", "1"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("PostgreSQL server URL"));
}

/// Seeds the 10 000-seed run found failing, kept as regressions:
/// - 313: a take-over that failed (a store fault on the new leader's lease write) left the
///   paused leader's generation current; the simulator took its accepted writes for a
///   stale leader's (a false alarm of the simulator's own check);
/// - 317: an operation still submitted after its polls (delayed finality) was only driven
///   again when a new plan ran, so it stayed open through the quiet days, blocking
///   reconciliation (a liveness defect of the scheduler);
/// - 681: the world drew two balance changes of one account at the same second, so the
///   feed carried two balances for one instant and the store rightly refused the second
///   (a defect of the demo world's generator, which the simulator's feed uses).
#[test]
fn success_regression_seeds_from_the_10000_seed_run() {
    for seed in ["313", "317", "681"] {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_softstake"))
            .current_dir(dir.path())
            .args(["simulate", "--seed", seed, "--days", "30", "--tokens-per-seed", "1"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "seed {seed}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
