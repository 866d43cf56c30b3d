//! End-to-end tests of the `softstake` binary: the stateless `allocate` contract, every
//! bad-input refusal (named file, line and field; nothing written), and the stateful
//! daily cycle on a SQLite file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_softstake"));
    c.env("SOFTSTAKE_LOG", "error")
        .env_remove("SOFTSTAKE_DB")
        .env_remove("SOFTSTAKE_CONFIG");
    c.current_dir(root());
    c
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/day1").join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run softstake")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn allocate(dir: &Path, balances: &Path, rewards: &Path, accounts: &Path) -> (Output, PathBuf) {
    let out = dir.join("out.csv");
    let o = run(&[
        "allocate",
        "--tokens",
        root().join("config/tokens.toml").to_str().unwrap(),
        "--accounts",
        accounts.to_str().unwrap(),
        "--balances",
        balances.to_str().unwrap(),
        "--rewards",
        rewards.to_str().unwrap(),
        "--day",
        "2025-06-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    (o, out)
}

#[test]
fn success_allocate_follows_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (o, out) = allocate(
        dir.path(),
        &fixture("balances.csv"),
        &fixture("rewards.csv"),
        &fixture("accounts.csv"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let csv = std::fs::read_to_string(out).unwrap();
    let expected = "\
day,token,account_id,average_balance,eligible_balance,reward
2025-06-01,BNB,alice,2.5,2.5,0.000006733167082294
2025-06-01,BNB,bob,750000,1000,0.002693266832917706
2025-06-01,SOL,alice,20,20,0.000041538
2025-06-01,SOL,bob,500,500,0.001038462
2025-06-01,SOL,carol,50,0,0
2025-06-01,SOL,dave,29.166666666,0,0
2025-06-01,SOL,erin,40,0,0
2025-06-01,SOL,frank,0.375,0,0
";
    assert_eq!(csv, expected);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("0.00108"), "summary shows D: {stdout}");
}

/// Writes `text` as a file in `dir` and returns its path.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs allocate with one bad balances file and checks the error names file, line and
/// field, and that no output was written.
fn assert_bad_balances(body: &str, line: u32, field: &str, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "bad_balances.csv", body);
    let (o, out) = allocate(dir.path(), &b, &fixture("rewards.csv"), &fixture("accounts.csv"));
    let e = stderr(&o);
    assert!(!o.status.success(), "accepted bad input: {body}");
    assert!(e.contains(&format!("bad_balances.csv:{line}")), "no file:line in {e}");
    assert!(e.contains(&format!("`{field}`")), "no field {field} in {e}");
    assert!(e.contains(what), "no {what:?} in {e}");
    assert!(!out.exists(), "output written despite the error");
}

#[test]
fn fail_malformed_csv_line() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(
        dir.path(),
        "bad_balances.csv",
        "ts,account_id,token,balance\n2025-06-01T00:00:00Z,alice,SOL\n",
    );
    let (o, out) = allocate(dir.path(), &b, &fixture("rewards.csv"), &fixture("accounts.csv"));
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(e.contains("bad_balances.csv:2") && e.contains("malformed CSV"), "{e}");
    assert!(!out.exists());
}

#[test]
fn fail_unknown_token() {
    assert_bad_balances(
        "ts,account_id,token,balance\n2025-06-01T00:00:00Z,alice,DOGE,1\n",
        2,
        "token",
        "unknown token \"DOGE\"",
    );
}

#[test]
fn fail_too_many_decimals() {
    assert_bad_balances(
        "ts,account_id,token,balance\n2025-06-01T00:00:00Z,alice,SOL,1\n2025-06-01T00:00:00Z,bob,SOL,0.0000000001\n",
        3,
        "balance",
        "10 fractional digits, the token has 9",
    );
}

#[test]
fn fail_negative_amount() {
    assert_bad_balances(
        "ts,account_id,token,balance\n2025-06-01T00:00:00Z,alice,SOL,-5\n",
        2,
        "balance",
        "negative",
    );
}

#[test]
fn fail_overflowing_amount() {
    assert_bad_balances(
        "ts,account_id,token,balance\n2025-06-01T00:00:00Z,alice,NEAR,340282366920938463\n",
        2,
        "balance",
        "larger than u128::MAX",
    );
}

#[test]
fn fail_unknown_column() {
    assert_bad_balances(
        "ts,account_id,token,balance,colour\n2025-06-01T00:00:00Z,alice,SOL,1,red\n",
        1,
        "colour",
        "unknown column",
    );
}

#[test]
fn fail_bad_timestamp() {
    assert_bad_balances(
        "ts,account_id,token,balance\n2025/06/01,alice,SOL,1\n",
        2,
        "ts",
        "RFC 3339",
    );
}

#[test]
fn fail_conflicting_events_at_one_instant() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(
        dir.path(),
        "balances.csv",
        "ts,account_id,token,balance\n2025-06-01T01:00:00Z,alice,SOL,1\n2025-06-01T01:00:00Z,alice,SOL,2\n",
    );
    let (o, out) = allocate(dir.path(), &b, &fixture("rewards.csv"), &fixture("accounts.csv"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("conflicting balance events"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn fail_bad_rewards_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let r = write(
        dir.path(),
        "rewards.csv",
        "day,token,amount\n2025-06-01,SOL,1\n2025-06-01,SOL,2\n",
    );
    let (o, _) = allocate(dir.path(), &fixture("balances.csv"), &r, &fixture("accounts.csv"));
    assert!(
        stderr(&o).contains("rewards.csv:3") && stderr(&o).contains("line 2"),
        "{}",
        stderr(&o)
    );
    let a = write(
        dir.path(),
        "accounts.csv",
        "account_id,jurisdiction,activated_at,deactivated_at\nx,Germany,2025-05-01T00:00:00Z,\n",
    );
    let (o, _) = allocate(dir.path(), &fixture("balances.csv"), &fixture("rewards.csv"), &a);
    assert!(
        stderr(&o).contains("accounts.csv:2") && stderr(&o).contains("`jurisdiction`"),
        "{}",
        stderr(&o)
    );
}

/// The stateful cycle through the binary on a SQLite file.
#[test]
fn success_stateful_cycle_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/s.db", dir.path().display());
    let ok = |args: &[&str]| {
        let mut full = vec!["--db", db.as_str()];
        full.extend_from_slice(args);
        let o = run(&full);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["init"]);
    ok(&[
        "accounts",
        "import",
        "--file",
        fixture("accounts.csv").to_str().unwrap(),
    ]);
    ok(&[
        "balances",
        "ingest",
        "--file",
        fixture("balances.csv").to_str().unwrap(),
    ]);
    let again = ok(&[
        "balances",
        "ingest",
        "--file",
        fixture("balances.csv").to_str().unwrap(),
    ]);
    assert!(again.contains("0 new events"), "{again}");
    ok(&["rewards", "record", "--file", fixture("rewards.csv").to_str().unwrap()]);
    ok(&["close-day", "--day", "2025-05-31"]);
    ok(&["close-day", "--day", "2025-06-01"]);
    ok(&["distribute", "--day", "2025-05-31"]);
    let paid = ok(&["distribute", "--day", "2025-06-01", "--token", "SOL"]);
    assert!(paid.contains("0.00108"), "{paid}");
    // twice: refused, nothing paid
    let o = run(&["--db", &db, "distribute", "--day", "2025-06-01", "--token", "SOL"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already distributed"), "{}", stderr(&o));
    let hist = ok(&["history", "--account", "bob"]);
    assert!(hist.contains("0.001038462"), "{hist}");
    assert_eq!(hist.matches("2025-06-01").count(), 1, "paid once: {hist}");
    let apr = ok(&["apr"]);
    assert!(apr.contains("SOL"), "{apr}");
    // closing a day before the previous one
    let o = run(&["--db", &db, "close-day", "--day", "2025-05-29"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("a later day (2025-06-01) is already closed"),
        "{}",
        stderr(&o)
    );
    // skipping a day
    let o = run(&["--db", &db, "close-day", "--day", "2025-06-03", "--token", "SOL"]);
    assert!(stderr(&o).contains("close 2025-06-02 first"), "{}", stderr(&o));
}

/// The treasury commands through the binary on a persisted simulated chain: plan,
/// execute (approval required above the threshold), status, reconcile, sync.
#[test]
fn success_treasury_commands_on_the_simulated_chain() {
    let dir = tempfile::tempdir().unwrap();
    let config = root().join("config/devnet.toml");
    let run_in = |args: &[&str]| {
        let mut full = vec!["--config", config.to_str().unwrap()];
        full.extend_from_slice(args);
        let o = bin().current_dir(dir.path()).args(&full).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            stderr(&o),
        )
    };
    let ok = |args: &[&str]| {
        let (good, out, err) = run_in(args);
        assert!(good, "{args:?}: {err}");
        out
    };
    ok(&["init"]);
    ok(&[
        "accounts",
        "import",
        "--file",
        fixture("accounts.csv").to_str().unwrap(),
    ]);
    ok(&[
        "balances",
        "ingest",
        "--file",
        fixture("balances.csv").to_str().unwrap(),
    ]);
    ok(&["close-day", "--day", "2025-05-31", "--token", "SOL"]);
    ok(&["close-day", "--day", "2025-06-01", "--token", "SOL"]);
    // before sync the custody wallet is empty, and the plan says why it does nothing
    let idle = ok(&["plan", "--token", "SOL"]);
    assert!(idle.contains("spendable balance"), "{idle}");
    ok(&["sync", "--token", "SOL"]);
    let plan = ok(&["plan", "--token", "SOL"]);
    let id = plan.split_whitespace().nth(2).unwrap().to_string();
    assert!(plan.contains("delegate") && plan.contains("NEEDS APPROVAL"), "{plan}");
    let (good, _, err) = run_in(&["execute", "--plan", &id]);
    assert!(!good && err.contains("--approve"), "{err}");
    let done = ok(&["execute", "--plan", &id, "--approve", "--by", "alice"]);
    assert_eq!(done.matches("confirmed").count(), 8, "{done}");
    let status = ok(&["status", "--token", "SOL"]);
    assert!(
        status.contains("134.1"),
        "activating stake read from the chain: {status}"
    );
    let rec = ok(&["reconcile", "--token", "SOL"]);
    assert!(rec.contains("ok") && !rec.contains("DRIFT"), "{rec}");
    let (good, _, err) = run_in(&["execute", "--plan", &id, "--approve"]);
    assert!(!good && err.contains("already done"), "{err}");
    let again = ok(&["plan", "--token", "SOL"]);
    assert!(!again.contains(&id), "the state changed, so the plan id did too");
    ok(&["sync", "--token", "SOL"]);
}

fn stateful(dir: &Path) -> impl Fn(&[&str]) -> Output + '_ {
    move |args: &[&str]| {
        let db = format!("sqlite://{}/s.db", dir.display());
        let mut full = vec!["--db".to_string(), db];
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        run(&refs)
    }
}

/// A store in `dir` with the fixture day's balances ingested.
fn ingested(dir: &Path) -> impl Fn(&[&str]) -> Output + '_ {
    let s = stateful(dir);
    ok(s(&["init"]));
    ok(s(&[
        "balances",
        "ingest",
        "--file",
        fixture("balances.csv").to_str().unwrap(),
    ]));
    s
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn fail_days_and_times_beyond_the_nanosecond_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = stateful(dir.path());
    ok(s(&["init"]));
    for d in ["9999-12-31", "2262-04-11", "1500-01-01"] {
        let o = s(&["close-day", "--day", d]);
        assert!(!o.status.success(), "{d} accepted");
        assert!(
            stderr(&o).contains("outside 1677-09-22..=2262-04-10"),
            "{d}: {}",
            stderr(&o)
        );
    }
    assert_bad_balances(
        "ts,account_id,token,balance\n2262-04-11T00:00:00Z,alice,SOL,1\n",
        2,
        "ts",
        "outside 1677-09-22..=2262-04-10",
    );
}

#[test]
fn fail_more_than_nanosecond_fractions() {
    assert_bad_balances(
        "ts,account_id,token,balance\n2025-06-01T00:00:00.1234567891Z,alice,SOL,1\n",
        2,
        "ts",
        "10 fractional digits; at most 9",
    );
}

#[test]
fn fail_account_ids_longer_than_accounts_allow() {
    let long = "a".repeat(129);
    assert_bad_balances(
        &format!("ts,account_id,token,balance\n2025-06-01T00:00:00Z,{long},SOL,1\n"),
        2,
        "account_id",
        "129 bytes; at most 128",
    );
}

#[test]
fn fail_accounts_errors_name_the_wrong_field() {
    let dir = tempfile::tempdir().unwrap();
    let long = "a".repeat(129);
    for (row, field, what) in [
        (format!("{long},DE,2025-05-01T00:00:00Z,"), "account_id", "at most 128"),
        ("x,DE,2025-05-01,".to_string(), "activated_at", "RFC 3339"),
        (
            "x,DE,2025-05-02T00:00:00Z,2025-05-01T00:00:00Z".to_string(),
            "deactivated_at",
            "before activated_at",
        ),
    ] {
        let a = write(
            dir.path(),
            "accounts.csv",
            &format!("account_id,jurisdiction,activated_at,deactivated_at\n{row}\n"),
        );
        let (o, out) = allocate(dir.path(), &fixture("balances.csv"), &fixture("rewards.csv"), &a);
        let e = stderr(&o);
        assert!(
            e.contains("accounts.csv:2") && e.contains(&format!("`{field}`")) && e.contains(what),
            "{row}: {e}"
        );
        assert!(!out.exists());
        let s = stateful(dir.path());
        let o = s(&["accounts", "import", "--file", a.to_str().unwrap()]);
        assert!(
            stderr(&o).contains(&format!("`{field}`")),
            "import {row}: {}",
            stderr(&o)
        );
    }
    // An id given twice: both lines named, nothing imported.
    let a = write(
        dir.path(),
        "accounts.csv",
        "account_id,jurisdiction,activated_at,deactivated_at\nx,DE,2025-05-01T00:00:00Z,\ny,DE,2025-05-01T00:00:00Z,\nx,FR,2025-05-01T00:00:00Z,\n",
    );
    let s = stateful(dir.path());
    let o = s(&["accounts", "import", "--file", a.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("line 4") && stderr(&o).contains("line 2"),
        "{}",
        stderr(&o)
    );
    let o = s(&["history", "--account", "y"]);
    assert!(
        stderr(&o).contains("unknown account"),
        "nothing imported: {}",
        stderr(&o)
    );
}

#[test]
fn fail_conflicting_event_names_its_line_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = ingested(dir.path());
    let b = write(
        dir.path(),
        "more.csv",
        "ts,account_id,token,balance\n2025-06-02T00:00:00Z,zed,SOL,1\n2025-06-01T12:00:00Z,alice,SOL,31\n",
    );
    let o = s(&["balances", "ingest", "--file", b.to_str().unwrap()]);
    let e = stderr(&o);
    assert!(!o.status.success());
    assert!(
        e.contains("more.csv:3:") && e.contains("already recorded with balance"),
        "{e}"
    );
    // zed's event on line 2 was not stored: ingesting a file with only it inserts it.
    let z = write(
        dir.path(),
        "z.csv",
        "ts,account_id,token,balance\n2025-06-02T00:00:00Z,zed,SOL,1\n",
    );
    assert!(ok(s(&["balances", "ingest", "--file", z.to_str().unwrap()])).contains("1 new events"));
}

#[test]
fn fail_rewards_before_the_first_closed_day() {
    let dir = tempfile::tempdir().unwrap();
    let s = ingested(dir.path());
    ok(s(&["close-day", "--day", "2025-06-01", "--token", "SOL"]));
    let r = write(dir.path(), "r.csv", "day,token,amount\n2025-05-31,SOL,1\n");
    let o = s(&["rewards", "record", "--file", r.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("before the token's first closed day 2025-06-01"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn success_apr_beyond_decimal_range_does_not_block_payouts() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = write(
        dir.path(),
        "tokens.toml",
        "[tokens.BIG]\nchain = \"x\"\ndecimals = 0\nbase_unit = \"unit\"\nmin_holding = \"1\"\ncap = \"1000\"\nfee_bps = 0\nunbonding_period_secs = 0\n",
    );
    let a = write(
        dir.path(),
        "a.csv",
        "account_id,jurisdiction,activated_at,deactivated_at\nx,DE,2025-05-01T00:00:00Z,\n",
    );
    let b = write(
        dir.path(),
        "b.csv",
        "ts,account_id,token,balance\n2025-05-01T00:00:00Z,x,BIG,1\n",
    );
    let r = write(
        dir.path(),
        "r.csv",
        "day,token,amount\n2025-06-01,BIG,1000000000000000000000000000000\n",
    );
    let out = dir.path().join("out.csv");
    let o = run(&[
        "allocate",
        "--tokens",
        tokens.to_str().unwrap(),
        "--accounts",
        a.to_str().unwrap(),
        "--balances",
        b.to_str().unwrap(),
        "--rewards",
        r.to_str().unwrap(),
        "--day",
        "2025-06-01",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = ok(o);
    assert!(stdout.contains("beyond range"), "{stdout}");
    let csv = std::fs::read_to_string(out).unwrap();
    assert!(csv.contains("x,1,1,1000000000000000000000000000000"), "{csv}");
}

/// The stored day exported in allocate's contract equals the stateless replay, also after
/// the events were archived to per-day files and a carry came in from a day with Σe = 0.
#[test]
fn success_payouts_export_matches_allocate_across_archive_and_carry() {
    let dir = tempfile::tempdir().unwrap();
    let s = stateful(dir.path());
    let tokens = root().join("config/tokens.toml");
    let accounts = fixture("accounts.csv");
    ok(s(&["init"]));
    ok(s(&["accounts", "import", "--file", accounts.to_str().unwrap()]));
    ok(s(&[
        "balances",
        "ingest",
        "--file",
        fixture("balances.csv").to_str().unwrap(),
    ]));
    // 2025-05-20: nobody holds SOL yet → Σe = 0, the reward is carried.
    let r = write(
        dir.path(),
        "rewards.csv",
        "day,token,amount\n2025-05-20,SOL,0.5\n2025-06-01,SOL,0.0012\n",
    );
    ok(s(&["rewards", "record", "--file", r.to_str().unwrap()]));
    let mut day = softstake_core::Day::parse("2025-05-20").unwrap();
    let last = softstake_core::Day::parse("2025-06-01").unwrap();
    while day <= last {
        let d = day.to_string();
        ok(s(&["close-day", "--day", &d]));
        ok(s(&["distribute", "--day", &d]));
        day = day.next();
    }
    let arch = dir.path().join("arch");
    ok(s(&[
        "archive",
        "--before",
        "2025-06-02",
        "--out",
        arch.to_str().unwrap(),
    ]));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&arch)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "{files:?}");
    // Every day from the Σe = 0 day on: the stored day equals the replay from the archive
    // files, with the carry in that the export reports.
    let mut day = softstake_core::Day::parse("2025-05-20").unwrap();
    let mut carried = false;
    while day <= last {
        let d = day.to_string();
        let export = dir.path().join(format!("export-{d}.csv"));
        let summary = ok(s(&[
            "payouts",
            "export",
            "--day",
            &d,
            "--token",
            "SOL",
            "--out",
            export.to_str().unwrap(),
        ]));
        let row = summary.lines().find(|l| l.contains(&d) && l.contains("SOL")).unwrap();
        let carry_in = row.split('┆').nth(7).unwrap().trim().to_string();
        carried |= carry_in != "0";
        let out = dir.path().join(format!("replay-{d}.csv"));
        let mut args: Vec<String> = vec![
            "allocate".into(),
            "--tokens".into(),
            tokens.display().to_string(),
            "--accounts".into(),
            accounts.display().to_string(),
            "--balances".into(),
        ];
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend([
            "--rewards".into(),
            r.display().to_string(),
            "--day".into(),
            d.clone(),
            "--carry".into(),
            format!("SOL={carry_in}"),
            "--out".into(),
            out.display().to_string(),
        ]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(run(&refs));
        let sol = |p: &Path| -> Vec<String> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter(|l| !l.contains(",BNB,"))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(sol(&out), sol(&export), "{d}");
        day = day.next();
    }
    assert!(carried, "some day received the carry of the Σe = 0 day");
    // The archived days are gone from the store; archiving again finds nothing.
    assert!(ok(s(&[
        "archive",
        "--before",
        "2025-06-02",
        "--out",
        arch.to_str().unwrap()
    ]))
    .contains("nothing to archive"));
}

#[test]
fn fail_archive_of_a_day_not_closed() {
    let dir = tempfile::tempdir().unwrap();
    let s = ingested(dir.path());
    ok(s(&["close-day", "--day", "2025-06-01", "--token", "SOL"]));
    let o = s(&[
        "archive",
        "--before",
        "2025-06-02",
        "--out",
        dir.path().join("a").to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("BNB has") && stderr(&o).contains("close it first"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn success_demo_checks_every_day_against_the_stateless_replay() {
    let dir = tempfile::tempdir().unwrap();
    let s = stateful(dir.path());
    let out = ok(s(&[
        "demo",
        "--accounts",
        "150",
        "--days",
        "3",
        "--warmup-days",
        "2",
        "--wave-day",
        "2",
        "--tokens",
        "SOL,BNB,ATOM",
    ]));
    assert!(out.contains("invariants: OK for 3 tokens"), "{out}");
    // The day before the program, 2 warm-up days and 3 reported days, for 3 tokens.
    assert!(out.contains("stateless replay: OK for 18 token-days"), "{out}");
}
