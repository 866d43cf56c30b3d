#!/usr/bin/env python3
"""softstake benchmark: one SOL day at exchange scale, stateless and stateful, on both
backends, against the DuckDB baseline on the same files, in one run.

    bench/run.py [--sizes 1000000,10000000] [--events 10] [--sqlite-max 1000000]
                 [--bin target/release/softstake] [--work DIR] [--out bench/REPORT.md]

For each size N (accounts; N x EVENTS balance events over two days, 2025-11-19..20):
  1. gen_day.py writes accounts.csv, balances.csv, rewards.csv (DuckDB, seeded).
  2. `softstake allocate` and `duckdb_allocate.py` replay 2025-11-20 from the files; the
     two outputs are compared number by number.
  3. On PostgreSQL (a fresh database) and SQLite (a fresh file, sizes <= --sqlite-max):
     accounts import, balances ingest, close-day, rewards record, distribute, then
     `payouts export`, which must equal allocate's output byte for byte.
Each step is a separate process: wall time from this script, peak RSS from
getrusage(RUSAGE_CHILDREN) of that process alone. Writes a Markdown report.
"""
import argparse, csv, datetime, os, subprocess, sys, time
from decimal import Decimal

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DAY = "2025-11-20"
# SOL's min_holding, cap and fee_bps in config/tokens.toml (what duckdb_allocate.py takes).
SOL_MIN, SOL_CAP, SOL_FEE_BPS = "1", "5000", "1000"
PG_ADMIN = os.environ.get("SOFTSTAKE_BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# Loopback: no TLS (a remote server would keep it; the report says so).
PG_OPTIONS = os.environ.get("SOFTSTAKE_BENCH_PG_OPTIONS", "?sslmode=disable")

# Targets from issue 16 (release build, 2 cores).
TARGET_ALLOCATE_VS_DUCKDB = 3.0          # allocate at least 3x faster than DuckDB
TARGET_ALLOCATE_BYTES_PER_ACCOUNT = 400  # RSS <= 400 B/account + a constant
ALLOCATE_RSS_CONSTANT = 64 << 20         # the constant allowed: 64 MiB
TARGET_INGEST_EVENTS_PER_SEC = 300_000   # PostgreSQL
TARGET_INGEST_RSS = 256 << 20
TARGET_CLOSE_SECS_1M = 15.0              # PostgreSQL, 1 M accounts, 10 M events
TARGET_DISTRIBUTE_SECS_1M = 5.0          # PostgreSQL, 1 M accounts
TARGET_CYCLE_VS_DUCKDB = 2.0             # ingest + close + distribute <= 2x DuckDB
TARGET_SQLITE_VS_PG = 3.0


def log(msg):
    print(f"[{datetime.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def run_timed(cmd, env=None, cwd=None):
    """Runs cmd under GNU time for this process's own peak RSS; returns (wall, rss, stdout)."""
    tfile = os.path.join(WORK, ".time")
    full = ["/usr/bin/time", "-f", "%M", "-o", tfile] + cmd
    t0 = time.monotonic()
    p = subprocess.run(full, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-4000:]}")
    with open(tfile) as f:
        rss = int(f.read().strip().splitlines()[-1]) * 1024
    return wall, rss, p.stdout


def compare_outputs(ours, duck):
    """Number-by-number comparison of two allocate-contract CSVs in account order."""
    n = 0
    with open(ours) as a, open(duck) as b:
        ra, rb = csv.reader(a), csv.reader(b)
        next(ra), next(rb)
        for x, y in zip(ra, rb, strict=True):
            if x[:3] != y[:3] or any(Decimal(p) != Decimal(q) for p, q in zip(x[3:], y[3:])):
                sys.exit(f"allocate and DuckDB differ at row {n + 2}: {x} vs {y}")
            n += 1
    return n


def fmt_bytes(b):
    return f"{b / (1 << 20):,.0f} MiB"


def fmt_secs(s):
    return f"{s:,.1f} s" if s >= 10 else f"{s:,.2f} s"


def ok(cond):
    return "**met**" if cond else "**missed**"


def stateful(bin_, db_url, d, events, label):
    """The stateful day on one backend; returns {step: (wall, rss)} and checks the export."""
    env = dict(os.environ, SOFTSTAKE_DB=db_url, SOFTSTAKE_LOG="warn")
    res = {}
    def step(name, *args):
        log(f"  {label}: {name}")
        wall, rss, out = run_timed([bin_, *args], env=env)
        res[name] = (wall, rss)
        return out
    step("init", "init")
    step("accounts import", "accounts", "import", "--file", f"{d}/accounts.csv")
    step("balances ingest", "balances", "ingest", "--file", f"{d}/balances.csv")
    step("close-day", "close-day", "--day", DAY, "--token", "SOL")
    step("rewards record", "rewards", "record", "--file", f"{d}/rewards.csv")
    step("distribute", "distribute", "--day", DAY, "--token", "SOL")
    step("payouts export", "payouts", "export", "--day", DAY, "--token", "SOL", "--out", f"{d}/export-{label}.csv")
    if not filecmp(f"{d}/export-{label}.csv", f"{d}/allocate.csv"):
        sys.exit(f"{label}: payouts export differs from allocate's output")
    return res


def filecmp(a, b):
    import filecmp as fc
    return fc.cmp(a, b, shallow=False)


def pg_database(name):
    base = PG_ADMIN.rsplit("/", 1)[0]
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", "-c", f"CREATE DATABASE {name}"], check=True)
    return f"{base}/{name}{PG_OPTIONS}"


def pg_drop(name):
    subprocess.run(["psql", PG_ADMIN, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True)


def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--events", type=int, default=10)
    ap.add_argument("--sqlite-max", type=int, default=1_000_000)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "softstake"))
    ap.add_argument("--work", default=os.path.join(os.path.expanduser("~"), ".cache", "softstake", "bench"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--out", default=os.path.join(HERE, "REPORT.md"))
    a = ap.parse_args()
    WORK = a.work
    os.makedirs(WORK, exist_ok=True)
    sizes = [int(s) for s in a.sizes.split(",")]
    rows = []
    for n in sizes:
        d = os.path.join(WORK, f"day-{n}x{a.events}")
        if not os.path.exists(os.path.join(d, "balances.csv")):
            log(f"generating {n:,} accounts x {a.events} events")
            subprocess.run([a.python, os.path.join(HERE, "gen_day.py"), d, str(n), str(a.events)], check=True)
        events = n * a.events
        csv_bytes = os.path.getsize(os.path.join(d, "balances.csv"))
        log(f"{n:,} accounts: allocate")
        al_wall, al_rss, _ = run_timed([a.bin, "allocate", "--tokens", os.path.join(ROOT, "config/tokens.toml"),
                                        "--accounts", f"{d}/accounts.csv", "--balances", f"{d}/balances.csv",
                                        "--rewards", f"{d}/rewards.csv", "--day", DAY, "--out", f"{d}/allocate.csv"])
        log(f"{n:,} accounts: DuckDB baseline")
        dk_wall, dk_rss, _ = run_timed([a.python, os.path.join(HERE, "duckdb_allocate.py"), d, SOL_MIN, SOL_CAP, SOL_FEE_BPS, f"{d}/duckdb.csv"])
        compared = compare_outputs(f"{d}/allocate.csv", f"{d}/duckdb.csv")
        r = dict(n=n, events=events, csv_bytes=csv_bytes, allocate=(al_wall, al_rss), duckdb=(dk_wall, dk_rss), compared=compared, backends={})
        name = f"softstake_bench_{n}"
        url = pg_database(name)
        try:
            r["backends"]["PostgreSQL"] = stateful(a.bin, url, d, events, "postgres")
        finally:
            pg_drop(name)
        if n <= a.sqlite_max:
            db = os.path.join(d, "bench.db")
            for f in (db, db + "-wal", db + "-shm"):
                if os.path.exists(f):
                    os.remove(f)
            r["backends"]["SQLite"] = stateful(a.bin, f"sqlite://{db}", d, events, "sqlite")
            os.remove(db)
        rows.append(r)
    write_report(a, rows)
    log(f"wrote {a.out}")


def write_report(a, rows):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except Exception:
        pass
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    pgv = subprocess.run(["psql", PG_ADMIN, "-tAc", "SHOW server_version"], capture_output=True, text=True).stdout.strip()
    L = []
    L.append("# softstake benchmark report\n")
    L.append(f"Generated by `bench/run.py` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, commit `{git}`, "
             f"release build; {os.cpu_count()} cores ({cpu}), {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / (1 << 30):.0f} GiB, "
             f"PostgreSQL {pgv} with its default settings, SQLite bundled by sqlx, DuckDB "
             f"{subprocess.run([a.python, '-c', 'import duckdb; print(duckdb.__version__)'], capture_output=True, text=True).stdout.strip()}.\n")
    L.append("One SOL day (2025-11-20) from `bench/gen_day.py`: N accounts, 10 balance events each over 2025-11-19..20 "
             "(half of them on the day), 5 % US (excluded), 2 % deactivations. Every step is its own process: wall time, and "
             "peak RSS from GNU time. The stateful close is the token's first close, so it reads every event (both days). "
             "allocate's output equals DuckDB's number by number, and `payouts export` equals allocate's output byte for byte, "
             "on every backend (the run stops otherwise).\n")
    for r in rows:
        n, ev = r["n"], r["events"]
        L.append(f"\n## {n:,} accounts, {ev:,} events ({r['csv_bytes'] / (1 << 20):,.0f} MiB of CSV)\n")
        L.append("| step | backend | wall | events/s | peak RSS |")
        L.append("|---|---|---:|---:|---:|")
        aw, ar = r["allocate"]
        dw, dr = r["duckdb"]
        L.append(f"| allocate (stateless) | files | {fmt_secs(aw)} | {ev / aw:,.0f} | {fmt_bytes(ar)} |")
        L.append(f"| DuckDB baseline | files | {fmt_secs(dw)} | {ev / dw:,.0f} | {fmt_bytes(dr)} |")
        for be, res in r["backends"].items():
            for step in ("accounts import", "balances ingest", "close-day", "distribute", "payouts export"):
                w, rss = res[step]
                per = ev if step in ("balances ingest", "close-day") else n
                unit = "" if step in ("balances ingest", "close-day") else " (accounts/s)"
                L.append(f"| {step} | {be} | {fmt_secs(w)} | {per / w:,.0f}{unit} | {fmt_bytes(rss)} |")
        L.append("\n| target | measured | |")
        L.append("|---|---|---|")
        ratio = dw / aw
        L.append(f"| allocate >= {TARGET_ALLOCATE_VS_DUCKDB:.0f}x faster than DuckDB | {ratio:.2f}x | {ok(ratio >= TARGET_ALLOCATE_VS_DUCKDB)} |")
        budget = TARGET_ALLOCATE_BYTES_PER_ACCOUNT * n + ALLOCATE_RSS_CONSTANT
        L.append(f"| allocate RSS <= 400 B/account + 64 MiB ({fmt_bytes(budget)}) | {fmt_bytes(ar)} = {max(ar - ALLOCATE_RSS_CONSTANT, 0) / n:,.0f} B/account above the constant | {ok(ar <= budget)} |")
        pg = r["backends"].get("PostgreSQL")
        if pg:
            iw, irss = pg["balances ingest"]
            L.append(f"| PostgreSQL ingest >= 300 000 events/s | {ev / iw:,.0f} events/s | {ok(ev / iw >= TARGET_INGEST_EVENTS_PER_SEC)} |")
            L.append(f"| PostgreSQL ingest RSS <= 256 MiB | {fmt_bytes(irss)} | {ok(irss <= TARGET_INGEST_RSS)} |")
            cw = pg["close-day"][0]
            tw = pg["distribute"][0]
            if n == 1_000_000:
                L.append(f"| PostgreSQL close-day (1 M accounts, 10 M events) <= 15 s | {fmt_secs(cw)} | {ok(cw <= TARGET_CLOSE_SECS_1M)} |")
                L.append(f"| PostgreSQL distribute (1 M accounts) <= 5 s | {fmt_secs(tw)} | {ok(tw <= TARGET_DISTRIBUTE_SECS_1M)} |")
            cycle = iw + cw + tw
            L.append(f"| PostgreSQL day (ingest + close + distribute) <= 2x DuckDB ({fmt_secs(2 * dw)}) | {fmt_secs(cycle)} = {cycle / dw:.2f}x | {ok(cycle <= TARGET_CYCLE_VS_DUCKDB * dw)} |")
            sq = r["backends"].get("SQLite")
            if sq:
                s_cycle = sq["balances ingest"][0] + sq["close-day"][0] + sq["distribute"][0]
                L.append(f"| SQLite day within 3x of PostgreSQL | {s_cycle / cycle:.2f}x ({fmt_secs(s_cycle)}) | {ok(s_cycle <= TARGET_SQLITE_VS_PG * cycle)} |")
    analysis = os.path.join(HERE, "ANALYSIS.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            L.append("\n" + f.read().strip() + "\n")
    L.append("\n## Reproduce\n")
    L.append("```sh\nbash scripts/bench.sh                    # release build, DuckDB in the project venv, then bench/run.py\n"
             "bash scripts/bench.sh --sizes 300000     # a quick run\n```\n")
    with open(a.out, "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
