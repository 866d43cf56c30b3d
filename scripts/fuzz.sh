#!/usr/bin/env bash
# libFuzzer targets (cargo fuzz) on softstake's untrusted parsers: the CSV inputs, amounts
# and times, the REST signed query, tokens.toml / network configs, and the adapters'
# decoding of chain answers. Each target starts from its committed seed corpus in
# fuzz/corpus/<target>; new inputs go to a working corpus in the cache, crashes to
# fuzz/artifacts/<target> (a crash is fixed with a regression test).
#   bash scripts/fuzz.sh                  build, then run every target FUZZ_SECS (60) s
#   bash scripts/fuzz.sh --build          build the targets only (CI)
#   bash scripts/fuzz.sh amounts config   run only these targets
# Writes fuzz/REPORT.md: inputs run, coverage and corpus size per target, crashes found.
set -euo pipefail
source "$(dirname "$0")/env.sh"

secs="${FUZZ_SECS:-60}"
build_only=0
targets=()
for a in "$@"; do
  case "$a" in
    --build) build_only=1 ;;
    -*) die "unknown option $a" ;;
    *) targets+=("$a") ;;
  esac
done
all=(csv_inputs amounts rest_query config chain_answers adapter_answers)
[ "${#targets[@]}" -gt 0 ] || targets=("${all[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
# cargo fuzz passes nightly flags (-Z sanitizer, -C passes=sancov); the pinned stable
# toolchain accepts them with RUSTC_BOOTSTRAP (no other toolchain can be fetched here).
export RUSTC_BOOTSTRAP=1
fuzz_target_dir="$HOME/.cache/softstake/fuzz-target"
work="$HOME/.cache/softstake/fuzz-corpus"
cd "$ROOT/fuzz"

log "building the fuzz targets (cargo fuzz, ASan) into $fuzz_target_dir"
cargo fuzz build --target-dir "$fuzz_target_dir"
[ "$build_only" = 0 ] || { log "built: ${targets[*]}"; exit 0; }

report="$ROOT/fuzz/REPORT.md"
{
  echo "# Fuzzing report"
  echo
  echo "\`bash scripts/fuzz.sh\`, $secs s per target, $(date -u +%Y-%m-%d), $(nproc) cores, rustc $(rustc --version | awk '{print $2}'), libFuzzer with AddressSanitizer."
  echo
  echo "| target | inputs run | exec/s | coverage (edges) | corpus | crashes |"
  echo "|---|---|---|---|---|---|"
} > "$report"
status=0
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "$ROOT/fuzz/artifacts/$t"
  log "fuzzing $t for $secs s"
  out="$(mktemp)"
  set +e
  cargo fuzz run --target-dir "$fuzz_target_dir" "$t" "$work/$t" "$ROOT/fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$ROOT/fuzz/artifacts/$t/" >"$out" 2>&1
  rc=$?
  set -e
  runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out" | awk '{print $2}' | tail -1 || true)"
  eps="$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$out" | awk '{print $2}' | tail -1 || true)"
  cov="$(grep -o 'cov: [0-9]*' "$out" | tail -1 | awk '{print $2}' || true)"
  corpus="$(find "$work/$t" -type f | wc -l)"
  crashes="$(find "$ROOT/fuzz/artifacts/$t" -type f | wc -l)"
  echo "| $t | ${runs:-?} | ${eps:-?} | ${cov:-?} | $corpus | $crashes |" >> "$report"
  if [ "$rc" != 0 ]; then
    status=1
    echo "error: $t stopped with $rc; the input is in fuzz/artifacts/$t:" >&2
    grep -m 20 -E "panicked|ERROR|SUMMARY" "$out" >&2 || tail -n 20 "$out" >&2
  fi
  rm -f "$out"
done
log "report: $report"
cat "$report"
exit "$status"
