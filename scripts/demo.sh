#!/usr/bin/env bash
# The main job on its embedded defaults (SQLite, devnet config, bundled real data):
#   bash scripts/demo.sh [demo options, e.g. --days 14 --seed 7]
set -euo pipefail
source "$(dirname "$0")/env.sh"
bash "$ROOT/scripts/setup.sh" --demo
cd "$ROOT"
log "building softstake"
cargo build --locked --bin softstake
exec "$CARGO_TARGET_DIR/debug/softstake" demo "$@"
