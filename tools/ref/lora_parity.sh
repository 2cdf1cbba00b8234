#!/usr/bin/env bash
# LoRA parity with llama.cpp: writes a random rank-8 adapter for a model with lmz's GGUF
# writer, has llama.cpp (built from the llama-cpp-python sdist by build_llamacpp.sh) and lmz
# evaluate the same ~128-token prompt without and with it, and prints how far apart they
# are, and how well lmz reproduces the adapter's effect on the logits. Tooling only.
#
# usage: tools/ref/lora_parity.sh [MODEL.gguf]   (default: SmolLM2-135M-Instruct Q4_1)
# environment: BUILD (lmz build folder, default build), LLAMA_DIR (an existing llama.cpp
#   build; default: build_llamacpp.sh's), OUT (work folder, default a temporary one),
#   RANK ALPHA MAG SEED (the adapter; default 8 16 0.06 1), TOKENS (default 128)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LMZ_CACHE=${LMZ_CACHE:-$HOME/.cache/lmz}
MODEL=${1:-$LMZ_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf}
BUILD=${BUILD:-build}
OUT=${OUT:-$(mktemp -d)}
TEXT=${TEXT:-$ROOT/../shared/data/corpora/cantrbry/alice29.txt}
LLAMA_DIR=${LLAMA_DIR:-$("$ROOT/tools/ref/build_llamacpp.sh" | tail -1)}
mkdir -p "$OUT"
cd "$ROOT"

make -s BUILD="$BUILD" "$BUILD/liblmz.a"
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -ffp-contract=off tools/ref/lora_parity.c "$BUILD/liblmz.a" \
  -lm -pthread -o "$OUT/lora_parity"
g++ -O2 -std=c++17 tools/ref/ref_logits.cpp -I "$LLAMA_DIR/include" -I "$LLAMA_DIR/ggml/include" \
  -o "$OUT/ref_logits" "$LLAMA_DIR/build/src/libllama.a" "$LLAMA_DIR/build/ggml/src/libggml.a" \
  "$LLAMA_DIR/build/ggml/src/libggml-cpu.a" "$LLAMA_DIR/build/ggml/src/libggml-base.a" -lpthread -lgomp -lm

"$OUT/lora_parity" adapter "$MODEL" "$OUT/adapter.gguf" "${RANK:-8}" "${ALPHA:-16}" "${MAG:-0.06}" "${SEED:-1}"
"$OUT/lora_parity" ids "$MODEL" "$TEXT" "${TOKENS:-128}" > "$OUT/ids.txt"
# Every logit (TOPK 0); the second pair without flash attention, for llama.cpp's own noise.
"$OUT/ref_logits" "$MODEL" 0 "$OUT/base.bin" < "$OUT/ids.txt" 2> "$OUT/ref.log"
"$OUT/ref_logits" "$MODEL" 0 "$OUT/adapted.bin" --lora "$OUT/adapter.gguf" < "$OUT/ids.txt" 2>> "$OUT/ref.log"
REF_NO_FLASH_ATTN=1 "$OUT/ref_logits" "$MODEL" 0 "$OUT/base_nofa.bin" < "$OUT/ids.txt" 2>> "$OUT/ref.log"
REF_NO_FLASH_ATTN=1 "$OUT/ref_logits" "$MODEL" 0 "$OUT/adapted_nofa.bin" --lora "$OUT/adapter.gguf" \
  < "$OUT/ids.txt" 2>> "$OUT/ref.log"
"$OUT/lora_parity" compare "$MODEL" "$OUT/adapter.gguf" "$OUT/base.bin" "$OUT/adapted.bin" \
  "$OUT/base_nofa.bin" "$OUT/adapted_nofa.bin"
