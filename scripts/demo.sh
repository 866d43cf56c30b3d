#!/usr/bin/env bash
# The main job on its embedded defaults (SQLite, devnet config, bundled real data):
#   bash scripts/demo.sh [demo options, e.g. --days 14 --seed 7]
# With --chain BNB=bsc, BNB runs on a real EVM node instead of the simulated chain: a
# local anvil (chain id 56) with the StakeHub stand-in, started here and stopped at exit
# (config/localnet.toml; rewards are paid by the local chain on an accelerated schedule).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bnb_anvil=0
for a in "$@"; do
  case "$a" in BNB=bsc|--chain=BNB=bsc) bnb_anvil=1 ;; esac
done

if [ "$bnb_anvil" = 0 ]; then
  bash "$ROOT/scripts/setup.sh" --demo
  log "building softstake"
  cargo build --locked --bin softstake
  exec "$CARGO_TARGET_DIR/debug/softstake" demo "$@"
fi

bash "$ROOT/scripts/setup.sh" --demo --evm
log "building softstake (with the EVM adapters) and the local BSC"
cargo build --locked --bin softstake --features softstake-node/evm
cargo build --locked -p softstake-e2e --features evm-anvil --bin evm-localnet
if (exec 3<>/dev/tcp/127.0.0.1/8545) 2>/dev/null; then
  die "something already listens on 127.0.0.1:8545; stop it (the demo starts its own local BSC there)"
fi
mkdir -p .softstake/localnet
log "starting the local BSC (anvil, chain id 56) on 127.0.0.1:8545"
"$CARGO_TARGET_DIR/debug/evm-localnet" --port 8545 --key-file .softstake/localnet/bnb-treasury.key \
  > .softstake/evm-localnet.log 2>&1 &
chain_pid=$!
# stop the helper and its anvil child (even if the helper is still starting up)
trap 'pkill -TERM -P $chain_pid 2>/dev/null || true; kill $chain_pid 2>/dev/null || true; wait $chain_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  grep -q "local BSC ready" .softstake/evm-localnet.log 2>/dev/null && break
  kill -0 "$chain_pid" 2>/dev/null || { cat .softstake/evm-localnet.log >&2; die "the local BSC did not start"; }
  sleep 0.5
done
grep -q "local BSC ready" .softstake/evm-localnet.log || die "the local BSC did not become ready (see .softstake/evm-localnet.log)"
head -n 4 .softstake/evm-localnet.log
tokens=(--tokens BNB)
for a in "$@"; do case "$a" in --tokens|--tokens=*) tokens=() ;; esac; done
"$CARGO_TARGET_DIR/debug/softstake" --network localnet demo "${tokens[@]}" "$@"
