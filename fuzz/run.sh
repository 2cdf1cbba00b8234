#!/bin/sh
# run.sh — builds and runs the libFuzzer targets (clang, ASan + UBSan) for a bounded time.
#
#   fuzz/run.sh [NAME...]     NAME selects fuzz/fuzz_NAME.c; default: every fuzz/fuzz_*.c
#   FUZZ_SECONDS=60           time per target (libFuzzer -max_total_time)
#   FUZZ_JOBS=N               targets run N at a time (default: one per CPU)
#   FUZZ_ARGS="..."           extra libFuzzer options, e.g. "-jobs=4 -workers=4"
#
# Each target is seeded from tests/fixtures/NAME/ when that folder exists (the regression
# corpus), keeps what it discovers in build-fuzz/corpus/NAME/, and writes crashing inputs to
# build-fuzz/crashes/NAME/. A target's output goes to build-fuzz/logs/NAME.log; its final
# statistics are printed when it ends, its whole log when it fails. Exits non-zero if any
# target crashed, leaked, timed out or failed to build. A crash found here belongs in the
# regression corpus once fixed.
set -eu
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
FUZZ_ARGS=${FUZZ_ARGS:-}
OUT=build-fuzz
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all"

command -v clang >/dev/null || { echo "fuzz/run.sh: clang is required (libFuzzer)" >&2; exit 2; }

# The library goes through the Makefile's own rules, so it gets the project's warnings and
# determinism flags (the Makefile appends them to CFLAGS from the environment); fuzzer-no-link
# adds the coverage instrumentation libFuzzer steers by.
CFLAGS="-O1 -g $SANITIZE -fsanitize=fuzzer-no-link" \
    make --no-print-directory -j"$FUZZ_JOBS" BUILD=$OUT/obj CC=clang "$OUT/obj/liblmz.a"

if [ $# -gt 0 ]; then
    names="$*"
else
    names=$(for src in fuzz/fuzz_*.c; do name=${src#fuzz/fuzz_}; echo "${name%.c}"; done)
fi

rm -rf "$OUT/status"
mkdir -p "$OUT/logs" "$OUT/status"
for name in $names; do
    echo "== fuzz_$name: building"
    # shellcheck disable=SC2086  # SANITIZE holds several flags
    if ! clang -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror $SANITIZE -fsanitize=fuzzer \
            -o "$OUT/fuzz_$name" "fuzz/fuzz_$name.c" "$OUT/obj/liblmz.a" -lm -pthread; then
        echo "$name(build)" > "$OUT/status/$name"
    fi
done

# One target: runs it, records a failure in status/NAME, prints its result.
run_one() {
    name=$1
    [ -e "$OUT/status/$name" ] && return 0   # did not build
    corpus=$OUT/corpus/$name
    crashes=$OUT/crashes/$name
    log=$OUT/logs/$name.log
    mkdir -p "$corpus" "$crashes"
    seeds=""
    [ -d "tests/fixtures/$name" ] && seeds="tests/fixtures/$name"
    echo "== fuzz_$name: running for ${FUZZ_SECONDS}s (seeds: ${seeds:-none}; log: $log)"
    # shellcheck disable=SC2086  # FUZZ_ARGS and seeds are intentionally word-split
    if "$OUT/fuzz_$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$crashes/" $FUZZ_ARGS "$corpus" $seeds > "$log" 2>&1; then
        echo "== fuzz_$name: done: $(grep -E '^stat::number_of_executed_units' "$log" | sed 's/.*: *//') runs," \
             "$(grep -E '^stat::new_units_added' "$log" | sed 's/.*: *//') new inputs"
    else
        cat "$log" >&2
        echo "== fuzz_$name: FAILED; crashing input in $crashes/ (reproduce: $OUT/fuzz_$name FILE)" >&2
        echo "$name" > "$OUT/status/$name"
    fi
}

# FUZZ_JOBS targets at a time.
running=0
for name in $names; do
    run_one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$FUZZ_JOBS" ]; then
        wait
        running=0
    fi
done
wait

failed=$(cat "$OUT"/status/* 2>/dev/null | tr '\n' ' ')
if [ -n "$failed" ]; then
    echo "fuzz: failed: $failed" >&2
    exit 1
fi
echo "fuzz: all targets ran ${FUZZ_SECONDS}s without a crash"
