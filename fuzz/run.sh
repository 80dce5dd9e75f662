#!/usr/bin/env bash
# Bounded fuzzing of every target on the stable toolchain (cargo-fuzz with
# `-s none`: no sanitizer, which needs nightly; the workspace forbids unsafe
# code, so there is no memory-safety bug for a sanitizer to find anyway).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 60 s, every target)
#
# New corpus entries go to a scratch directory; the committed seeds in
# fuzz/corpus/<target>/ stay small. A crash found is copied to
# fuzz/regressions/<target>/, where `cargo test -p llm-chaos --test integration corpus_replay`
# replays it from then on, and the script exits with status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p fuzz/logs
status=0
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t" "fuzz/regressions/$t"
    echo "== $t (${secs} s)"
    # -a: debug assertions (integer overflow checks) in the fuzzed code.
    if ! cargo fuzz run -s none -a "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        >"fuzz/logs/$t.log" 2>&1; then
        status=1
    fi
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "fuzz/logs/$t.log" || true
    for c in fuzz/artifacts/"$t"/crash-* fuzz/artifacts/"$t"/oom-* fuzz/artifacts/"$t"/timeout-*; do
        [ -e "$c" ] || continue
        echo "!! $t: $c (copied to fuzz/regressions/$t/)"
        cp "$c" "fuzz/regressions/$t/"
        status=1
    done
done
exit $status
