#!/usr/bin/env bash
# Fuzz smoke test: builds the three targets with cargo-fuzz on the stable toolchain and runs
# each for a short time (default 20 s) on the committed seeds. Exits non-zero on a crash.
#
#   fuzz/smoke.sh            # 20 s per target
#   SMOKE_SECS=60 fuzz/smoke.sh
#
# Cost on the 2-core CI machine: installing cargo-fuzz ~1 min (once), building the targets
# ~3.5 min from scratch (shares nothing with the main target dir), then 3 x SMOKE_SECS.
set -euo pipefail
cd "$(dirname "$0")"
secs="${SMOKE_SECS:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
# -s none: coverage instrumentation only (no sanitizer), which stable rustc supports.
# Stable rustc is enough: -s none passes no -Z flag.
cargo fuzz build -s none --fuzz-dir . --target "$triple"
for t in smtx gguf checkpoint; do
    work="$(mktemp -d)"
    mkdir -p "artifacts/$t"
    echo "== fuzz smoke: $t (${secs}s)"
    status=0
    "target/$triple/release/$t" "$work" "corpus/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 > "$work.log" 2>&1 || status=$?
    grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec)|DONE|ERROR|panicked|Test unit written" "$work.log" || true
    if [ "$status" -ne 0 ]; then tail -n 40 "$work.log" >&2; fi
    rm -f "$work.log"
    rm -rf "$work"
    if [ "$status" -ne 0 ]; then
        echo "fuzz smoke: $t failed (exit $status); reproducer in fuzz/artifacts/$t/" >&2
        exit "$status"
    fi
done
echo "fuzz smoke: all targets clean"
