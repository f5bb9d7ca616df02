#!/usr/bin/env bash
# Runs each ft fuzz target for a fixed time and prints libFuzzer's final statistics.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     default: 60 seconds, every target
#
# Works on a stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags.
# New inputs go to fuzz/corpus/<target> (ignored by git); the committed seeds in
# fuzz/seeds/<target> are only read. Crashes land in fuzz/artifacts/<target>.
set -euo pipefail

seconds="${1:-60}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    targets=(frame request response body)
fi

cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz (a few minutes, once)" >&2
    cargo install cargo-fuzz --locked
fi
if [ ! -d seeds ]; then
    cargo run --quiet --example write_seeds
fi

mkdir -p target/logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    log="target/logs/$target.log"
    echo "== $target: ${seconds}s, log in fuzz/$log" >&2
    started=$(date +%s)
    if cargo fuzz run --debug-assertions "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status="FAILED (exit $?)"
        failed+=("$target")
    fi
    ended=$(date +%s)
    echo "== $target: $status after $((ended - started))s wall clock (build included)"
    grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|stat::new_units_added)|#[0-9]+[[:space:]]+DONE|SUMMARY|panicked|Test unit written' "$log" || true
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "targets with findings: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/target/logs/)" >&2
    exit 1
fi
