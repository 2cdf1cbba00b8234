#!/usr/bin/env bash
# Builds llama.cpp from the llama-cpp-python source package on PyPI, outside git,
# for reference fixtures (tokens, logits) and for the speed comparison in `make bench`.
# lmz never links it. Result: $LMZ_REF/llama.cpp/build/bin/{llama-tokenize,llama-bench,...}
set -euo pipefail
LMZ_CACHE=${LMZ_CACHE:-$HOME/.cache/lmz}
LMZ_REF=${LMZ_REF:-$LMZ_CACHE/ref}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
mkdir -p "$LMZ_REF"
cd "$LMZ_REF"
if [ ! -f "llama_cpp_python-$VERSION.tar.gz" ]; then
  pip download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d . >&2
fi
if [ ! -d llama.cpp ]; then
  tar xzf "llama_cpp_python-$VERSION.tar.gz" "llama_cpp_python-$VERSION/vendor/llama.cpp"
  mv "llama_cpp_python-$VERSION/vendor/llama.cpp" llama.cpp
  rm -rf "llama_cpp_python-$VERSION"
fi
cd llama.cpp
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF \
  -DLLAMA_OPENSSL=OFF >&2
cmake --build build -j"$(nproc)" --target llama-tokenize llama-bench llama >&2
echo "$LMZ_REF/llama.cpp"
