#!/usr/bin/env bash
# `make bench`: engine speed of lmz against llama.cpp (bench/bench.py), lossless
# compression against gzip/bzip2/xz/zstd/brotli/llama-zip (bench/compress_bench.py), then
# domain LoRA adapters (bench/domains.py: trains the four adapters on first use, about an
# hour on 2 cores, cached in $LMZ_CACHE/adapters), then lossy compression by rewrite on
# GSM8K and MATH-500 (bench/lossy.py: ratio and answer derivability; needs qwen25coder;
# about 2 minutes a problem on 1 loaded core, cached in $LMZ_CACHE/bench-lossy), then a
# bounded load test of `lmz serve` (bench/serve_load.py: 64 requests from 1, 4 and 8
# clients; under a minute), then Question-Asking compression (bench/qa.py: `lmz qa bench`
# on GSM8K, MATH-500, MBPP and HumanEval, 100 problems each by default; hours on this
# machine, resumable, results in $LMZ_CACHE/qa-bench); see their --help. Each writes its
# own section of bench/report.md and bench/report.json.
# Extra options: $BENCH_ARGS and the command line go to bench.py (e.g. BENCH_ARGS="--threads 1,2"),
# $COMPRESS_BENCH_ARGS to compress_bench.py (e.g. COMPRESS_BENCH_ARGS="--max-bytes 2048 --models none"),
# $DOMAINS_BENCH_ARGS to domains.py (e.g. DOMAINS_BENCH_ARGS="--eval-bytes 16384"),
# $LOSSY_BENCH_ARGS to lossy.py (e.g. LOSSY_BENCH_ARGS="--n 10 --resume"),
# $SERVE_BENCH_ARGS to serve_load.py (e.g. SERVE_BENCH_ARGS="--requests 32 --concurrency 1,4"),
# $QA_BENCH_ARGS to qa.py (e.g. QA_BENCH_ARGS="--limit 20 --sets gsm8k,mbpp").
# Each runs even if an earlier one failed; the exit status is nonzero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
# shellcheck disable=SC2086
"${PYTHON:-python3}" bench/bench.py ${BENCH_ARGS:-} "$@" || rc=$?
# shellcheck disable=SC2086
"${PYTHON:-python3}" bench/compress_bench.py ${COMPRESS_BENCH_ARGS:-} || rc=$?
# shellcheck disable=SC2086
"${PYTHON:-python3}" bench/domains.py ${DOMAINS_BENCH_ARGS:-} || rc=$?
# shellcheck disable=SC2086
"${PYTHON:-python3}" bench/lossy.py ${LOSSY_BENCH_ARGS:-} || rc=$?
# shellcheck disable=SC2086
"${PYTHON:-python3}" bench/serve_load.py ${SERVE_BENCH_ARGS:-} || rc=$?
# shellcheck disable=SC2086
"${PYTHON:-python3}" bench/qa.py ${QA_BENCH_ARGS:-} || rc=$?
exit $rc
