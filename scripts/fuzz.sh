#!/usr/bin/env bash
# Fuzzes each libFuzzer target of tests/fuzz for a bounded time, one after
# the other, and fails on the first crash, leak, timeout or sanitizer report.
#
#   scripts/fuzz.sh                       # every target, 60 s each
#   scripts/fuzz.sh 600 lease_value       # one target, 10 minutes
#
# Builds the "fuzz" preset (clang, ASan+UBSan) first. Each target starts from
# its seed corpus (tests/fuzz/<name>_corpus, only read) plus what earlier
# runs found (build/fuzz/corpus/<name>). A crashing input is saved as
# build/fuzz/artifacts/<name>/crash-*: fix the bug, then copy the input into
# the seed corpus so that ctest replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(etcd_response etcd_v3_response registry_uri lease_value cli_args hold_line)

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

for name in "${targets[@]}"; do
  corpus=build/fuzz/corpus/$name
  artifacts=build/fuzz/artifacts/$name
  mkdir -p "$corpus" "$artifacts"
  echo "=== fuzzing $name for ${seconds} s"
  if ! build/fuzz/tests/fuzz/${name}_fuzzer -max_total_time="$seconds" \
      -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" \
      "$corpus" "tests/fuzz/${name}_corpus" >"build/fuzz/$name.log" 2>&1; then
    tail -n 60 "build/fuzz/$name.log"
    echo "FAILED: $name (input saved under $artifacts/)"
    exit 1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|DONE" "build/fuzz/$name.log" || true
done
