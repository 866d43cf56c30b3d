#!/usr/bin/env bash
# Every test: unit, property, store (SQLite and PostgreSQL), CLI end to end, treasury.
#   bash scripts/test.sh [extra nextest arguments]
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
log "running the tests (cargo nextest)"
cargo nextest run --locked --workspace --all-features --no-fail-fast "$@"
log "running the doc tests"
cargo test --locked --workspace --all-features --doc
