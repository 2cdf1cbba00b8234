#!/usr/bin/env bash
# Builds llama.cpp from the llama-cpp-python source package on PyPI, outside git,
# for reference fixtures (tokens, logits) and for the speed comparison in `make bench`.
# lmz never links it. Result: $LMZ_REF/llama.cpp/build/bin/{llama-tokenize,llama-bench,...}
#
# LLAMA_CPP_NO_AMX=1 builds a second copy, $LMZ_REF/llama.cpp-noamx, whose -march=native
# build leaves ggml's AMX kernels out (their feature macros undefined): on a CPU with AMX
# where those kernels crash (seen: SIGSEGV in ggml_backend_amx_mul_mat on an Intel Xeon KVM
# guest, prompt processing of every model), bench/bench.py falls back to it and says so.
#
# LLAMA_CPP_AVX2=1 builds $LMZ_REF/llama.cpp-avx2 for the AVX2 level (GGML_NATIVE=OFF:
# AVX, AVX2, FMA, F16C and BMI2, no AVX-512): llama.cpp as it runs on a CPU without
# AVX-512, the peer for lmz's AVX2 kernels (`lmz speed --isa avx2`) on a machine that has it.
set -euo pipefail
LMZ_CACHE=${LMZ_CACHE:-$HOME/.cache/lmz}
LMZ_REF=${LMZ_REF:-$LMZ_CACHE/ref}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
DIR=llama.cpp
FLAGS=""
NATIVE=ON
if [ "${LLAMA_CPP_AVX2:-0}" = 1 ]; then
  DIR=llama.cpp-avx2
  NATIVE=OFF
elif [ "${LLAMA_CPP_NO_AMX:-0}" = 1 ]; then
  DIR=llama.cpp-noamx
  FLAGS="-U__AMX_TILE__ -U__AMX_INT8__ -U__AMX_BF16__"
fi
mkdir -p "$LMZ_REF"
cd "$LMZ_REF"
if [ ! -f "llama_cpp_python-$VERSION.tar.gz" ]; then
  pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d . >&2
fi
if [ ! -d "$DIR" ]; then
  tar xzf "llama_cpp_python-$VERSION.tar.gz" "llama_cpp_python-$VERSION/vendor/llama.cpp"
  mv "llama_cpp_python-$VERSION/vendor/llama.cpp" "$DIR"
  rm -rf "llama_cpp_python-$VERSION"
fi
cd "$DIR"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=$NATIVE -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_OPENSSL=OFF -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" >&2
cmake --build build -j"$(nproc)" --target llama-tokenize llama-bench llama >&2
echo "$LMZ_REF/$DIR"
