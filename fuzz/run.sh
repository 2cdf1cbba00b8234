#!/bin/sh
# run.sh — builds and runs the libFuzzer targets (clang, ASan + UBSan) for a bounded time.
#
#   fuzz/run.sh [NAME...]     NAME selects fuzz/fuzz_NAME.c; default: every fuzz/fuzz_*.c
#   FUZZ_SECONDS=60           time per target (libFuzzer -max_total_time)
#   FUZZ_ARGS="..."           extra libFuzzer options, e.g. "-jobs=4 -workers=4"
#
# Each target is seeded from tests/fixtures/NAME/ when that folder exists (the regression
# corpus), keeps what it discovers in build-fuzz/corpus/NAME/, and writes crashing inputs to
# build-fuzz/crashes/NAME/. Exits non-zero if any target crashed, leaked, timed out or failed
# to build. A crash found here belongs in the regression corpus once fixed.
set -eu
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_ARGS=${FUZZ_ARGS:-}
OUT=build-fuzz
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all"

command -v clang >/dev/null || { echo "fuzz/run.sh: clang is required (libFuzzer)" >&2; exit 2; }

# The library goes through the Makefile's own rules, so it gets the project's warnings and
# determinism flags (the Makefile appends them to CFLAGS from the environment); fuzzer-no-link
# adds the coverage instrumentation libFuzzer steers by.
CFLAGS="-O1 -g $SANITIZE -fsanitize=fuzzer-no-link" \
    make --no-print-directory BUILD=$OUT/obj CC=clang "$OUT/obj/liblmz.a"

if [ $# -gt 0 ]; then
    targets=$(for name in "$@"; do echo "fuzz/fuzz_$name.c"; done)
else
    targets=$(ls fuzz/fuzz_*.c)
fi

failed=""
for src in $targets; do
    name=${src#fuzz/fuzz_}
    name=${name%.c}
    bin=$OUT/fuzz_$name
    echo "== fuzz_$name: building"
    # shellcheck disable=SC2086  # SANITIZE holds several flags
    if ! clang -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror $SANITIZE -fsanitize=fuzzer \
            -o "$bin" "$src" "$OUT/obj/liblmz.a" -lm -pthread; then
        failed="$failed $name(build)"
        continue
    fi
    corpus=$OUT/corpus/$name
    crashes=$OUT/crashes/$name
    mkdir -p "$corpus" "$crashes"
    seeds=""
    [ -d "tests/fixtures/$name" ] && seeds="tests/fixtures/$name"
    echo "== fuzz_$name: running for ${FUZZ_SECONDS}s (seeds: ${seeds:-none})"
    # shellcheck disable=SC2086  # FUZZ_ARGS and seeds are intentionally word-split
    if ! "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$crashes/" $FUZZ_ARGS "$corpus" $seeds; then
        echo "== fuzz_$name: FAILED; crashing input in $crashes/ (reproduce: $bin FILE)" >&2
        failed="$failed $name"
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed" >&2
    exit 1
fi
echo "fuzz: all targets ran ${FUZZ_SECONDS}s without a crash"
