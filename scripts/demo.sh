#!/usr/bin/env bash
# The main job on its embedded defaults (SQLite, devnet config, bundled real data):
#   bash scripts/demo.sh [demo options, e.g. --days 14 --seed 7]
# With --chain BNB=bsc, S=sonic, POL=polygon, AXS=ronin or APE=apechain (any of them,
# together, each as its own --chain), that token runs on a real EVM node instead of the
# simulated chain: a local anvil with the stand-in of its staking contracts (StakeHub,
# SFC, StakeManager, the AXS staking pool, ApeChain's ArbInfo); with --chain NEAR=near,
# NEAR runs on our local NEAR chain (crates/localchains: NEAR JSON-RPC and the reference
# staking pool's rules); with --chain TRX=tron, TRX runs on our local TRON chain (java-tron's
# HTTP API and Stake 2.0's rules); with --chain ATOM=cosmos, ATOM runs on our local Cosmos
# chain (the SDK's gRPC services, CometBFT's broadcast_tx_sync, x/staking's and
# x/distribution's rules); with --chain ADA=cardano, ADA runs on our local Cardano chain
# (Blockfrost's API over the Conway ledger's rules); with --chain SUI=sui, SUI runs on our
# local Sui chain (sui-rpc's gRPC services over the Move staking system); with --chain IOTA=iota,
# IOTA runs on our local IOTA chain (IOTA's gRPC services and GraphQL subset over the same
# staking system); with --chain APT=aptos,
# APT runs on our local Aptos chain (the REST API /v1 over 0x1::delegation_pool's rules); with
# --chain EGLD=multiversx, EGLD runs on our local MultiversX chain (the gateway's REST API over the
# system delegation contract's rules); with --chain ALGO=algorand, ALGO runs on our local Algorand
# chain (algod's and the indexer's REST APIs over payments, key registrations and proposer
# payouts: our staking accounts go online); with --chain TON=ton, TON runs on our local TON chain
# (toncenter's API subset over wallet v4r2's and the nominator pool's rules, with election rounds
# and stake holds). Each is started here and
# stopped at exit (config/localnet.toml; rewards are paid by the local chain on an
# accelerated schedule).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

# EVM chains asked for with --chain TOKEN=adapter, each run on its own local anvil
evm_chains=()
local_chains=()
for a in "$@"; do
  case "${a#--chain=}" in
    BNB=bsc) evm_chains+=(bsc) ;;
    S=sonic) evm_chains+=(sonic) ;;
    POL=polygon) evm_chains+=(polygon) ;;
    AXS=ronin) evm_chains+=(ronin) ;;
    APE=apechain) evm_chains+=(apechain) ;;
    NEAR=near) local_chains+=(near) ;;
    TRX=tron) local_chains+=(tron) ;;
    ATOM=cosmos) local_chains+=(cosmos) ;;
    ADA=cardano) local_chains+=(cardano) ;;
    SUI=sui) local_chains+=(sui) ;;
    IOTA=iota) local_chains+=(iota) ;;
    APT=aptos) local_chains+=(aptos) ;;
    EGLD=multiversx) local_chains+=(multiversx) ;;
    ALGO=algorand) local_chains+=(algorand) ;;
    TON=ton) local_chains+=(ton) ;;
  esac
done

if [ "${#evm_chains[@]}" = 0 ] && [ "${#local_chains[@]}" = 0 ]; then
  bash "$ROOT/scripts/setup.sh" --demo
  log "building softstake"
  cargo build --locked --bin softstake
  exec "$CARGO_TARGET_DIR/debug/softstake" demo "$@"
fi

bash "$ROOT/scripts/setup.sh" --demo --evm
log "building softstake (with the EVM, NEAR, TRON, Cosmos, Cardano, Sui, IOTA, Aptos, MultiversX, Algorand and TON adapters) and the local chains"
cargo build --locked --bin softstake --features softstake-node/evm,softstake-node/near,softstake-node/tron,softstake-node/cosmos,softstake-node/cardano,softstake-node/sui,softstake-node/iota,softstake-node/aptos,softstake-node/multiversx,softstake-node/algorand,softstake-node/ton
if [ "${#evm_chains[@]}" -gt 0 ]; then
  cargo build --locked -p softstake-e2e --features evm-anvil --bin evm-localnet
fi
if [ "${#local_chains[@]}" -gt 0 ]; then
  cargo build --locked -p softstake-localchains --features near,tron,cosmos,cardano,sui,iota,aptos,multiversx,algorand,ton --bin near-localnet --bin tron-localnet --bin cosmos-localnet --bin cardano-localnet --bin sui-localnet --bin iota-localnet --bin aptos-localnet --bin multiversx-localnet --bin algorand-localnet --bin ton-localnet
fi
mkdir -p .softstake/localnet
pids=()
# stop the helpers and their anvil children (even if a helper is still starting up)
cleanup() {
  for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
tokens=()
# start_local NAME PORT LOG CMD…: runs CMD in the background and waits for "chain ready"
start_local() {
  local name=$1 port=$2 logf=$3
  shift 3
  if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
    die "something already listens on 127.0.0.1:$port; stop it (the demo starts its own local $name chain there)"
  fi
  log "starting the local $name chain on 127.0.0.1:$port"
  "$@" > "$logf" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 120); do
    grep -q "chain ready" "$logf" 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$logf" >&2; die "the local $name chain did not start"; }
    sleep 0.5
  done
  grep -q "chain ready" "$logf" || die "the local $name chain did not become ready (see $logf)"
  head -n 3 "$logf"
}
for c in "${evm_chains[@]}"; do
  case "$c" in
    bsc) port=8545; token=BNB ;;
    sonic) port=8546; token=S ;;
    polygon) port=8547; token=POL ;;
    ronin) port=8548; token=AXS ;;
    apechain) port=8549; token=APE ;;
  esac
  tokens+=("$token")
  start_local "$c (anvil)" "$port" ".softstake/evm-localnet-$c.log" "$CARGO_TARGET_DIR/debug/evm-localnet" --chain "$c"
done
for c in "${local_chains[@]}"; do
  case "$c" in
    near) port=3030; token=NEAR ;;
    tron) port=8090; token=TRX ;;
    cosmos) port=9090; token=ATOM ;;
    cardano) port=3100; token=ADA ;;
    sui) port=9000; token=SUI ;;
    iota) port=50051; token=IOTA ;;
    aptos) port=8070; token=APT ;;
    multiversx) port=7950; token=EGLD ;;
    algorand) port=4001; token=ALGO ;;
    ton) port=8081; token=TON ;;
  esac
  tokens+=("$token")
  start_local "$c" "$port" ".softstake/$c-localnet.log" "$CARGO_TARGET_DIR/debug/$c-localnet" --port "$port"
done
# the preflight a treasury engineer runs before a real network, against the local chains
for t in "${tokens[@]}"; do
  log "preflight: softstake --network localnet doctor --token $t"
  "$CARGO_TARGET_DIR/debug/softstake" --network localnet doctor --token "$t" \
    || die "the preflight of $t failed: each FAIL line above names its fix"
done
token_arg=(--tokens "$(IFS=,; echo "${tokens[*]}")")
for a in "$@"; do case "$a" in --tokens|--tokens=*) token_arg=() ;; esac; done
"$CARGO_TARGET_DIR/debug/softstake" --network localnet demo "${token_arg[@]}" "$@"
