#!/usr/bin/env bash
# The scale benchmark: release build, DuckDB (PyPI) in the project venv, then bench/run.py,
# which writes bench/REPORT.md. Needs PostgreSQL on 127.0.0.1:5432 (SOFTSTAKE_BENCH_PG_URL
# for another) and disk for the data: about 12 GB for 10 M accounts.
#   bash scripts/bench.sh                        # 1 M and 10 M accounts x 10 events
#   bash scripts/bench.sh --sizes 300000         # a quick run
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash "$ROOT/scripts/setup.sh"
if ! "$SOFTSTAKE_PYTHON" -c "import duckdb" >/dev/null 2>&1; then
  log "installing duckdb (PyPI) in the project venv"
  "$(dirname "$SOFTSTAKE_PYTHON")/pip" install -q --disable-pip-version-check "duckdb==2.0.1" || \
    "$(dirname "$SOFTSTAKE_PYTHON")/pip" install -q --disable-pip-version-check duckdb
fi
cd "$ROOT"
log "building the release binary"
cargo build --locked --release --bin softstake
log "running the benchmark (bench/run.py $*)"
"$SOFTSTAKE_PYTHON" bench/run.py --python "$SOFTSTAKE_PYTHON" --bin "$CARGO_TARGET_DIR/release/softstake" "$@"
