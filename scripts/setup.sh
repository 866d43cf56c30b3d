#!/usr/bin/env bash
# Idempotent set-up: checks the toolchain and installs what the build and tests need.
# Safe to run again and again; it only acts on what is missing.
#   scripts/setup.sh            everything the tests need (PostgreSQL, libclang, Python client)
#   scripts/setup.sh --demo     only what the demo needs (no PostgreSQL, no libclang)
#   scripts/setup.sh --demo --evm   and the local EVM node (the demo's --chain BNB=bsc)
set -euo pipefail
source "$(dirname "$0")/env.sh"

need_db=1
need_evm=1
for a in "$@"; do
  case "$a" in
    --demo) need_db=0; need_evm=0 ;;
    --evm) need_evm=1 ;;
    *) die "unknown option $a" ;;
  esac
done

command -v cargo >/dev/null || die "cargo not found: install Rust 1.95 (rustup) first"
rustc_version=$(rustc --version | awk '{print $2}')
case "$rustc_version" in
  1.9[5-9]*|1.[1-9][0-9][0-9]*) ;;
  *) die "rustc $rustc_version is too old: softstake needs 1.95" ;;
esac
for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    log "installing the $c component"
    rustup component add "$c"
  fi
done

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
# C toolchain for bundled SQLite; pkg-config for -sys crates; protoc for the gRPC code;
# libclang for bindgen (RocksDB under solana-test-validator, the Solana end-to-end tests).
command -v cc >/dev/null || apt_install build-essential
command -v pkg-config >/dev/null || apt_install pkg-config
command -v protoc >/dev/null || apt_install protobuf-compiler
# openssl makes the TLS tests' self-signed certificates.
[ "$need_db" = 0 ] || command -v openssl >/dev/null || apt_install openssl
# SoftHSM2: the PKCS#11 token the HSM-signer tests generate their keys in.
[ "$need_db" = 0 ] || { [ -e /usr/lib/softhsm/libsofthsm2.so ] && command -v softhsm2-util >/dev/null; } || apt_install softhsm2
[ "$need_db" = 0 ] || apt_install libclang-dev

if ! cargo nextest --version >/dev/null 2>&1; then
  log "installing cargo-nextest"
  cargo install cargo-nextest --locked
fi

if [ "$need_evm" = 1 ]; then
  # anvil (a real EVM node) and solc-js for the EVM adapter tests, pinned by tools/evm's
  # lockfile, installed once into a cache outside the clone.
  if ! cmp -s "$ROOT/tools/evm/package-lock.json" "$SOFTSTAKE_NPM_DIR/package-lock.json" \
     || [ ! -x "$SOFTSTAKE_ANVIL" ] || [ ! -x "$SOFTSTAKE_SOLCJS" ]; then
    command -v npm >/dev/null || apt_install nodejs npm
    log "installing anvil and solc-js (npm, tools/evm) into $SOFTSTAKE_NPM_DIR"
    mkdir -p "$SOFTSTAKE_NPM_DIR"
    cp "$ROOT/tools/evm/package.json" "$ROOT/tools/evm/package-lock.json" "$SOFTSTAKE_NPM_DIR/"
    (cd "$SOFTSTAKE_NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  "$SOFTSTAKE_ANVIL" --version >/dev/null || die "anvil at $SOFTSTAKE_ANVIL does not run"
fi

if [ "$need_db" = 1 ]; then
  # The official Binance client, for the REST compatibility test, in a private venv.
  venv="$HOME/.cache/softstake/venv"
  if ! "$venv/bin/python" -c "import binance_sdk_staking" >/dev/null 2>&1; then
    log "installing the Python client binance-sdk-staking (PyPI) in $venv"
    command -v python3 >/dev/null || apt_install python3 python3-venv
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check "binance-sdk-staking==6.6.0" requests
  fi
  pg_url="${SOFTSTAKE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  if ! (command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432); then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
      log "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
      for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
  fi
  if ! (command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432); then
    die "PostgreSQL is not reachable at 127.0.0.1:5432 (the tests use $pg_url; set SOFTSTAKE_TEST_PG_URL to another server)"
  fi
  # NATS with JetStream, for the balance-feed tests (SOFTSTAKE_TEST_NATS_URL points elsewhere).
  nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
  if [ -z "${SOFTSTAKE_TEST_NATS_URL:-}" ] && ! nats_up; then
    command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ] || apt_install nats-server
    if command -v nats-server >/dev/null || [ -x /usr/sbin/nats-server ]; then
      log "starting NATS with JetStream"
      mkdir -p /var/lib/nats-server 2>/dev/null || true
      start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server || echo /usr/sbin/nats-server)" -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
      for _ in $(seq 1 20); do nats_up && break; sleep 0.5; done
    fi
    nats_up || die "NATS (JetStream) is not reachable at 127.0.0.1:4222 (set SOFTSTAKE_TEST_NATS_URL to another server)"
  fi
fi
log "set-up complete (build cache: $CARGO_TARGET_DIR)"
