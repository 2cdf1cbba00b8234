#!/usr/bin/env bash
# `make bench`: engine speed of lmz against llama.cpp; see bench/bench.py --help.
# Extra options can come from the command line or from $BENCH_ARGS (e.g. BENCH_ARGS="--threads 1,2").
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC2086
exec "${PYTHON:-python3}" bench/bench.py ${BENCH_ARGS:-} "$@"
