#!/usr/bin/env python3
"""Lossless compression: lmz against gzip, bzip2, xz, zstd, brotli and llama-zip, on the same bytes.

Inputs (from ../shared/data, see its README):
  files      each LLM-text file whole: alpaca_eval/*.json, arena-hard/*.jsonl (question.jsonl
             too), mt_bench/*.jsonl, gsm8k_gpt3_solutions.jsonl
  responses  single responses, each compressed alone; lmz is given the prompt it answers as
             context (`lmz --context FILE`; the receiver has it, it is not stored), the other
             compressors cannot use it: alpaca_eval (instruction -> output), arena-hard
             (question.jsonl prompt by uid -> messages[1].content.answer), mt_bench (GPT-4
             reference answers; turn 1 after question turn 1, turn 2 after "Q1\\n\\nA1\\n\\nQ2")
  corpora    the text files of the Canterbury and Calgary corpora
An input "FILE#i" is the i-th response of FILE in file order (mt_bench: the i-th turn, two per
record).

lmz is slow (one LLM forward pass per token), so by default every file is capped to its first
--max-bytes bytes (4096; --full: no cap) and K = --responses records are taken from each
response file (every (n/K)-th record, deterministic; default 3). Whole files are hours of CPU
(~15 MB of LLM text at ~2 KB/s compressing and ~0.85 KB/s decompressing per core), more than
one sitting: lmz's verified results are kept in bench/results/lmz-archives.jsonl (committed;
see ArchiveStore), reused by every later run on any machine, and --lmz-hours H bounds how long
one run spends measuring new ones (smallest inputs first), so successive runs complete it. Sized on this 2-CPU machine
while other work loaded it (lmz at ~330 B/s compressing and ~170 B/s decompressing with -T 1,
qwen25coder ~10x slower) to stay under ~45 minutes; the committed report's default run took
28 minutes (load average 6.5 at its start, ~1 by its end). Each compressor gets exactly the same
bytes. Every lmz archive is decompressed and compared byte for byte; a difference stops the
run (the input, context and archive are kept for a bug report) and no report is written.

Larger models (`lmz -m`; gemma3, qwen25coder when present in $LMZ_CACHE/models, or --models)
and llama-zip are slower still; they run on a SUBSET: 6 files capped to --subset-bytes (1024)
plus the first sampled response of 3 response files, where the default model and every peer
are measured again on the same bytes.

llama-zip (github AlexBuz/llama-zip) runs from $LMZ_CACHE/ref/llama-zip (never from the repo):
src/llama_zip.py and a venv with its pinned requirements. `--setup-llama-zip` builds the venv
(pip builds llama-cpp-python from source: minutes); the source must be there already (copy the
repository's files into $LMZ_CACHE/ref/llama-zip/src) or it is tried from PyPI
(`pip download --no-deps llama-zip`). Without it, the report says why and goes on.

Bits/byte = 8 * compressed bytes / original bytes; group and overall figures are sums of
compressed bytes over sums of original bytes. lmz's size is the whole archive (container
included); peers' are their whole outputs (llama-zip's output is a bare code stream, no header).

Writes the "compression" section of bench/report.json and bench/report.md, keeping the others.
Standard library only.

usage: compress_bench.py [--max-bytes N | --full] [--responses K] [--models a,b|none]
                         [--subset-bytes N] [--threads N|auto] [--no-llama-zip] [--out-dir DIR]
                         [--lmz-hours H] [--store FILE | --no-store]
       (make bench passes $COMPRESS_BENCH_ARGS)
"""
import argparse, datetime, hashlib, json, os, re, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BenchError  # noqa: E402

ROOT, CACHE = common.ROOT, common.CACHE
SECTION = "compression"
DATA = os.environ.get("LMZ_DATA") or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
LLAMA_ZIP_DIR = os.path.join(os.environ.get("LMZ_REF") or os.path.join(CACHE, "ref"), "llama-zip")
CACHE_FILE = os.path.join(CACHE, "bench-compress", "results.jsonl")   # llama-zip results, for --resume
STORE_FILE = os.path.join(ROOT, "bench", "results", "lmz-archives.jsonl")  # verified lmz results, committed

DEFAULT_MODEL = "smollm2"
BIG_MODELS = ["gemma3", "qwen25coder"]          # used when present (or named with --models)
MODEL_DESC = {"smollm2": "SmolLM2-135M-Instruct Q4_1", "gemma3": "gemma-3-270m Q4_K_M",
              "qwen25coder": "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
              "qwen25coder05b": "Qwen2.5-Coder-0.5B-Instruct (AWQ) Q4_K_M"}

PEERS = [  # (name, compress argv, decompress argv); all read stdin and write stdout
    ("gzip -9", ["gzip", "-9", "-n", "-c"], ["gzip", "-d", "-c"]),
    ("bzip2 -9", ["bzip2", "-9", "-c"], ["bzip2", "-d", "-c"]),
    ("xz -9e", ["xz", "-9e", "-c"], ["xz", "-d", "-c"]),
    ("zstd --ultra -22", ["zstd", "--ultra", "-22", "-q", "-c"], ["zstd", "-d", "-q", "-c"]),
    ("brotli -q 11", ["brotli", "-q", "11", "-c"], ["brotli", "-d", "-c"]),
]
PEER_VERSION = {"gzip": ["gzip", "--version"], "bzip2": ["bzip2", "--version"], "xz": ["xz", "--version"],
                "zstd": ["zstd", "--version"], "brotli": ["brotli", "--version"]}

LLM = "llm-text"
WHOLE_FILES = [  # (subgroup, path under DATA)
    ("alpaca_eval", LLM + "/alpaca_eval/Meta-Llama-3-70B-Instruct.json"),
    ("alpaca_eval", LLM + "/alpaca_eval/Mixtral-8x7B-Instruct-v0.1.json"),
    ("alpaca_eval", LLM + "/alpaca_eval/alpaca-7b.json"),
    ("alpaca_eval", LLM + "/alpaca_eval/claude-2.1.json"),
    ("alpaca_eval", LLM + "/alpaca_eval/claude-3-opus-20240229.json"),
    ("alpaca_eval", LLM + "/alpaca_eval/gpt-4-turbo-2024-04-09.json"),
    ("alpaca_eval", LLM + "/alpaca_eval/gpt4.json"),
    ("alpaca_eval", LLM + "/alpaca_eval/text_davinci_003.json"),
    ("arena-hard", LLM + "/arena-hard/question.jsonl"),
    ("arena-hard", LLM + "/arena-hard/gpt-4-0613.jsonl"),
    ("arena-hard", LLM + "/arena-hard/gpt-3.5-turbo-0125.jsonl"),
    ("mt_bench", LLM + "/mt_bench/question.jsonl"),
    ("mt_bench", LLM + "/mt_bench/reference_answer_gpt-4.jsonl"),
    ("gsm8k", LLM + "/gsm8k_gpt3_solutions.jsonl"),
]
CANTERBURY = ["alice29.txt", "asyoulik.txt", "lcet10.txt", "plrabn12.txt", "cp.html", "fields.c",
              "grammar.lsp", "xargs.1"]
CALGARY = ["bib", "book1", "book2", "news", "paper1", "paper2", "paper3", "paper4", "paper5", "paper6",
           "progc", "progl", "progp", "trans"]
RESPONSE_FILES = [  # (subgroup, answers file)
    ("alpaca_eval", p) for s, p in WHOLE_FILES if s == "alpaca_eval"] + [
    ("arena-hard", LLM + "/arena-hard/gpt-4-0613.jsonl"),
    ("arena-hard", LLM + "/arena-hard/gpt-3.5-turbo-0125.jsonl"),
    ("mt_bench", LLM + "/mt_bench/reference_answer_gpt-4.jsonl"),
]
# The subset for the larger models and llama-zip: these files (capped to --subset-bytes) and
# the first sampled response of these response files.
SUBSET_FILES = [LLM + "/alpaca_eval/gpt4.json", LLM + "/arena-hard/gpt-4-0613.jsonl",
                LLM + "/gsm8k_gpt3_solutions.jsonl", "corpora/cantrbry/alice29.txt",
                "corpora/calgary/paper1", "corpora/calgary/progc"]
SUBSET_RESPONSES = [LLM + "/alpaca_eval/gpt4.json", LLM + "/arena-hard/gpt-4-0613.jsonl",
                    LLM + "/mt_bench/reference_answer_gpt-4.jsonl"]

GROUPS = [  # (group key, title) in report order
    ("files", "LLM-text files"),
    ("responses", "responses (lmz: prompt as context)"),
    ("canterbury", "Canterbury text"),
    ("calgary", "Calgary text"),
]

T0 = time.time()


def log(msg):
    el = time.time() - T0
    print("compress_bench [%d:%02d]: %s" % (el // 60, el % 60, msg), file=sys.stderr, flush=True)


def sha256(b):
    return hashlib.sha256(b).hexdigest()


# ---------------------------------------------------------------- inputs

class Item:
    def __init__(self, iid, group, sub, data, context=None, full_size=None):
        self.id, self.group, self.sub, self.data, self.context = iid, group, sub, data, context
        self.full_size = full_size if full_size is not None else len(data)

    def row(self):
        r = {"id": self.id, "group": self.group, "subgroup": self.sub, "bytes": len(self.data),
             "sha256": sha256(self.data)[:16]}
        if self.full_size != len(self.data):
            r["file_bytes"] = self.full_size
        if self.context is not None:
            r["context_bytes"] = len(self.context)
        return r


def read_data(rel):
    path = os.path.join(DATA, rel)
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BenchError("cannot read %s (%s); the data lives in ../shared/data (or $LMZ_DATA)" % (path, e))


def jsonl(rel):
    # Split on '\n' only: some strings hold U+2028, which str.splitlines() would split on.
    return [json.loads(line) for line in read_data(rel).decode("utf-8").split("\n") if line.strip()]


def responses_of(rel):
    """[(context bytes, response bytes)] of one response file, in file order."""
    if "/alpaca_eval/" in rel:
        return [(r["instruction"].encode(), r["output"].encode()) for r in json.loads(read_data(rel))]
    if "/arena-hard/" in rel:
        prompts = {q["uid"]: q["prompt"] for q in jsonl(LLM + "/arena-hard/question.jsonl")}
        out = []
        for r in jsonl(rel):
            if r["uid"] not in prompts:
                raise BenchError("%s: uid %s is not in question.jsonl" % (rel, r["uid"]))
            out.append((prompts[r["uid"]].encode(), r["messages"][1]["content"]["answer"].encode()))
        return out
    if "/mt_bench/" in rel:
        qs = {q["question_id"]: q["turns"] for q in jsonl(LLM + "/mt_bench/question.jsonl")}
        out = []
        for r in jsonl(rel):
            q, a = qs[r["question_id"]], r["choices"][0]["turns"]
            for t in range(min(len(q), len(a))):
                ctx = "\n\n".join([x for i in range(t) for x in (q[i], a[i])] + [q[t]])
                out.append((ctx.encode(), a[t].encode()))
        return out
    raise BenchError("no reader for response file %s" % rel)


def sample(n, k):
    """k record indices out of n, every (n/k)-th: floor(i*n/k)."""
    return [(i * n) // k for i in range(min(k, n))]


def pick_responses(rel, k):
    recs = responses_of(rel)
    out, used = [], set()
    for i in sample(len(recs), k):
        while i < len(recs) and (i in used or not recs[i][1]):   # skip empty responses
            i += 1
        if i < len(recs):
            used.add(i)
            out.append((i, recs[i]))
    return out


def short(rel):
    return rel.replace(LLM + "/", "").replace("corpora/", "")


def build_main_set(max_bytes, k):
    items = []
    for sub, rel in WHOLE_FILES:
        b = read_data(rel)
        items.append(Item(short(rel), "files", sub, b[:max_bytes] if max_bytes else b, full_size=len(b)))
    for sub, rel in RESPONSE_FILES:
        for i, (ctx, resp) in pick_responses(rel, k):
            items.append(Item("%s#%d" % (short(rel), i), "responses", sub, resp, context=ctx))
    for grp, names, d in (("canterbury", CANTERBURY, "corpora/cantrbry/"), ("calgary", CALGARY, "corpora/calgary/")):
        for n in names:
            b = read_data(d + n)
            items.append(Item(short(d + n), grp, grp, b[:max_bytes] if max_bytes else b, full_size=len(b)))
    return items


def build_subset(subset_bytes, k):
    items = []
    for rel in SUBSET_FILES:
        b = read_data(rel)
        grp = "canterbury" if "/cantrbry/" in rel else "calgary" if "/calgary/" in rel else "files"
        sub = grp if grp != "files" else ("gsm8k" if "gsm8k" in rel else rel.split("/")[1])
        items.append(Item(short(rel), grp, sub, b[:subset_bytes], full_size=len(b)))
    for rel in SUBSET_RESPONSES:
        picked = pick_responses(rel, k)
        if picked:
            i, (ctx, resp) = picked[0]
            items.append(Item("%s#%d" % (short(rel), i), "responses", rel.split("/")[1], resp, context=ctx))
    return items


# ---------------------------------------------------------------- the results store

def codec_versions():
    """The archive format's engine and coder versions and the default chunking, from codec.h:
    with the model file, what an archive's bytes depend on besides the input and context."""
    with open(os.path.join(ROOT, "src", "codec", "codec.h")) as f:
        h = f.read()
    out = {}
    for key, name in (("engine", "LMZ_ENGINE_VERSION"), ("coder", "LMZ_CODER_VERSION"),
                      ("chunk_bytes", "LMZ_DEFAULT_CHUNK_BYTES"), ("chunk_tokens", "LMZ_DEFAULT_CHUNK_TOKENS")):
        m = re.search(r"#define %s (\d+)" % name, h)
        if not m:
            raise BenchError("src/codec/codec.h has no %s" % name)
        out[key] = int(m.group(1))
    return out


class ArchiveStore:
    """Verified lmz results that outlive a run, committed in STORE_FILE (one JSON line each).

    lmz's archives are the same bytes on every machine, thread count, SIMD level and build
    (docs/determinism.md), so an archive depends only on the model file, the format (engine
    and coder versions, default chunking), the input and the context. A result recorded once,
    after its round trip was verified, is reused by later runs on any machine: a run too long
    for one sitting (whole files: hours of CPU) is completed over several, each adding what it
    measured. Before trusting the store, a run codes one stored input again (the canary) and
    refuses the store if the archive differs. Timings in the store belong to the machine that
    measured them; throughput is reported from this run's own measurements only."""

    def __init__(self, path):
        self.path, self.entries, self.model_sha = path, {}, {}
        self.versions = codec_versions()
        if os.path.exists(path):
            with open(path) as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        r = json.loads(line)
                        self.entries[json.dumps(r["key"], sort_keys=True)] = r
                    except (ValueError, KeyError) as e:
                        raise BenchError("%s line %d is not a store entry (%s); fix or delete it" % (path, n, e))
        self.reused = 0

    def key(self, model_path, data, ctx):
        if model_path not in self.model_sha:
            self.model_sha[model_path] = common.file_sha256(model_path)
        return dict(self.versions, model_sha256=self.model_sha[model_path], input_sha256=sha256(data),
                    context_sha256=sha256(ctx) if ctx is not None else None)

    def get(self, key):
        return self.entries.get(json.dumps(key, sort_keys=True))

    def add(self, key, entry):
        rec = dict(entry, key=key)
        self.entries[json.dumps(key, sort_keys=True)] = rec
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())


# ---------------------------------------------------------------- compressors

class Runner:
    """Runs compressors on items, verifies round trips, memoizes results by content within a
    run (the subset shares its responses with the main set). lmz results come from and go to
    the ArchiveStore (when there is one). Every llama-zip result is appended to CACHE_FILE;
    with --resume, results there with the same key (llama-zip version, model file, thread
    count, input bytes) are reused instead of run again."""

    def __init__(self, tmp, lmz_exe, lmz_sha, threads, timeout_per_kb, resume, store, deadline):
        self.tmp, self.lmz, self.lmz_sha, self.threads, self.tpk = tmp, lmz_exe, lmz_sha, threads, timeout_per_kb
        self.store, self.deadline = store, deadline
        self.skipped = []   # ids of inputs left unmeasured because the --lmz-hours budget ran out
        self.memo = {}
        self.reused = 0
        self.disk = {}
        if resume and os.path.exists(CACHE_FILE):
            with open(CACHE_FILE) as f:
                for line in f:
                    try:
                        r = json.loads(line)
                        self.disk[r["key"]] = r["result"]
                    except (ValueError, KeyError):
                        pass

    def disk_key(self, kind, model_path, data, ctx):
        st = os.stat(model_path)
        return json.dumps([kind, self.lmz_sha if kind == "lmz" else None, os.path.basename(model_path), st.st_size,
                           int(st.st_mtime), self.threads, sha256(data), sha256(ctx) if ctx is not None else None])

    def cached(self, dkey):
        if dkey in self.disk:
            self.reused += 1
            return dict(self.disk[dkey], reused=True)
        return None

    def store(self, dkey, res):
        os.makedirs(os.path.dirname(CACHE_FILE), exist_ok=True)
        with open(CACHE_FILE, "a") as f:
            f.write(json.dumps({"key": dkey, "result": res}) + "\n")

    def _timeout(self, n, slow=1.0):
        return int(120 + slow * self.tpk * n / 1024.0)

    def peer(self, name, cargv, dargv, item):
        key = ("peer", name, sha256(item.data))
        if key in self.memo:
            return self.memo[key]
        try:
            p = subprocess.run(cargv, input=item.data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
            if p.returncode != 0:
                raise BenchError("%s failed on %s (exit %d): %s" % (name, item.id, p.returncode, p.stderr[-300:]))
            q = subprocess.run(dargv, input=p.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        except subprocess.TimeoutExpired:
            raise BenchError("%s timed out on %s" % (name, item.id))
        if q.returncode != 0 or q.stdout != item.data:
            raise BenchError("%s round trip FAILED on %s" % (name, item.id))
        self.memo[key] = {"size": len(p.stdout)}
        return self.memo[key]

    def _keep_failure(self, what, item, archive):
        d = os.path.join(CACHE, "bench-compress-failures", "%s-%s" % (time.strftime("%Y%m%d-%H%M%S"),
                                                                      re.sub(r"[^A-Za-z0-9._-]", "_", item.id)))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "input"), "wb") as f:
            f.write(item.data)
        if item.context is not None:
            with open(os.path.join(d, "context"), "wb") as f:
                f.write(item.context)
        if archive is not None:
            shutil.copy(archive, os.path.join(d, "archive"))
        with open(os.path.join(d, "what.txt"), "w") as f:
            f.write(what + "\n")
        return d

    def lmz_run(self, model_name, model_path, item, use_context=True, slow=1.0, fresh=False):
        """lmz's result on ITEM: {"size", "compress_s", "decompress_s", "ideal_bits", "chunks",
        "archive_sha256", "fresh"}, from the store unless FRESH; None when the --lmz-hours budget
        is spent and the store has no result."""
        ctx = item.context if use_context else None
        key = ("lmz", model_path, sha256(item.data), sha256(ctx) if ctx is not None else None)
        if key in self.memo and not fresh:
            return self.memo[key]
        skey = self.store.key(model_path, item.data, ctx) if self.store else None
        hit = self.store.get(skey) if skey and not fresh else None
        if hit:
            self.store.reused += 1
            res = {k: hit[k] for k in ("size", "compress_s", "decompress_s", "ideal_bits", "chunks", "archive_sha256")
                   if k in hit}
            res["fresh"] = False
            self.memo[key] = res
            return res
        if self.deadline and time.time() > self.deadline and not fresh:
            self.skipped.append(item.id)
            return None
        inp, arc, out, cpath = (os.path.join(self.tmp, n) for n in ("in.bin", "in.lmz", "out.bin", "ctx.bin"))
        with open(inp, "wb") as f:
            f.write(item.data)
        ctx_args = []
        if ctx is not None:
            with open(cpath, "wb") as f:
                f.write(ctx)
            ctx_args = ["--context", cpath]
        tmo = self._timeout(len(item.data) + len(ctx or b""), slow)
        base = ["-T", str(self.threads), "-m", model_path] + ctx_args
        ccmd = [self.lmz, "-c", "-v"] + base + [inp]
        dcmd = [self.lmz, "-d", "-c"] + base + [arc]
        try:
            t = time.perf_counter()
            with open(arc, "wb") as fo:
                p = subprocess.run(ccmd, stdout=fo, stderr=subprocess.PIPE, timeout=tmo)
            tc = time.perf_counter() - t
            if p.returncode != 0:
                raise BenchError("lmz (%s) compression failed on %s (exit %d): %s\n%s"
                                 % (model_name, item.id, p.returncode, " ".join(ccmd),
                                    p.stderr.decode("utf-8", "replace")[-600:]))
            t = time.perf_counter()
            with open(out, "wb") as fo:
                q = subprocess.run(dcmd, stdout=fo, stderr=subprocess.PIPE, timeout=tmo)
            td = time.perf_counter() - t
        except subprocess.TimeoutExpired as e:
            raise BenchError("lmz (%s) timed out after %ds on %s: %s" % (model_name, tmo, item.id, " ".join(e.cmd)))
        with open(out, "rb") as f:
            back = f.read()
        if q.returncode != 0 or back != item.data:
            d = self._keep_failure("decompress exit %d, %d of %d bytes back%s\n%s\n%s\n%s" % (
                q.returncode, len(back), len(item.data), ", bytes differ" if q.returncode == 0 else "",
                " ".join(ccmd), " ".join(dcmd), q.stderr.decode("utf-8", "replace")[-2000:]), item, arc)
            first = next((i for i, (a, b) in enumerate(zip(back, item.data)) if a != b), min(len(back), len(item.data)))
            raise BenchError("lmz (%s) ROUND TRIP FAILED on %s: exit %d, %d bytes back of %d, first difference at "
                             "byte %d. Input, context and archive kept in %s"
                             % (model_name, item.id, q.returncode, len(back), len(item.data), first, d))
        err = p.stderr.decode("utf-8", "replace")
        with open(arc, "rb") as f:
            archive = f.read()
        res = {"size": len(archive), "compress_s": tc, "decompress_s": td, "archive_sha256": sha256(archive),
               "fresh": True}
        m = re.search(r"ideal ([0-9.]+)", err)
        if m:
            res["ideal_bits"] = float(m.group(1)) * len(item.data)
        m = re.search(r"(\d+) chunks?", err)
        if m:
            res["chunks"] = int(m.group(1))
        self.memo[key] = res
        if self.store and not self.store.get(skey):
            self.store.add(skey, dict({k: v for k, v in res.items() if k != "fresh"},
                                      input_bytes=len(item.data), context_bytes=len(ctx) if ctx is not None else None,
                                      input=item.id, model=model_name, threads=self.threads,
                                      cpu=common.cpu_info()["model"], lmz_commit=common.lmz_git(),
                                      date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
        return res

    def check_store(self, model_name, model_path, items):
        """The canary: codes the smallest of ITEMS that the store holds again and compares the
        archive. Returns its id, or None when the store holds none of them."""
        held = [it for it in items if self.store.get(self.store.key(model_path, it.data, it.context))]
        if not held:
            return None
        it = min(held, key=lambda i: len(i.data))
        want = self.store.get(self.store.key(model_path, it.data, it.context))
        got = self.lmz_run(model_name, model_path, it, fresh=True)
        if got["archive_sha256"] != want.get("archive_sha256"):
            raise BenchError("%s holds an archive of %s (%s, %d bytes, sha256 %s...) that this lmz codes differently "
                             "(%d bytes, sha256 %s...): the store was made by an lmz whose archives differ. If the "
                             "format changed on purpose, bump LMZ_ENGINE_VERSION/LMZ_CODER_VERSION in "
                             "src/codec/codec.h (old entries then no longer match); otherwise this is a determinism "
                             "bug to find before anything is measured."
                             % (self.store.path, it.id, model_name, want["size"], want.get("archive_sha256", "?")[:16],
                                got["size"], got["archive_sha256"][:16]))
        return it.id


# ---------------------------------------------------------------- llama-zip

LZ_WRAPPER = r"""
import functools, sys
src, threads, model, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
sys.path.insert(0, src)
import llama_zip
# Same thread count as lmz (llama-cpp-python's default is cpu_count // 2); nothing else changed.
llama_zip.Llama = functools.partial(llama_zip.Llama, n_threads=threads, n_threads_batch=threads)
sys.argv = ["llama-zip", model, mode]
llama_zip.main()
"""


def llama_zip_paths():
    return (os.path.join(LLAMA_ZIP_DIR, "src"), os.path.join(LLAMA_ZIP_DIR, "venv", "bin", "python"))


def llama_zip_status():
    """(info dict, None) when usable, else (None, reason)."""
    src, py = llama_zip_paths()
    if not os.path.exists(os.path.join(src, "llama_zip.py")):
        return None, ("not installed: no %s/llama_zip.py (run `python3 bench/compress_bench.py "
                      "--setup-llama-zip`)" % src)
    if not os.access(py, os.X_OK):
        return None, "not installed: no venv at %s (run `python3 bench/compress_bench.py --setup-llama-zip`)" % py
    p = subprocess.run([py, "-c", "import importlib.metadata as m, llama_cpp, numpy; "
                        "print(m.version('llama-cpp-python'), numpy.__version__)"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        return None, "venv %s cannot import llama_cpp: %s" % (py, p.stderr.strip().splitlines()[-1:] or "?")
    v = p.stdout.split()
    info = {"dir": LLAMA_ZIP_DIR, "llama_cpp_python": v[0], "numpy": v[1] if len(v) > 1 else "?"}
    for fn, k in (("COMMIT", "commit"), ("SOURCE", "source")):
        try:
            info[k] = open(os.path.join(src, fn)).read().strip()
        except OSError:
            pass
    m = re.search(r'version="([^"]+)"', open(os.path.join(src, "setup.py")).read()) \
        if os.path.exists(os.path.join(src, "setup.py")) else None
    if m:
        info["version"] = m.group(1)
    return info, None


def setup_llama_zip():
    src, py = llama_zip_paths()
    os.makedirs(LLAMA_ZIP_DIR, exist_ok=True)
    if not os.path.exists(os.path.join(src, "llama_zip.py")):
        log("no llama-zip source in %s; trying PyPI (pip download --no-deps llama-zip)" % src)
        dl = os.path.join(LLAMA_ZIP_DIR, "dl")
        os.makedirs(dl, exist_ok=True)
        common.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "llama-zip",
                    "-d", dl], 1800, "pip download llama-zip")
        import tarfile
        tgz = [f for f in os.listdir(dl) if f.endswith(".tar.gz")]
        if not tgz:
            raise BenchError("pip download llama-zip gave no sdist in %s" % dl)
        with tarfile.open(os.path.join(dl, tgz[0])) as t:
            t.extractall(dl)
        top = os.path.join(dl, tgz[0][:-len(".tar.gz")])
        shutil.copytree(top, src)
        with open(os.path.join(src, "SOURCE"), "w") as f:
            f.write("PyPI sdist %s\n" % tgz[0])
    if not os.access(py, os.X_OK):
        common.run([sys.executable, "-m", "venv", os.path.join(LLAMA_ZIP_DIR, "venv")], 600, "python3 -m venv")
    req = os.path.join(src, "requirements.txt")
    env = dict(os.environ, CMAKE_ARGS=os.environ.get("CMAKE_ARGS", "-DGGML_NATIVE=ON -DLLAMA_CURL=OFF"),
               CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 1))
    log("pip install -r %s into %s (builds llama-cpp-python from source; minutes)" % (req, py))
    with open(os.path.join(LLAMA_ZIP_DIR, "install.log"), "w") as lf:
        p = subprocess.run([py, "-m", "pip", "install", "-r", req], stdout=lf, stderr=subprocess.STDOUT, env=env)
    if p.returncode != 0:
        raise BenchError("pip install failed; see %s" % os.path.join(LLAMA_ZIP_DIR, "install.log"))
    info, why = llama_zip_status()
    if not info:
        raise BenchError(why)
    log("llama-zip ready: %s" % info)


def llama_zip_run(model_path, item, threads):
    """{'size', 'compress_s', 'decompress_s', 'roundtrip_ok'}; raises BenchError on a crash."""
    src, py = llama_zip_paths()
    tmo = int(300 + 2.0 * len(item.data))
    try:
        t = time.perf_counter()
        p = subprocess.run([py, "-c", LZ_WRAPPER, src, str(threads), model_path, "-c"], input=item.data,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=tmo)
        tc = time.perf_counter() - t
        if p.returncode != 0:
            raise BenchError("llama-zip compression failed on %s (exit %d): %s"
                             % (item.id, p.returncode, p.stderr.decode("utf-8", "replace")[-800:]))
        t = time.perf_counter()
        q = subprocess.run([py, "-c", LZ_WRAPPER, src, str(threads), model_path, "-d"], input=p.stdout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=tmo)
        td = time.perf_counter() - t
    except subprocess.TimeoutExpired:
        raise BenchError("llama-zip timed out after %ds on %s" % (tmo, item.id))
    return {"size": len(p.stdout), "compress_s": tc, "decompress_s": td,
            "roundtrip_ok": q.returncode == 0 and q.stdout == item.data}


# ---------------------------------------------------------------- aggregation

def bpb(comp, orig):
    return 8.0 * comp / orig if orig else None


def aggregate(items, sizes):
    """sizes: {item id: compressed bytes} (an item missing -> group figure missing).
    Returns {row key: bits/byte} for groups, subgroups and 'overall'."""
    acc = {}
    for it in items:
        for k in ("overall", it.group, it.group + "/" + it.sub):
            a = acc.setdefault(k, [0, 0, True])
            a[0] += len(it.data)
            if it.id in sizes:
                a[1] += sizes[it.id]
            else:
                a[2] = False
    return {k: (bpb(c, o) if ok else None) for k, (o, c, ok) in acc.items()}


def row_keys(items):
    keys = []
    for g, _ in GROUPS:
        subs = []
        for it in items:
            if it.group == g and it.sub not in subs:
                subs.append(it.sub)
        if not subs:
            continue
        keys.append(g)
        if len(subs) > 1 or subs[0] != g:
            keys += [g + "/" + s for s in subs]
    return keys + ["overall"]


def row_label(key):
    titles = dict(GROUPS)
    if key == "overall":
        return "**overall**"
    if "/" in key:
        return "&nbsp;&nbsp;" + key.split("/", 1)[1]
    return "**%s**" % titles.get(key, key)


def counts(items):
    c = {}
    for it in items:
        for k in ("overall", it.group, it.group + "/" + it.sub):
            n = c.setdefault(k, [0, 0])
            n[0] += 1
            n[1] += len(it.data)
    return c


def md_table(items, columns, table):
    """columns: [(column title, compressor key)]; table: {compressor key: {row key: bpb}}. A key
    starting with "(" is for information only (not a compressor; never bold)."""
    cnt = counts(items)
    hdr = ["input", "n", "bytes"] + [c[0] for c in columns]
    out = ["| " + " | ".join(hdr) + " |", "|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|"]
    for k in row_keys(items):
        vals = [table[ck].get(k) for _, ck in columns]
        present = [v for (_, ck), v in zip(columns, vals) if v is not None and not ck.startswith("(")]
        best = min(present) if present else None
        cells = []
        for (_, ck), v in zip(columns, vals):
            s = "—" if v is None else "%.3f" % v
            cells.append("**%s**" % s if v is not None and v == best and not ck.startswith("(") else
                         "_%s_" % s if ck.startswith("(") else s)
        out.append("| %s | %d | %d | %s |" % (row_label(k), cnt[k][0], cnt[k][1], " | ".join(cells)))
    return out


def text_table(items, columns, table):
    cnt = counts(items)
    hdr = ["input", "n", "bytes"] + [c[0] for c in columns]
    rows = [[k, str(cnt[k][0]), str(cnt[k][1])] + ["-" if table[ck].get(k) is None else "%.3f" % table[ck][k]
                                                      for _, ck in columns] for k in row_keys(items)]
    w = [max(len(x) for x in col) for col in zip(hdr, *rows)]
    line = lambda cells: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cells))
    return "\n".join([line(hdr)] + [line(r) for r in rows])


# ---------------------------------------------------------------- main

def tool_versions():
    v = {}
    for name, cmd in PEER_VERSION.items():
        if not shutil.which(cmd[0]):
            continue
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=30)
            m = re.search(r"v?(\d+\.\d+(?:\.\d+)?)", p.stdout)
            v[name] = "%s %s" % (name, m.group(1) if m else "?")
        except (OSError, subprocess.TimeoutExpired):
            v[name] = "?"
    return v


def resolve_model(name):
    fm = common.load_fetch_models()
    if name not in fm.MODELS:
        raise BenchError("unknown model %s (tools/fetch_models.py knows %s)" % (name, ", ".join(fm.MODELS)))
    path = os.path.join(CACHE, "models", fm.MODELS[name][0])
    if os.path.exists(path):
        return path
    if name == DEFAULT_MODEL:
        out = common.run([sys.executable, "tools/fetch_models.py", "--print-path", name], 3600,
                         "tools/fetch_models.py %s" % name)
        lines = out.strip().splitlines()
        if lines and os.path.exists(lines[-1]):
            return lines[-1]
    return None


def fmt_rate(b, s):
    return "%.0f" % (b / s) if s > 0 else "?"


def main():
    ap = argparse.ArgumentParser(description="lossless compression: lmz vs gzip/bzip2/xz/zstd/brotli/llama-zip")
    ap.add_argument("--max-bytes", type=int, default=4096,
                    help="cap each whole file to its first N bytes (default 4096; 0 or --full: no cap)")
    ap.add_argument("--full", action="store_true", help="whole files uncapped (slow: hours)")
    ap.add_argument("--responses", type=int, default=3, metavar="K",
                    help="responses per response file, every (n/K)-th record (default 3)")
    ap.add_argument("--models", help="larger models to run on the subset, comma-separated names from "
                    "tools/fetch_models.py, or 'none' (default: %s, each when present)" % ",".join(BIG_MODELS))
    ap.add_argument("--subset-bytes", type=int, default=1024,
                    help="cap of the subset's files for the larger models and llama-zip (default 1024)")
    ap.add_argument("--threads", default="auto",
                    help="lmz -T (and llama-zip's thread count); 'auto' (default): all CPUs when the 1-minute "
                    "load average is below 0.5 at start, else 1 (lmz's multi-threaded decode step slows "
                    "down badly when other processes compete for the cores)")
    ap.add_argument("--lmz", default=os.path.join(ROOT, "lmz"), help="lmz binary (default ./lmz; it is copied "
                    "first, so a rebuild during the run does not change it)")
    ap.add_argument("--lmz-commit", help="commit to report for a --lmz binary built elsewhere (default: this "
                    "checkout's HEAD, +dirty when src/ has changes)")
    ap.add_argument("--no-llama-zip", action="store_true", help="skip llama-zip")
    ap.add_argument("--setup-llama-zip", action="store_true",
                    help="create the llama-zip venv in %s (pip, minutes) and exit" % LLAMA_ZIP_DIR)
    ap.add_argument("--timeout-per-kb", type=float, default=120.0,
                    help="seconds allowed per KiB (plus 120) for one lmz compression or decompression")
    ap.add_argument("--out-dir", help="where report.md/report.json go (default: bench/)")
    ap.add_argument("--no-write", action="store_true", help="print the tables only")
    ap.add_argument("--resume", action="store_true",
                    help="reuse llama-zip results of an interrupted run with the same llama-zip, model, threads "
                    "and bytes (kept in %s); the report counts them" % CACHE_FILE)
    ap.add_argument("--store", default=STORE_FILE,
                    help="verified lmz results reused across runs and machines (default %(default)s, committed; "
                    "see ArchiveStore)")
    ap.add_argument("--no-store", action="store_true", help="measure every lmz input again; record nothing")
    ap.add_argument("--lmz-hours", type=float, default=0,
                    help="stop starting new lmz inputs after this many hours (0: no limit); the inputs left "
                    "out are listed and the tables cover only the measured ones, so a later run (with the "
                    "store) goes on where this one stopped")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the Markdown section from the section already in report.json (no runs)")
    a = ap.parse_args()
    if a.render_only:
        out_dir = os.path.abspath(a.out_dir) if a.out_dir else os.path.join(ROOT, "bench")
        jpath, mpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")
        try:
            with open(jpath) as f:
                d = json.load(f)[SECTION]
            common.atomic_write(mpath, common.merged_md(mpath, SECTION, markdown_section(d)))
        except (OSError, ValueError, KeyError, BenchError) as e:
            print("compress_bench: --render-only FAILED: %s" % e, file=sys.stderr)
            return 1
        log("rewrote the %s section of %s from %s" % (SECTION, mpath, jpath))
        return 0
    if a.setup_llama_zip:
        try:
            setup_llama_zip()
        except BenchError as e:
            print("compress_bench: llama-zip setup FAILED: %s" % e, file=sys.stderr)
            return 1
        return 0
    max_bytes = 0 if a.full else a.max_bytes
    if max_bytes < 0 or a.responses < 0 or a.subset_bytes < 1:
        ap.error("--max-bytes, --responses must be >= 0 and --subset-bytes >= 1")
    cpu = common.cpu_info()
    load1 = os.getloadavg()[0]
    if a.threads == "auto":
        threads = cpu["cpus"] if load1 < 0.5 else 1
        threads_why = "auto: 1-minute load average %.2f at start %s 0.5" % (load1, "<" if load1 < 0.5 else ">=")
    else:
        try:
            threads = int(a.threads)
        except ValueError:
            ap.error("--threads takes an integer or 'auto'")
        threads_why = "--threads %d" % threads
    out_dir = os.path.abspath(a.out_dir) if a.out_dir else os.path.join(ROOT, "bench")
    notes = []

    try:
        if not os.access(a.lmz, os.X_OK):
            raise BenchError("%s not found; run `make` first" % a.lmz)
        default_path = resolve_model(DEFAULT_MODEL)
        if not default_path:
            raise BenchError("default model not available")
        wanted = BIG_MODELS if a.models is None else \
            [] if a.models.strip() == "none" else [m.strip() for m in a.models.split(",") if m.strip()]
        big = []
        for name in wanted:
            if name == DEFAULT_MODEL:
                continue
            p = resolve_model(name)
            if p:
                big.append((name, p))
            else:
                notes.append("model %s: skipped (not in %s/models; `python3 tools/fetch_models.py %s` fetches it)"
                             % (name, CACHE, name))
        versions = tool_versions()
        peers = []
        for name, c, d in PEERS:
            if shutil.which(c[0]):
                peers.append((name, c, d))
            else:
                notes.append("%s: MISSING (not installed; e.g. `apt-get install -y %s`), column left out"
                             % (name, c[0]))
                log("peer %s is missing; its column is left out" % name)
        lz_info, lz_why = (None, "skipped (--no-llama-zip)") if a.no_llama_zip else llama_zip_status()
        if not lz_info:
            log("llama-zip: %s" % lz_why)

        main_items = build_main_set(max_bytes, a.responses)
        sub_items = build_subset(a.subset_bytes, a.responses)
        mb = sum(len(i.data) for i in main_items)
        sb = sum(len(i.data) for i in sub_items)
        log("main set: %d inputs, %d bytes (files capped at %s, %d responses per file); subset: %d inputs, "
            "%d bytes; lmz -T %d (%s); larger models: %s; llama-zip: %s"
            % (len(main_items), mb, max_bytes or "no cap", a.responses, len(sub_items), sb, threads, threads_why,
               ", ".join(n for n, _ in big) or "none", "yes" if lz_info else "no"))

        with tempfile.TemporaryDirectory(prefix="lmz-compress-bench-") as tmp:
            lmz_exe = os.path.join(tmp, "lmz")
            shutil.copy2(a.lmz, lmz_exe)
            lmz_sha = common.file_sha256(lmz_exe)
            store = None if a.no_store else ArchiveStore(a.store)
            runner = Runner(tmp, lmz_exe, lmz_sha, threads, a.timeout_per_kb, a.resume, store, None)
            if store:
                canary = runner.check_store("lmz " + DEFAULT_MODEL, default_path, main_items + sub_items)
                log("results store %s: %d entries; %s" % (
                    store.path, len(store.entries),
                    "canary %s coded again to the same archive" % canary if canary else
                    "none for these inputs (nothing to check)"))
                if canary:
                    notes.append("lmz results store (%s): inputs measured by earlier runs are reused (their "
                                 "round trips were verified then; archives are machine-independent); this run "
                                 "coded %s again and got the same archive" % (os.path.relpath(store.path, ROOT),
                                                                            canary))

            def peers_on(items):
                out = {}
                for name, c, d in peers:
                    out[name] = {it.id: runner.peer(name, c, d, it)["size"] for it in items}
                return out

            log("peers on the main set and the subset")
            sizes_main = peers_on(main_items)
            sizes_sub = peers_on(sub_items)

            lmz_stats = {}   # model -> {"bytes", "compress_s", "decompress_s", "inputs", "ideal_bits"}
            per_item = {it.id: it.row() for it in main_items}
            per_item_sub = {it.id: it.row() for it in sub_items}

            def run_lmz(label, name, path, items, sizes, rows, use_context=True, slow=1.0, stats_key=None):
                """Smallest inputs first, so that a run cut short by --lmz-hours covers the most of them.
                Throughput counts only this run's own measurements (stored timings are another machine's)."""
                sizes[label] = {}
                ideal_key = "(%s model bits)" % label
                sizes[ideal_key] = {}
                st = lmz_stats.setdefault(stats_key or label, {"model": name, "bytes": 0, "inputs": 0, "compress_s": 0.0,
                                                               "decompress_s": 0.0, "fresh_inputs": 0, "fresh_bytes": 0,
                                                               "ideal_bits": 0.0, "ideal_complete": True})
                order = sorted(items, key=lambda i: len(i.data))
                total = sum(len(i.data) for i in order)
                done = fresh_done = 0
                fresh_s = 0.0
                for n, it in enumerate(order):
                    r = runner.lmz_run(name, path, it, use_context, slow)
                    done += len(it.data)
                    if r is None:
                        continue
                    sizes[label][it.id] = r["size"]
                    rows[it.id][label] = r["size"]
                    st["bytes"] += len(it.data)
                    st["inputs"] += 1
                    if r["fresh"]:
                        st["compress_s"] += r["compress_s"]
                        st["decompress_s"] += r["decompress_s"]
                        st["fresh_inputs"] += 1
                        st["fresh_bytes"] += len(it.data)
                        fresh_done += len(it.data)
                        fresh_s += r["compress_s"] + r["decompress_s"]
                    if "ideal_bits" in r:
                        st["ideal_bits"] += r["ideal_bits"]
                        sizes[ideal_key][it.id] = r["ideal_bits"] / 8.0
                        rows[it.id][label + ": model bits"] = round(r["ideal_bits"], 1)
                    else:
                        st["ideal_complete"] = False
                    log("%s [%d/%d] %s: %d -> %d B (%.3f bits/byte), %s; ETA %.0fs"
                        % (label, n + 1, len(order), it.id, len(it.data), r["size"], bpb(r["size"], len(it.data)),
                           "compress %.1fs, decompress %.1fs" % (r["compress_s"], r["decompress_s"]) if r["fresh"]
                           else "from the store", fresh_s / fresh_done * (total - done) if fresh_done else 0))

            dflt = "lmz " + DEFAULT_MODEL
            if a.lmz_hours > 0:
                runner.deadline = time.time() + 3600 * a.lmz_hours
            run_lmz(dflt, DEFAULT_MODEL, default_path, main_items, sizes_main, per_item)
            run_lmz(dflt, DEFAULT_MODEL, default_path, sub_items, sizes_sub, per_item_sub,
                    stats_key=dflt + " (subset)")
            noctx = dflt + ", no prompt"
            run_lmz(noctx, DEFAULT_MODEL, default_path, sub_items, sizes_sub, per_item_sub, use_context=False)
            slow = {"gemma3": 3.0, "qwen25coder": 12.0}
            for name, path in big:
                run_lmz("lmz " + name, name, path, sub_items, sizes_sub, per_item_sub, slow=slow.get(name, 12.0))

            lz = None
            if lz_info:
                lz = {"info": lz_info, "bytes": 0, "compress_s": 0.0, "decompress_s": 0.0, "failures": []}
                sizes_sub["llama-zip"] = {}
                try:
                    for n, it in enumerate(sub_items):
                        dkey = runner.disk_key("llama-zip %s" % lz_info.get("version"), default_path, it.data, None)
                        r = runner.cached(dkey)
                        if not r:
                            r = llama_zip_run(default_path, it, threads)
                            runner.store(dkey, r)
                        if not r["roundtrip_ok"]:
                            lz["failures"].append(it.id)
                        sizes_sub["llama-zip"][it.id] = r["size"]
                        per_item_sub[it.id]["llama-zip"] = r["size"]
                        lz["bytes"] += len(it.data)
                        lz["compress_s"] += r["compress_s"]
                        lz["decompress_s"] += r["decompress_s"]
                        log("llama-zip [%d/%d] %s: %d -> %d B (%.3f bits/byte), compress %.1fs, decompress %.1fs%s"
                            % (n + 1, len(sub_items), it.id, len(it.data), r["size"], bpb(r["size"], len(it.data)),
                               r["compress_s"], r["decompress_s"], "" if r["roundtrip_ok"] else ", ROUND TRIP FAILED"))
                except BenchError as e:
                    lz_why = "failed while running: %s" % e
                    log("llama-zip: %s" % lz_why)
                    lz, lz_info = None, None
                    sizes_sub.pop("llama-zip", None)
                    for r in per_item_sub.values():
                        r.pop("llama-zip", None)
            if runner.reused:
                notes.append("%d llama-zip results were reused from the results cache of an earlier run "
                             "(--resume: same llama-zip, model file, threads and bytes), their timings included"
                             % runner.reused)
            if store and store.reused:
                notes.append("%d lmz results came from the store; their timings are not in the speed table"
                             % store.reused)
            skipped_main = [it.id for it in main_items if it.id not in sizes_main[dflt]]
            if len(skipped_main) == len(main_items):
                raise BenchError("--lmz-hours %.2f ran out before lmz measured any input of the main set" % a.lmz_hours)
            if skipped_main:
                # The main tables cover the inputs lmz measured, every compressor on the same ones.
                main_all = main_items
                main_items = [it for it in main_items if it.id in sizes_main[dflt]]
                per_item = {it.id: per_item[it.id] for it in main_items}
                notes.append("--lmz-hours %.2f ran out: the main set covers %d of %d inputs (%d of %d bytes); not "
                             "measured yet: %s" % (a.lmz_hours, len(main_items), len(main_all),
                                                   sum(len(i.data) for i in main_items),
                                                   sum(len(i.data) for i in main_all), ", ".join(skipped_main)))
                mb = sum(len(i.data) for i in main_items)
            skipped_sub = sorted(set(runner.skipped) - set(skipped_main))
            if skipped_sub:
                notes.append("--lmz-hours ran out before these subset inputs (their groups show —): %s"
                             % ", ".join(skipped_sub))

            # For scale: the peers on the files uncapped (lmz is not run on them).
            full = None
            if max_bytes:
                full_items = [it for it in build_main_set(0, 0) if len(it.data) > max_bytes]
                log("peers on the %d files longer than the cap, uncapped" % len(full_items))
                sizes_full = peers_on(full_items)
                full = {"inputs": len(full_items), "bytes": sum(len(i.data) for i in full_items),
                        "bits_per_byte": {k: aggregate(full_items, v) for k, v in sizes_full.items()},
                        "items": [dict(it.row(), **{n: sizes_full[n][it.id] for n in sizes_full}) for it in full_items]}

        # ---- tables
        main_cols, sub_cols = columns([n for n, _, _ in peers], [n for n, _ in big], bool(lz))
        main_tab = {k: aggregate(main_items, v) for k, v in sizes_main.items()}
        sub_tab = {k: aggregate(sub_items, v) for k, v in sizes_sub.items()}
        # lmz's model cross-entropy (-v "ideal"), to show what the container and coder add
        ideal = lmz_stats[dflt]["ideal_bits"] / 8.0 if lmz_stats[dflt]["ideal_complete"] else None

        wall = time.time() - T0
        print(text_table(main_items, main_cols, main_tab))
        print()
        print(text_table(sub_items, sub_cols, sub_tab))

        throughput = []
        for label, st in lmz_stats.items():
            if not st["fresh_inputs"]:
                continue
            throughput.append({"compressor": label.replace(" (subset)", ""), "set": "main" if label == dflt else "subset",
                               "model": st["model"], "inputs": st["fresh_inputs"], "bytes": st["fresh_bytes"],
                               "compress_s": round(st["compress_s"], 2), "decompress_s": round(st["decompress_s"], 2),
                               "compress_Bps": st["fresh_bytes"] / st["compress_s"] if st["compress_s"] else None,
                               "decompress_Bps": st["fresh_bytes"] / st["decompress_s"] if st["decompress_s"] else None})
        if lz:
            throughput.append({"compressor": "llama-zip", "set": "subset", "model": DEFAULT_MODEL, "inputs": len(sub_items),
                               "bytes": lz["bytes"], "compress_s": round(lz["compress_s"], 2),
                               "decompress_s": round(lz["decompress_s"], 2),
                               "compress_Bps": lz["bytes"] / lz["compress_s"],
                               "decompress_Bps": lz["bytes"] / lz["decompress_s"]})
        models_info = {DEFAULT_MODEL: {"file": os.path.basename(default_path), "description": MODEL_DESC.get(DEFAULT_MODEL)}}
        for n, p in big:
            models_info[n] = {"file": os.path.basename(p), "description": MODEL_DESC.get(n, n)}
        data = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu, "load_average_at_start": round(load1, 2), "lmz_commit": a.lmz_commit or common.lmz_git(),
            "lmz_binary_sha256": lmz_sha[:16], "threads": threads, "threads_choice": threads_why,
            "wall_s": round(wall, 1),
            "budget": {"max_bytes": max_bytes, "responses_per_file": a.responses, "subset_bytes": a.subset_bytes,
                       "sampling": "records floor(i*n/K), i = 0..K-1 (next non-empty record if empty)",
                       "subset_files": [short(r) for r in SUBSET_FILES],
                       "subset_responses": "first sampled response of " + ", ".join(short(r) for r in SUBSET_RESPONSES)},
            "models": models_info, "peer_versions": versions, "peers": [n for n, _, _ in peers],
            "units": "bits per original byte (8 * compressed / original)",
            "main": {"inputs": len(main_items), "bytes": mb, "bits_per_byte": main_tab,
                     "lmz_ideal_bits_per_byte": {"overall": 8.0 * ideal / mb} if ideal else None,
                     "lmz_overhead_bytes": (sum(sizes_main[dflt].values()) - ideal) if ideal else None,
                     "items": list(per_item.values())},
            "subset": {"inputs": len(sub_items), "bytes": sb, "bits_per_byte": sub_tab,
                       "items": list(per_item_sub.values())},
            "throughput": throughput,
            "uncapped_peers": full,
            "llama_zip": ({"status": "ran", "info": lz_info, "roundtrip_failures": lz["failures"]} if lz
                          else {"status": "not run", "reason": lz_why}),
            "notes": notes,
        }
        md = markdown_section(data)
        if a.no_write:
            print(md)
            log("--no-write: report not written")
        else:
            os.makedirs(out_dir, exist_ok=True)
            jpath, mpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")
            jtext = common.merged_json(jpath, SECTION, data)
            mtext = common.merged_md(mpath, SECTION, md)
            common.atomic_write(jpath, jtext)
            common.atomic_write(mpath, mtext)
            log("wrote %s and %s (total %.0fs)" % (mpath, jpath, wall))
    except BenchError as e:
        print("compress_bench: FAILED: %s" % e, file=sys.stderr)
        print("compress_bench: no report written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compress_bench: interrupted; no report written", file=sys.stderr)
        return 130
    return 0


def columns(peer_names, big_names, llama_zip_ran):
    """([(title, key)] of the main table, same of the subset table)."""
    dflt = "lmz " + DEFAULT_MODEL
    peer_cols = [(n, n) for n in peer_names]
    main_cols = peer_cols + [(dflt, dflt), ("(model bits)", "(%s model bits)" % dflt)]
    sub_cols = peer_cols + [(dflt, dflt), ("(model bits)", "(%s model bits)" % dflt),
                            (dflt + ", no prompt", dflt + ", no prompt")] + \
        [("lmz " + n, "lmz " + n) for n in big_names] + ([("llama-zip (smollm2)", "llama-zip")] if llama_zip_ran else [])
    return main_cols, sub_cols


class RowItem:
    """An input as report.json records it (enough for the tables)."""
    def __init__(self, row):
        self.id, self.group, self.sub, self.n = row["id"], row["group"], row["subgroup"], row["bytes"]
        self.data = b"\0" * self.n


def markdown_section(d):
    main_items = [RowItem(r) for r in d["main"]["items"]]
    sub_items = [RowItem(r) for r in d["subset"]["items"]]
    main_cols, sub_cols = columns(d["peers"], [n for n in d["models"] if n != DEFAULT_MODEL],
                                  d["llama_zip"]["status"] == "ran")
    main_tab, sub_tab = d["main"]["bits_per_byte"], d["subset"]["bits_per_byte"]
    ideal = d["main"].get("lmz_overhead_bytes") is not None
    b = d["budget"]
    cap = ("first %d bytes of each file" % b["max_bytes"]) if b["max_bytes"] else "whole files (--full)"
    out = ["## Lossless compression: lmz vs gzip, bzip2, xz, zstd, brotli, llama-zip", "",
           "Bits per original byte (8 × compressed bytes / original bytes; lower is better, best of each row "
           "in bold). Group and overall rows are sums of compressed bytes over sums of original bytes. lmz's "
           "size is its whole archive (container included), each peer's its whole output. Every lmz archive "
           "was decompressed and compared byte for byte (by the run that measured it: see the store note "
           "below).", "",
           "### Main set (default model)", "",
           "Budget: %s (`--max-bytes`, `--full` removes the cap); %d responses per response file "
           "(`--responses`), records ⌊i·n/K⌋. Responses: lmz gets the prompt as `--context` (not stored, "
           "the receiver has it); the peers compress the response alone." % (cap, b["responses_per_file"]), ""]
    out += md_table(main_items, main_cols, main_tab)
    if ideal:
        out += ["", "_(model bits)_ is not a compressor: the model's cross-entropy on the same bytes as lmz "
                "reports it (`-v`, \"ideal\"); lmz's archive minus this is its container (header, chunk "
                "table, trailer) and coding overhead: %.0f bytes in all on the main set, %.1f per input."
                % (d["main"]["lmz_overhead_bytes"], d["main"]["lmz_overhead_bytes"] / d["main"]["inputs"])]
    if b["max_bytes"]:
        out += ["", "Caveat: the cap favours lmz. On %d-byte prefixes the dictionary compressors have little "
                "history to learn from and gain much on longer inputs (see the uncapped table below), while "
                "lmz codes each chunk of `--chunk` bytes (default 4096) independently, so its bits/byte does "
                "not improve with length beyond one chunk." % b["max_bytes"]]
    out += ["", "### Subset: larger models and llama-zip", "",
            "The same peers and the default model again, on a smaller set of the same kind: %s capped to "
            "their first %d bytes, and %s. `%s, no prompt` codes the responses without their prompt "
            "(as llama-zip and the peers do; for files it is the same run as with). llama-zip runs on the "
            "same GGUF file as lmz's default model; its output is a bare code stream with no header."
            % (", ".join(b["subset_files"]), b["subset_bytes"], b["subset_responses"],
               "lmz " + DEFAULT_MODEL), ""]
    out += md_table(sub_items, sub_cols, sub_tab)
    lzk, nk = "llama-zip", "lmz %s, no prompt" % DEFAULT_MODEL
    if lzk in sub_tab and nk in sub_tab and "(%s model bits)" % nk in sub_tab:
        sb, n = d["subset"]["bytes"], d["subset"]["inputs"]
        ov = (sub_tab[nk]["overall"] - sub_tab["(%s model bits)" % nk]["overall"]) * sb / 8.0
        out += ["", "Same model, same bytes: lmz without the prompt codes the subset in %.3f bits/byte of model "
                "cross-entropy against llama-zip's %.3f bits/byte of output; lmz's archives add %.0f bytes each "
                "on average (container and coder), which is what puts them at %.3f."
                % (sub_tab["(%s model bits)" % nk]["overall"], sub_tab[lzk]["overall"], ov / n, sub_tab[nk]["overall"])]
    wk, nmk = "(lmz %s model bits)" % DEFAULT_MODEL, "(%s model bits)" % nk
    if wk in sub_tab and nmk in sub_tab and sub_tab[wk].get("responses") and sub_tab[nmk].get("responses"):
        out += ["", "The prompt as context: on the subset's responses the default model needs %.3f bits/byte with "
                "the prompt and %.3f without it (model cross-entropy; %+.1f%%)."
                % (sub_tab[wk]["responses"], sub_tab[nmk]["responses"],
                   100.0 * (sub_tab[wk]["responses"] / sub_tab[nmk]["responses"] - 1))]
    if d.get("uncapped_peers"):
        u = d["uncapped_peers"]
        items = [RowItem(r) for r in u["items"]]
        out += ["", "### Peers on the uncapped files (for scale; lmz not run on them)", "",
                "The %d files of the main set that the cap shortened, whole (%d bytes)." % (u["inputs"], u["bytes"]), ""]
        out += md_table(items, [(n, n) for n in d["peers"]], u["bits_per_byte"])
    out += ["", "### Speed", "",
            "Bytes of original per second of wall time, summed over the inputs this run measured itself (one "
            "process per input and direction, model loading included; results reused from the store are not "
            "timed again); -T %d (%s)." % (d["threads"], d["threads_choice"]), "",
            "| compressor | set | inputs | bytes | compress s | decompress s | compress B/s | decompress B/s |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for t in d["throughput"]:
        out.append("| %s | %s | %d | %d | %.1f | %.1f | %s | %s |"
                   % (t["compressor"], t["set"], t["inputs"], t["bytes"], t["compress_s"], t["decompress_s"],
                      fmt_rate(t["bytes"], t["compress_s"]), fmt_rate(t["bytes"], t["decompress_s"])))
    lzs = d["llama_zip"]
    if lzs["status"] == "ran":
        i = lzs["info"]
        lzline = ("llama-zip %s (github AlexBuz/llama-zip%s), llama-cpp-python %s, numpy %s, in a venv under "
                  "$LMZ_CACHE/ref/llama-zip; run unmodified except that its `Llama` gets n_threads = %d; "
                  "round trips: %s" % (i.get("version", "?"), (" @ " + i["commit"][:12]) if i.get("commit") else "",
                                       i.get("llama_cpp_python"), i.get("numpy"), d["threads"],
                                       "all byte-exact" if not lzs["roundtrip_failures"] else
                                       "FAILED on " + ", ".join(lzs["roundtrip_failures"])))
    else:
        lzline = "llama-zip: not run: %s" % lzs["reason"]
    mods = "; ".join("%s = `%s` (%s)" % (n, m["file"], m["description"]) for n, m in d["models"].items())
    out += ["",
            "- date: %s; run time %.0f s (%.1f min)" % (d["date"], d["wall_s"], d["wall_s"] / 60),
            "- CPU: %s, %d logical CPUs; 1-minute load average at start %.2f"
            % (d["cpu"]["model"], d["cpu"]["cpus"], d["load_average_at_start"]),
            "- lmz: commit %s (binary sha256 %s), default options (`-T %d`, default chunking)"
            % (d["lmz_commit"], d["lmz_binary_sha256"], d["threads"]),
            "- models: %s" % mods,
            "- main set: %d inputs, %d bytes; subset: %d inputs, %d bytes"
            % (d["main"]["inputs"], d["main"]["bytes"], d["subset"]["inputs"], d["subset"]["bytes"]),
            "- peers: %s; commands: `gzip -9 -n`, `bzip2 -9`, `xz -9e`, `zstd --ultra -22`, `brotli -q 11` "
            "(stdin to stdout; each round trip checked)" % ", ".join("%s" % v for v in d["peer_versions"].values()),
            "- " + lzline]
    for n in d["notes"]:
        out.append("- note: %s" % n)
    return "\n".join(out)


if __name__ == "__main__":
    import signal

    def _term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    sys.exit(main())
