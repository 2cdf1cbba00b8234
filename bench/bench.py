#!/usr/bin/env python3
"""Engine speed: lmz against llama.cpp (llama-bench) on the same GGUF files and thread counts.

For each model of MODELS that is present and each thread count, runs
    llama-bench -m MODEL -p 512 -n 128 -t N -r R -o json
    ./lmz speed -m MODEL -T N
one right after the other (interleaved, so both see the same machine load), and
reports tokens/s for pp512 (512-token prompt as one batch) and tg128 (128 single-token
decode steps) with the ratio lmz / llama.cpp, and lmz's tg128x8 (8 streams decoded in
lockstep) against its own single stream. On a CPU with AVX-512, the same again at the AVX2
level (`lmz speed --isa avx2` against llama.cpp built for AVX2 without AVX-512: what users of
CPUs without AVX-512 get; --no-avx2 skips it). Then, with the default model, the compressor's
throughput (bytes/s) and peak RSS compressing and decompressing 1 MiB of LLM text, and
this CPU's int8/f32 throughput and memory bandwidth (build/microbench). Both sides are "best of" their runs:
lmz speed reports the best of 3; for llama.cpp the best of its R samples is used (its
mean is recorded too).

Writes the "engine_speed" section of bench/report.json and bench/report.md, keeping
every other section (other scripts add theirs the same way). Nothing is written unless
every measurement succeeded. Standard library only.

usage: bench.py [--quick] [--models a,b] [--threads 1,2] [--rounds K] [--reps R] [--no-avx2] [--out-dir DIR]
       (make bench passes $BENCH_ARGS, e.g. BENCH_ARGS="--threads 1,2" make bench)
"""
import argparse, datetime, json, os, re, subprocess, sys, tarfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (bench/common.py: helpers shared with compress_bench.py)
from common import BenchError, atomic_write, cpu_info, load_fetch_models, lmz_git, run  # noqa: E402,F401

ROOT = common.ROOT
CACHE = common.CACHE
SECTION = "engine_speed"

# Models to benchmark: (name in tools/fetch_models.py, description). The default model is
# always benchmarked (and fetched if missing); any other is used only when already in the
# cache (`make models-all` fetches them), else skipped with a note.
DEFAULT_MODEL = "smollm2"
MODELS = [
    ("smollm2", "SmolLM2-135M-Instruct Q4_1"),
    ("gemma3", "gemma-3-270m Q4_K_M"),
    ("qwen25coder", "Qwen2.5-Coder"),
]

PP, TG = 512, 128
STREAMS = 8                       # lmz only: STREAMS sequences decoded in lockstep
STREAMS_KEY = "tg%dx%d" % (TG, STREAMS)
THROUGHPUT_BYTES = 1 << 20        # compress/decompress throughput on this much llm-text
THROUGHPUT_FILE = "llm-text/alpaca_eval/gpt4.json"


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- models

def resolve_models(wanted):
    """Returns ([(name, desc, path)], [skip notes])."""
    fm = load_fetch_models()
    models_dir = os.path.join(CACHE, "models")
    found, notes = [], []
    for name, desc in MODELS:
        if wanted and name not in wanted:
            continue
        if name not in fm.MODELS:
            notes.append("%s: skipped (not known to tools/fetch_models.py yet)" % name)
            continue
        cached = os.path.exists(os.path.join(models_dir, fm.MODELS[name][0]))
        if not cached and name != DEFAULT_MODEL:
            notes.append("%s: skipped (not in %s; `python3 tools/fetch_models.py %s` fetches it)"
                         % (name, models_dir, name))
            continue
        out = run([sys.executable, "tools/fetch_models.py", "--print-path", name], 3600,
                  "tools/fetch_models.py %s" % name)
        lines = out.strip().splitlines()
        if not lines or not os.path.exists(lines[-1]):
            raise BenchError("tools/fetch_models.py --print-path %s printed no model path" % name)
        found.append((name, desc, lines[-1]))
    return found, notes


# ---------------------------------------------------------------- llama.cpp

def build_llamacpp(variant=None):
    """VARIANT: None (-march=native), "noamx" (native without ggml's AMX kernels) or "avx2"
    (AVX2/FMA/F16C, no AVX-512: llama.cpp as on a CPU without AVX-512)."""
    log_path = os.path.join(os.environ.get("LMZ_REF") or os.path.join(CACHE, "ref"),
                            "build_llamacpp%s.log" % ("_" + variant if variant else ""))
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    log("building/locating llama.cpp%s with tools/ref/build_llamacpp.sh (log: %s)"
        % ({"noamx": " without AMX", "avx2": " for the AVX2 level"}.get(variant, ""), log_path))
    env = dict(os.environ, LLAMA_CPP_NO_AMX="1" if variant == "noamx" else "0",
               LLAMA_CPP_AVX2="1" if variant == "avx2" else "0")
    with open(log_path, "w") as lf:
        p = subprocess.run(["bash", "tools/ref/build_llamacpp.sh"], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=lf, text=True, env=env)
    if p.returncode != 0:
        with open(log_path) as lf:
            tail = "".join(lf.readlines()[-25:])
        raise BenchError("llama.cpp build failed (tools/ref/build_llamacpp.sh exit %d); last lines of %s:\n%s"
                         % (p.returncode, log_path, tail))
    lines = p.stdout.strip().splitlines()
    if not lines:
        raise BenchError("tools/ref/build_llamacpp.sh printed no llama.cpp directory")
    d = lines[-1].strip()
    exe = os.path.join(d, "build", "bin", "llama-bench")
    if not os.access(exe, os.X_OK):
        raise BenchError("llama-bench not found at %s after the build" % exe)
    return d, exe


def llamacpp_info(d, exe):
    info = {"dir": d}
    ver = run([exe, "--version"], 60, "llama-bench --version", merge=True)
    m = re.search(r"version:\s*(\S+)\s*\(build (\d+), commit (\S+)\)", ver)
    if m:
        info["version"], info["build_number"], info["build_commit"] = m.group(1), int(m.group(2)), m.group(3)
    m = re.search(r"built with (.+)", ver)
    if m:
        info["compiler"] = m.group(1).strip()
    # Source: the llama-cpp-python sdist the build script unpacked; its CHANGELOG names the
    # vendored llama.cpp commit (the sdist has no llama.cpp git metadata of its own).
    script = open(os.path.join(ROOT, "tools", "ref", "build_llamacpp.sh")).read()
    m = re.search(r"LLAMA_CPP_PYTHON_VERSION:-([0-9][^}]*)\}", script)
    pyver = os.environ.get("LLAMA_CPP_PYTHON_VERSION") or (m.group(1) if m else None)
    if pyver:
        info["source"] = "llama-cpp-python %s sdist (PyPI), vendor/llama.cpp" % pyver
        tgz = os.path.join(os.path.dirname(d), "llama_cpp_python-%s.tar.gz" % pyver)
        if os.path.exists(tgz):
            try:
                with tarfile.open(tgz) as t:
                    f = t.extractfile("llama_cpp_python-%s/CHANGELOG.md" % pyver)
                    text = f.read().decode("utf-8", "replace") if f else ""
                sec = re.search(r"^## \[%s\](.*?)(?=^## \[|\Z)" % re.escape(pyver), text, re.S | re.M)
                cm = re.search(r"llama\.cpp@([0-9a-f]{7,40})", sec.group(1) if sec else "")
                if cm:
                    info["upstream_commit"] = cm.group(1)
            except (OSError, KeyError, tarfile.TarError):
                pass
    cache = os.path.join(d, "build", "CMakeCache.txt")
    if os.path.exists(cache):
        opts = {}
        for line in open(cache):
            m = re.match(r"(CMAKE_BUILD_TYPE|GGML_NATIVE|GGML_OPENMP|GGML_LLAMAFILE|GGML_CPU_REPACK):\w+=(.*)", line)
            if m:
                opts[m.group(1)] = m.group(2).strip()
        info["cmake"] = opts
    return info


def crashing_models(exe, models):
    """The models whose prompt processing crashes this llama-bench (a short probe each)."""
    bad = []
    for name, _, path in models:
        p = subprocess.run([exe, "-m", path, "-p", "32", "-n", "0", "-t", "1", "-r", "1"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        if p.returncode < 0:
            bad.append("%s (signal %d)" % (name, -p.returncode))
    return bad


def llama_bench(exe, model, threads, reps, timeout):
    cmd = [exe, "-m", model, "-p", str(PP), "-n", str(TG), "-t", str(threads), "-r", str(reps), "-o", "json"]
    out = run(cmd, timeout, "llama-bench")
    try:
        rows = json.loads(out)
    except ValueError as e:
        raise BenchError("llama-bench printed no valid JSON (%s): %s" % (e, " ".join(cmd)))
    res = {}
    for r in rows:
        key = "pp%d" % PP if r.get("n_prompt") == PP and r.get("n_gen") == 0 else \
              "tg%d" % TG if r.get("n_gen") == TG and r.get("n_prompt") == 0 else None
        if key:
            samples = r.get("samples_ts") or [r["avg_ts"]]
            res[key] = {"best": max(samples), "avg": r["avg_ts"], "stddev": r.get("stddev_ts", 0.0),
                        "samples": samples}
            res["_meta"] = {k: r.get(k) for k in ("build_commit", "build_number", "model_type", "model_size",
                                                  "model_n_params", "flash_attn", "n_batch", "n_ubatch",
                                                  "type_k", "type_v", "backends", "repack")}
    for k in ("pp%d" % PP, "tg%d" % TG):
        if k not in res:
            raise BenchError("llama-bench output has no %s result: %s" % (k, " ".join(cmd)))
    return res


# ---------------------------------------------------------------- lmz

def lmz_speed(model, threads, timeout, isa=None):
    exe = os.path.join(ROOT, "lmz")
    if not os.access(exe, os.X_OK):
        raise BenchError("./lmz not found; run `make` first")
    cmd = [exe, "speed", "-m", model, "-T", str(threads), "--streams", str(STREAMS)] + (["--isa", isa] if isa else [])
    out = run(cmd, timeout, "lmz speed")
    kv = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2:
            kv[parts[0]] = parts[1].strip()
    res = {}
    for k in ("pp%d" % PP, "tg%d" % TG, STREAMS_KEY):
        try:
            res[k] = float(kv[k])
        except (KeyError, ValueError):
            raise BenchError("lmz speed printed no %s line: %s\n%s" % (k, " ".join(cmd), out))
    if kv.get("threads") and kv["threads"] != str(threads):
        raise BenchError("lmz speed ran with %s threads, asked for %d" % (kv["threads"], threads))
    res["isa"] = kv.get("isa", "?")
    res["model_name"] = kv.get("model", "?")
    return res


def timed_rss(cmd, stdin_path, stdout_path, timeout):
    """Runs CMD with files as stdin/stdout; returns (seconds, peak RSS in bytes) of that child.
    A run still going after TIMEOUT seconds is killed (a hang); a slow run that finishes in
    time counts."""
    import threading, time
    with open(stdin_path, "rb") as fin, open(stdout_path, "wb") as fout:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(p.pid, 0)
        except KeyboardInterrupt:
            p.kill()
            raise
        finally:
            timer.cancel()
        secs = time.monotonic() - t0
        err = p.stderr.read().decode("utf-8", "replace")
        p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        why = "killed after %.0f s (timeout)" % secs if secs >= timeout else "exit %d" % p.returncode
        raise BenchError("%s failed (%s): %s" % (" ".join(cmd), why, err.strip()[-500:]))
    return secs, usage.ru_maxrss * 1024


# The compressor's slowest plausible speed, for its time limit: a 1 MiB decompression took
# 1,941 s (540 B/s) on one core of a machine running other work, over the old fixed limit.
SLOWEST_BYTES_PER_S = 100


def throughput(model_path, threads, nbytes, timeout, tmpdir):
    """Compress and decompress the first NBYTES of THROUGHPUT_FILE with the default model."""
    src = os.path.join(ROOT, "..", "shared", "data", THROUGHPUT_FILE)
    if not os.path.exists(src):
        raise BenchError("%s not found (../shared/data)" % src)
    data = open(src, "rb").read()[:nbytes]
    os.makedirs(tmpdir, exist_ok=True)
    inp, arc, back = (os.path.join(tmpdir, n) for n in ("input", "input.lmz", "input.back"))
    with open(inp, "wb") as f:
        f.write(data)
    exe = os.path.join(ROOT, "lmz")
    timeout = max(timeout, len(data) / SLOWEST_BYTES_PER_S)
    c_s, c_rss = timed_rss([exe, "-c", "-q", "-T", str(threads), "-m", model_path], inp, arc, timeout)
    d_s, d_rss = timed_rss([exe, "-d", "-c", "-q", "-T", str(threads), "-m", model_path], arc, back, timeout)
    if open(back, "rb").read() != data:
        raise BenchError("throughput: the decompressed bytes differ from the input")
    size = os.path.getsize(arc)
    model_bytes = os.path.getsize(model_path)
    return {"file": THROUGHPUT_FILE, "bytes": len(data), "threads": threads, "archive_bytes": size,
            "bits_per_byte": 8.0 * size / len(data),
            "compress_seconds": c_s, "compress_bytes_per_s": len(data) / c_s, "compress_peak_rss": c_rss,
            "decompress_seconds": d_s, "decompress_bytes_per_s": len(data) / d_s, "decompress_peak_rss": d_rss,
            "model_file_bytes": model_bytes, "rss_target": model_bytes + 150 * 2 ** 20}


MICROBENCH = os.path.join(ROOT, "build", "microbench")


def build_microbench():
    """Built before anything is measured (an hour of measurements must not be lost to a
    missing binary at the end)."""
    run(["make", "--no-print-directory", "build/microbench"], 600, "make build/microbench")
    if not os.access(MICROBENCH, os.X_OK):
        raise BenchError("make build/microbench left no %s" % MICROBENCH)


def microbench():
    try:
        return json.loads(run([MICROBENCH], 600, "microbench"))
    except ValueError as e:
        raise BenchError("microbench printed no valid JSON (%s)" % e)


# ---------------------------------------------------------------- report

def fmt(x):
    return "%.1f" % x


def table_rows(results):
    hdr = ["model", "threads", "lmz pp%d" % PP, "llama.cpp pp%d" % PP, "ratio",
           "lmz tg%d" % TG, "llama.cpp tg%d" % TG, "ratio", "lmz %s" % STREAMS_KEY, "x single"]
    rows = []
    for r in results:
        rows.append([r["model"], str(r["threads"]), fmt(r["lmz"]["pp%d" % PP]), fmt(r["llamacpp"]["pp%d" % PP]),
                     "%.2f" % r["ratio"]["pp%d" % PP], fmt(r["lmz"]["tg%d" % TG]),
                     fmt(r["llamacpp"]["tg%d" % TG]), "%.2f" % r["ratio"]["tg%d" % TG],
                     fmt(r["lmz"][STREAMS_KEY]), "%.2f" % r["streams_over_single"]])
    return hdr, rows


def text_table(results):
    hdr, rows = table_rows(results)
    w = [max(len(x) for x in col) for col in zip(hdr, *rows)]
    line = lambda cells: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cells))
    return "\n".join([line(hdr)] + [line(r) for r in rows])


def markdown_section(data):
    hdr, rows = table_rows(data["results"])
    lc = data["llamacpp"]
    out = ["## Engine speed: lmz vs llama.cpp", "",
           "Tokens/s; pp%d = a %d-token prompt as one batch, tg%d = %d single-token decode steps. "
           "Ratio = lmz / llama.cpp (higher is better for lmz). Both are best-of-runs: lmz speed "
           "reports the best of 3, llama.cpp the best of its %d sample(s) (mean in report.json). "
           "%s = %d independent streams decoded in lockstep (one batch of %d tokens per step, logits "
           "for every token, as decompression does): tokens of all streams per second; x single = "
           "its ratio to lmz's single-stream tg%d (llama-bench has no equivalent)."
           % (PP, PP, TG, TG, data["llamacpp_repetitions"], STREAMS_KEY, STREAMS, STREAMS, TG), "",
           "| " + " | ".join(hdr) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    out.append("")
    isas = sorted({r["lmz"]["isa"] for r in data["results"]})
    cmake = lc.get("cmake", {})
    out += ["- date: %s" % data["date"],
            "- CPU: %s, %d logical CPUs; flags: %s" % (data["cpu"]["model"], data["cpu"]["cpus"],
                                                      ", ".join(data["cpu"]["flags"]) or "none of note"),
            "- lmz: commit %s, ISA %s" % (data["lmz_commit"], ", ".join(isas)),
            "- llama.cpp: %s; upstream commit %s; llama-bench version %s (build %s, commit %s); %s; %s"
            % (lc.get("source", "?"), lc.get("upstream_commit", "?"), lc.get("version", "?"),
               lc.get("build_number", "?"), lc.get("build_commit", "?"), lc.get("compiler", "?"),
               ", ".join("%s=%s" % kv for kv in sorted(cmake.items())) or "cmake options unknown"),
            "- llama-bench: `%s` (flash attention at its default: %s)" % (data["llamacpp_command"],
                                                                         data.get("llamacpp_flash_attn", "?")),
            "- lmz: `%s`" % data["lmz_command"],
            "- run: %s; %d round(s), llama-bench then lmz for each model and thread count"
            % ("quick" if data["quick"] else "full", data["rounds"])]
    for n in data["notes"]:
        out.append("- note: %s" % n)
    lvl = data.get("avx2_level")
    if lvl:
        hdr2, rows2 = table_rows(lvl["results"])
        lc2 = lvl["llamacpp"] or {}
        out += ["", "### At the AVX2 level (CPUs without AVX-512)", "",
                "The same comparison with both sides held to AVX2 on this CPU: `%s` against llama-bench "
                "from the same source built with GGML_NATIVE=OFF (AVX, AVX2, FMA, F16C, BMI2; no AVX-512: "
                "`LLAMA_CPP_AVX2=1 tools/ref/build_llamacpp.sh`; %s), in the same run, interleaved the "
                "same way." % (lvl["lmz_command"], ", ".join("%s=%s" % kv for kv in sorted(lc2.get("cmake", {}).items()))
                               or "cmake options unknown"), "",
                "| " + " | ".join(hdr2) + " |",
                "|" + "|".join(["---"] + ["---:"] * (len(hdr2) - 1)) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows2]
    mib = 2.0 ** 20
    for t in data.get("throughput", []):
        out += ["", "### Compressor throughput (%s, %d thread(s))" % (DEFAULT_MODEL, t["threads"]), "",
                "First %d bytes of `%s`, `lmz -c -T %d` then `lmz -d -c -T %d`, round trip verified. "
                "Peak RSS is the child's maximum resident set (wait4)." % (t["bytes"], t["file"], t["threads"], t["threads"]),
                "",
                "| | seconds | bytes/s | peak RSS | target (model file + 150 MiB) |",
                "|---|---:|---:|---:|---:|",
                "| compress | %.1f | %.0f | %.0f MiB | %.0f MiB |" % (t["compress_seconds"], t["compress_bytes_per_s"],
                                                                t["compress_peak_rss"] / mib, t["rss_target"] / mib),
                "| decompress | %.1f | %.0f | %.0f MiB | %.0f MiB |" % (t["decompress_seconds"], t["decompress_bytes_per_s"],
                                                                  t["decompress_peak_rss"] / mib, t["rss_target"] / mib),
                "", "Archive: %d bytes, %.3f bits/byte." % (t["archive_bytes"], t["bits_per_byte"])]
    mb = data.get("microbench")
    if mb:
        out += ["", "### This CPU's limits (`build/microbench`, bench/microbench.c)", ""]
        out += ["- %s: %.3g" % (k, v) for k, v in mb.items()]
    return "\n".join(out)


def merged_json(path, data):
    return common.merged_json(path, SECTION, data)


def merged_md(path, body):
    return common.merged_md(path, SECTION, body)


def compare(exe, models, threads, rounds, reps, timeout, isa=None):
    """Interleaved rounds of llama-bench (EXE) and lmz speed (at ISA, or its best level) per
    model and thread count; the best of all rounds. Returns (rows, llama.cpp's flash_attn)."""
    results, fa = [], None
    label = " at %s" % isa if isa else ""
    for name, desc, path in models:
        for t in threads:
            best_l, best_c = None, None
            for rnd in range(rounds):
                log("%s%s, %d thread(s), round %d/%d: llama-bench" % (name, label, t, rnd + 1, rounds))
                c = llama_bench(exe, path, t, reps, timeout)
                log("%s%s, %d thread(s), round %d/%d: lmz speed" % (name, label, t, rnd + 1, rounds))
                l = lmz_speed(path, t, timeout, isa)
                fa = c["_meta"].get("flash_attn")
                if best_c is None:
                    best_c, best_l = c, l
                else:
                    for k in ("pp%d" % PP, "tg%d" % TG):
                        if c[k]["best"] > best_c[k]["best"]:
                            best_c[k] = c[k]
                    for k in ("pp%d" % PP, "tg%d" % TG, STREAMS_KEY):
                        best_l[k] = max(best_l[k], l[k])
            row = {"model": name, "description": desc, "file": os.path.basename(path), "threads": t,
                   "lmz": best_l,
                   "llamacpp": {k: best_c[k]["best"] for k in ("pp%d" % PP, "tg%d" % TG)},
                   "llamacpp_detail": {k: best_c[k] for k in ("pp%d" % PP, "tg%d" % TG)},
                   "llamacpp_model_type": best_c["_meta"].get("model_type"),
                   "ratio": {k: best_l[k] / best_c[k]["best"] for k in ("pp%d" % PP, "tg%d" % TG)},
                   "streams_over_single": best_l[STREAMS_KEY] / best_l["tg%d" % TG]}
            results.append(row)
            log("%s%s, %d thread(s): lmz pp%d %.1f tg%d %.1f | llama.cpp pp%d %.1f tg%d %.1f"
                % (name, label, t, PP, best_l["pp%d" % PP], TG, best_l["tg%d" % TG],
                   PP, row["llamacpp"]["pp%d" % PP], TG, row["llamacpp"]["tg%d" % TG]))
    return results, fa


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="lmz vs llama.cpp engine speed (pp%d, tg%d)" % (PP, TG))
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: llama-bench -r 1, one round; reports are not written unless --out-dir is given")
    ap.add_argument("--models", help="comma-separated names from the table (default: all that are cached): "
                    + ", ".join(m[0] for m in MODELS))
    ap.add_argument("--threads", help="comma-separated thread counts (default: this machine's CPUs)")
    ap.add_argument("--rounds", type=int, default=2,
                    help="interleaved rounds (llama-bench, then lmz) per model and thread count; the best "
                    "of all rounds is kept (default 2; --quick: 1)")
    ap.add_argument("--reps", type=int, default=3, help="llama-bench -r (default 3; --quick: 1)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds allowed for one llama-bench or lmz speed run (a hang is killed); a compressor throughput run gets at least its bytes / %d" % SLOWEST_BYTES_PER_S)
    ap.add_argument("--out-dir", help="where report.md/report.json go (default: bench/)")
    ap.add_argument("--throughput-bytes", type=int, default=THROUGHPUT_BYTES,
                    help="bytes of %s compressed and decompressed with the default model to measure "
                    "bytes/s and peak RSS (default %d; 0 skips)" % (THROUGHPUT_FILE, THROUGHPUT_BYTES))
    ap.add_argument("--no-avx2", action="store_true",
                    help="on a CPU with AVX-512, skip the second comparison at the AVX2 level (lmz --isa avx2 "
                    "against llama.cpp built for AVX2 without AVX-512)")
    a = ap.parse_args()

    cpu = cpu_info()
    try:
        threads = [int(t) for t in a.threads.split(",")] if a.threads else [cpu["cpus"]]
    except ValueError:
        ap.error("--threads takes comma-separated integers")
    if any(t < 1 for t in threads) or a.rounds < 1 or a.reps < 1:
        ap.error("thread counts, --rounds and --reps must be >= 1")
    reps = 1 if a.quick else a.reps
    rounds = 1 if a.quick else a.rounds
    wanted = [m.strip() for m in a.models.split(",") if m.strip()] if a.models else None
    unknown = [w for w in (wanted or []) if w not in [m[0] for m in MODELS]]
    if unknown:
        ap.error("unknown model(s) %s (table: %s)" % (", ".join(unknown), ", ".join(m[0] for m in MODELS)))
    write = not a.quick or a.out_dir is not None
    out_dir = os.path.abspath(a.out_dir) if a.out_dir else os.path.join(ROOT, "bench")

    try:
        build_microbench()
        d, exe = build_llamacpp()
        models, notes = resolve_models(wanted)
        for n in notes:
            log(n)
        if not models:
            raise BenchError("no model to benchmark")
        crashed = crashing_models(exe, models)
        if crashed:
            # Seen on an Intel Xeon KVM guest: ggml's AMX kernels (compiled in by -march=native)
            # segfault in prompt processing; the same source without them is the peer then.
            log("llama-bench crashed on %s: using a build without ggml's AMX kernels" % ", ".join(crashed))
            d, exe = build_llamacpp("noamx")
            still = crashing_models(exe, models)
            if still:
                raise BenchError("llama-bench crashes even without AMX on %s" % ", ".join(still))
            notes.append("llama-bench as first built (-march=native, ggml's AMX kernels in) crashed in prompt "
                         "processing on %s (SIGSEGV in ggml_backend_amx_mul_mat); every llama.cpp figure here is "
                         "from the same source built without AMX (`LLAMA_CPP_NO_AMX=1 tools/ref/build_llamacpp.sh`: "
                         "AVX-512/VNNI kernels as on a CPU without AMX)" % ", ".join(crashed))
        lc = llamacpp_info(d, exe)
        results, fa = compare(exe, models, threads, rounds, reps, a.timeout)
        results_avx2, lc_avx2 = [], None
        if "avx512f" in cpu["flags"] and not a.no_avx2:
            d2, exe2 = build_llamacpp("avx2")
            lc_avx2 = llamacpp_info(d2, exe2)
            results_avx2, _ = compare(exe2, models, threads, rounds, reps, a.timeout, isa="avx2")
        tp = []
        default = [m for m in models if m[0] == DEFAULT_MODEL]
        if a.throughput_bytes > 0 and not default:
            notes.append("compressor throughput: skipped (the default model %s is not among --models)" % DEFAULT_MODEL)
        if a.throughput_bytes > 0 and default:
            name, desc, path = default[0]
            for t in threads:
                log("%s: compressor throughput on %d bytes, %d thread(s)" % (name, a.throughput_bytes, t))
                try:
                    tp.append(throughput(path, t, a.throughput_bytes, a.timeout, os.path.join(ROOT, "bench", "out")))
                except BenchError as e:  # the engine results above still get reported
                    notes.append("compressor throughput on %d thread(s) failed: %s" % (t, e))
                    log("compressor throughput failed: %s" % e)
                    continue
                log("compress %.0f B/s, decompress %.0f B/s, peak RSS %.0f/%.0f MiB"
                    % (tp[-1]["compress_bytes_per_s"], tp[-1]["decompress_bytes_per_s"],
                       tp[-1]["compress_peak_rss"] / 2 ** 20, tp[-1]["decompress_peak_rss"] / 2 ** 20))
        log("microbench")
        mb = microbench()
        data = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                "throughput": tp, "microbench": mb,
                "quick": a.quick, "rounds": rounds, "llamacpp_repetitions": reps,
                "cpu": cpu, "lmz_commit": lmz_git(), "llamacpp": lc,
                "llamacpp_flash_attn": {-1: "auto", 0: "off", 1: "on"}.get(fa, fa),
                "llamacpp_command": "llama-bench -m MODEL -p %d -n %d -t N -r %d -o json" % (PP, TG, reps),
                "lmz_command": "./lmz speed -m MODEL -T N --streams %d" % STREAMS,
                "units": "tokens/s", "notes": notes, "results": results,
                "avx2_level": {"results": results_avx2, "llamacpp": lc_avx2,
                               "lmz_command": "./lmz speed -m MODEL -T N --streams %d --isa avx2" % STREAMS}
                if results_avx2 else None}
        print(text_table(results))
        if results_avx2:
            print("at the AVX2 level:")
            print(text_table(results_avx2))
        if write:
            os.makedirs(out_dir, exist_ok=True)
            jpath, mpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")
            jtext, mtext = merged_json(jpath, data), merged_md(mpath, markdown_section(data))
            atomic_write(jpath, jtext)
            atomic_write(mpath, mtext)
            log("wrote %s and %s" % (mpath, jpath))
        else:
            log("--quick: reports not written (give --out-dir DIR to write them)")
    except BenchError as e:
        print("bench: FAILED: %s" % e, file=sys.stderr)
        print("bench: no report written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; no report written", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
