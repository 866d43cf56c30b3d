# Shared settings for the project's scripts (sourced, not run).
# One cache for every build, outside the clone, so fresh clones (CI) reuse it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/softstake/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-auto}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
log() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
# The Python with the official Binance client (scripts/setup.sh installs it).
export SOFTSTAKE_PYTHON="${SOFTSTAKE_PYTHON:-$HOME/.cache/softstake/venv/bin/python}"
# The local EVM node and Solidity compiler (npm, pinned in tools/evm; scripts/setup.sh installs them).
export SOFTSTAKE_NPM_DIR="${SOFTSTAKE_NPM_DIR:-$HOME/.cache/softstake/npm}"
export SOFTSTAKE_ANVIL="${SOFTSTAKE_ANVIL:-$SOFTSTAKE_NPM_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil}"
export SOFTSTAKE_SOLCJS="${SOFTSTAKE_SOLCJS:-$SOFTSTAKE_NPM_DIR/node_modules/.bin/solcjs}"
