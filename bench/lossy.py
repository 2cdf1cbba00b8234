#!/usr/bin/env python3
"""Lossy compression by succinct rewrite (`lmz --lossy`, issue 7): compression ratio and
answer derivability on GSM8K and MATH-500 test solutions; ratio and a judge model's score on
chat answers.

Data (../shared/data/qa, or $LMZ_DATA/qa):
  gsm8k     gsm8k_test.jsonl: `question`, `answer` (the solution; its last line is "#### N")
  math500   math500_test.jsonl: `problem`, `solution` (final answer in \\boxed{...}), `answer`
  chat      ../shared/data/llm-text/alpaca_eval/gpt4.json: `instruction` (the prompt), `output` (the
            answer; only answers of CHAT_MIN..CHAT_MAX bytes are drawn)
Selection: --n problems per set (default 10), records floor(i*n_records/n), i = 0..n-1 (fixed,
spread over the file). Sized on this 2-CPU machine while other work loaded it (-T 1): about 85 s
a GSM8K problem and 2 minutes a MATH-500 problem for all three N and the five answers, so the
default run takes ~35 minutes; --n 20 about 70.

Answer hiding (the "original" below is the answer-hidden solution; every ratio is relative to it):
  gsm8k     the "#### N" line is dropped, and so are the calculator annotations "<<48/2=24>>"
            (machine markup that repeats the result written right after it); the text is
            stripped of surrounding whitespace. The solution's last sentence usually still
            computes the answer ("... = $18 every day"): hiding removes the answer line, not the
            working that leads to it.
  math500   every \\boxed{X} (X with balanced braces) becomes \\boxed{?}.

For each problem and each N in --best-of (default 1,3,5):
  lmz --lossy -m CODER --rewriter REWRITER --best-of N --prompt PROBLEM -v -c ORIGINAL
the problem is the shared context of both the rewriter's message and the coding (the
receiver has it; it is not stored). The archive is decompressed (`lmz -d --prompt PROBLEM`)
to get the kept rewrite back. When no rewrite codes smaller than the original, lmz keeps the
original's lossless archive (counted as "fallback"). Baselines on the same originals:
`lmz -c -m CODER --prompt PROBLEM` (round trip checked), `gzip -9 -n`, `xz -9e`.
Ratio = output bytes / original bytes; per set the mean of per-problem ratios and the pooled
ratio (sum of outputs / sum of originals). lmz sizes are whole archives (container included);
"payload" leaves out the container (header, chunk table, trailer; ~48 bytes with a prompt),
which dominates at these sizes.

Answer derivability: the answer model (default the rewriter, Qwen2.5-Coder-1.5B-Instruct) is
asked, greedily (`lmz generate -m MODEL --chat -n 48`, temperature 0), with ANSWER_PROMPT
below, for the final answer from the problem plus (a) the original (answer-hidden) solution,
(b) each kept rewrite; and as a control from (c) the problem alone (CONTROL_PROMPT). Its reply
is compared with the gold answer by the normalizers gsm8k_correct / math_correct below.

Chat answers have no gold answer to derive: a judge model (--judge-model, default Qwen2.5-Coder-
1.5B-Instruct through `lmz generate`, greedy; or --judge-url, any OpenAI-compatible endpoint at
temperature 0) lists the key facts of each original answer for the user's request (FACTS_PROMPT)
as questions with short answers copied from the original; answers that do not occur in the
original (normalized: case, spacing, punctuation, markup) are dropped. A text keeps a fact when
the fact's answer occurs in it, normalized the same way; the score is the share of facts kept,
pooled over answers. Texts: each kept rewrite, and the original cut to the smallest N's rewrite
length (the control: a rewrite should keep more than the same number of the original's first
bytes). A rewrite that restates a fact in other words (digits for number words, a symbol for a
word) is counted as dropping it, so the score is a lower bound on what rewrites keep.

Every lmz result (archives, rewrites, replies) is cached in $LMZ_CACHE/bench-lossy/, one file
per key (kind, lmz binary sha256, model files, options, input and prompt bytes); --resume
reuses them after an interruption instead of running them again.

Writes the "lossy" section of bench/report.json and bench/report.md, keeping the others.
Standard library only.

usage: lossy.py [--n N] [--sets gsm8k,math500] [--best-of 1,3,5] [--threads N|auto] [--resume]
                [--lmz PATH --lmz-commit C] [--out-dir DIR] [--no-write] [--render-only]
       (make bench passes $LOSSY_BENCH_ARGS)
"""
import argparse, datetime, hashlib, json, os, re, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BenchError  # noqa: E402
sys.path.insert(0, os.path.join(common.ROOT, "tools"))
from make_qa_sets import boxed_spans  # noqa: E402

ROOT, CACHE = common.ROOT, common.CACHE
SECTION = "lossy"
DATA = os.environ.get("LMZ_DATA") or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
CACHE_DIR = os.path.join(CACHE, "bench-lossy")
SETS = {"gsm8k": "qa/gsm8k_test.jsonl", "math500": "qa/math500_test.jsonl",
        "chat": "llm-text/alpaca_eval/gpt4.json"}
SET_TITLE = {"gsm8k": "GSM8K test", "math500": "MATH-500", "chat": "chat answers (alpaca_eval, GPT-4)"}
SET_RECORDS = {"gsm8k": 1319, "math500": 500, "chat": 805}
# Chat answers are drawn from those of CHAT_MIN..CHAT_MAX bytes: long enough to have something
# to drop, short enough that the 1.5B rewriter and judge take about a minute each.
CHAT_MIN, CHAT_MAX = 300, 1500

ANSWER_PROMPT = ("Below are a math problem and a worked solution to it whose final answer has been removed. "
                 "Using the solution, state its final answer. Reply with the final answer only, as a number or a "
                 "mathematical expression, with no words, units or explanation.\n\nProblem:\n%s\n\nSolution:\n%s")
CONTROL_PROMPT = ("Below is a math problem. State its final answer. Reply with the final answer only, as a number "
                  "or a mathematical expression, with no words, units or explanation.\n\nProblem:\n%s")
ANSWER_TOKENS = 48
# The judge (chat answers). Our prompt asks it for the key facts of the original answer as quiz
# questions with short answers copied from the answer (an example of the format is needed: without
# it the 1.5B judge wrote one question and copied the whole answer); a text keeps a fact when the fact's
# answer appears in it (after normalize_fact). Two designs asking the 1.5B judge to grade texts
# were tried first and rejected on the first 4 answers: a 1-10 score (8 for every text, the
# original, each rewrite and the cut control alike) and a yes/no per key point (yes to all).
JUDGE_FACTS = 5
FACTS_PROMPT = ("Below is a question a user asked and the answer they got.\n\nQuestion:\n%s\n\nAnswer:\n%s\n\n"
                "Write " + str(JUDGE_FACTS) + " short quiz questions that check the most important facts in this "
                "answer, each followed by its answer in at most five words copied from the answer. Use exactly this "
                "format, one per line:\nQ: In which year did the war end? A: 1945\nQ: Who painted the ceiling? A: "
                "Michelangelo")
FACTS_TOKENS = 256
PEERS = [("gzip -9", ["gzip", "-9", "-n", "-c"]), ("xz -9e", ["xz", "-9e", "-c"])]

T0 = time.time()


def log(msg):
    el = time.time() - T0
    print("lossy [%d:%02d]: %s" % (el // 60, el % 60, msg), file=sys.stderr, flush=True)


def sha256(b):
    return hashlib.sha256(b if isinstance(b, bytes) else b.encode()).hexdigest()


# ---------------------------------------------------------------- data and answer hiding


def hide_math(sol):
    spans = boxed_spans(sol)
    for a, b, _ in reversed(spans):
        sol = sol[:a] + "\\boxed{?}" + sol[b:]
    return sol.strip(), len(spans)


def hide_gsm8k(ans):
    lines = [l for l in ans.split("\n") if not l.startswith("####")]
    return re.sub(r"<<[^<>]*>>", "", "\n".join(lines)).strip()


def load_set(name, n):
    path = os.path.join(DATA, SETS[name])
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        recs = json.loads(text) if path.endswith(".json") else [json.loads(l) for l in text.split("\n") if l.strip()]
    except (OSError, ValueError) as e:
        raise BenchError("cannot read %s (%s); the data lives in ../shared/data (or $LMZ_DATA)" % (path, e))
    items = []
    if name == "chat":
        pool = [(i, r) for i, r in enumerate(recs) if CHAT_MIN <= len(r["output"].encode()) <= CHAT_MAX]
        for k in range(min(n, len(pool))):
            i, r = pool[(k * len(pool)) // n]
            items.append({"set": name, "index": i, "problem": r["instruction"], "original": r["output"].strip(),
                          "gold": None, "boxed_hidden": None})
        return items
    for i in [(k * len(recs)) // n for k in range(min(n, len(recs)))]:
        r = recs[i]
        if name == "gsm8k":
            gold = r["answer"].split("####")[-1].strip()
            items.append({"set": name, "index": i, "problem": r["question"], "original": hide_gsm8k(r["answer"]),
                          "gold": gold, "boxed_hidden": None})
        else:
            orig, k = hide_math(r["solution"])
            items.append({"set": name, "index": i, "problem": r["problem"], "original": orig, "gold": r["answer"],
                          "boxed_hidden": k})
    return items


# ---------------------------------------------------------------- answer checking

NUM = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")


def parse_number(s):
    s = s.replace(",", "")
    if "/" in s:
        a, b = s.split("/")
        return float(a) / float(b) if float(b) else None
    return float(s)


def gsm8k_extract(reply):
    """The last number of the reply, commas between digits removed (so '$1,200 per month' -> 1200)."""
    t = re.sub(r"(?<=\d),(?=\d{3})", "", reply)
    nums = NUM.findall(t)
    return nums[-1] if nums else None


def gsm8k_correct(reply, gold):
    x = gsm8k_extract(reply)
    if x is None:
        return False, None
    try:
        return abs(parse_number(x) - parse_number(gold)) < 1e-6, x
    except (ValueError, ZeroDivisionError):
        return False, x


def math_normalize(s):
    s = s.strip()
    b = boxed_spans(s)
    if b:
        s = b[-1][2]
    for pre in ("\\(", "\\["):
        if s.startswith(pre):
            s = s[2:]
    for suf in ("\\)", "\\]"):
        if s.endswith(suf):
            s = s[:-2]
    s = s.strip().rstrip(".").strip().strip("$").strip()
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\(left|right)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\[!,;:]", "", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"\^\{?\\circ\}?|°", "", s)
    s = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", s)
    return s.rstrip(".")


def math_extract(reply):
    """The reply's \\boxed{} content if it has one, else its first non-empty line with a leading
    'final answer is' / 'answer:' removed."""
    if boxed_spans(reply):
        return reply
    lines = [l for l in reply.strip().split("\n") if l.strip()]
    s = lines[0] if lines else ""
    s = re.sub(r"^(the\s+)?(final\s+)?answer(\s+is)?\s*[:=]?\s*", "", s.strip(), flags=re.I)
    return s


def math_correct(reply, gold):
    x = math_normalize(math_extract(reply))
    g = math_normalize(gold)
    if x == g:
        return True, x
    try:
        return abs(float(x) - float(g)) < 1e-6, x
    except ValueError:
        return False, x


def correct(set_name, reply, gold):
    return gsm8k_correct(reply, gold) if set_name == "gsm8k" else math_correct(reply, gold)


# ---------------------------------------------------------------- lmz runs, cached

def archive_payload(arc):
    """Bytes of chunk payloads in an lmz archive: all of it but the header, the chunk table and
    the trailer (docs/format.md §3, §5)."""
    if len(arc) < 13 or arc[:4] != b"\x89LMZ":
        raise BenchError("not an lmz archive")
    header = arc[5]
    pos, size, shift, k = len(arc) - 5, 0, 0, 0   # table_size: a varint stored backwards before the CRC
    while True:
        b = arc[pos]
        size |= (b & 0x7F) << shift
        shift += 7
        k += 1
        pos -= 1
        if not b & 0x80:
            break
    return len(arc) - header - size - k - 4


def archive_flags(arc):
    return arc[6]   # varint; lmz's flags fit one byte


class Runner:
    def __init__(self, tmp, lmz, lmz_sha, threads, models, resume, timeout, judge_url=None):
        self.tmp, self.lmz, self.lmz_sha, self.threads = tmp, lmz, lmz_sha, threads
        self.judge_url = judge_url
        self.models, self.resume, self.timeout = models, resume, timeout   # models: name -> (path, key)
        self.reused = self.ran = 0
        self.memo = {}   # key -> result of this run (the same text asked twice, e.g. a fallback's original)
        self.seconds = {}  # key -> seconds its lmz commands took
        os.makedirs(CACHE_DIR, exist_ok=True)

    def key(self, kind, opts, data, prompt):
        k = json.dumps([kind, self.lmz_sha, opts, self.threads, sha256(data), sha256(prompt)])
        return sha256(k)[:32]

    def secs(self, key, res):
        """Notes the seconds the lmz commands behind a result took (when it was made)."""
        self.seconds[key] = sum(res.get(k) or 0 for k in ("compress_s", "decompress_s", "s"))
        return res

    def load(self, key):
        if key in self.memo:
            return self.memo[key]
        p = os.path.join(CACHE_DIR, key + ".json")
        if self.resume and os.path.exists(p):
            try:
                with open(p) as f:
                    r = json.load(f)
                self.reused += 1
                self.memo[key] = r
                return self.secs(key, r)
            except ValueError:
                pass
        return None

    def save(self, key, res, archive=None):
        if archive is not None:
            with open(os.path.join(CACHE_DIR, key + ".lmz"), "wb") as f:
                f.write(archive)
        common.atomic_write(os.path.join(CACHE_DIR, key + ".json"), json.dumps(res) + "\n")
        self.memo[key] = res
        self.secs(key, res)
        self.ran += 1

    def _write(self, name, data):
        p = os.path.join(self.tmp, name)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return p

    def _lmz(self, args, what, want_bytes=True):
        cmd = [self.lmz] + args
        t = time.time()
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise BenchError("%s timed out after %ds" % (what, self.timeout))
        if p.returncode != 0:
            raise BenchError("%s failed (exit %d): %s" % (what, p.returncode, p.stderr.decode(errors="replace")[-600:]))
        return p.stdout, p.stderr.decode(errors="replace"), time.time() - t

    def lossless(self, item):
        coder, ckey = self.models["coder"]
        key = self.key("lossless", [ckey], item["original"], item["problem"])
        r = self.load(key)
        if r:
            return r
        inp = self._write("orig.txt", item["original"])
        arc, _, t = self._lmz(["-c", "-q", "-T", str(self.threads), "-m", coder, "--prompt", item["problem"], inp],
                              "lmz -c on %s#%d" % (item["set"], item["index"]))
        ap = self._write("orig.lmz", arc)
        back, _, td = self._lmz(["-d", "-c", "-q", "-T", str(self.threads), "-m", coder, "--prompt", item["problem"],
                                 ap], "lmz -d on %s#%d" % (item["set"], item["index"]))
        if back != item["original"].encode():
            raise BenchError("lmz round trip FAILED on %s#%d" % (item["set"], item["index"]))
        r = {"bytes": len(arc), "payload": archive_payload(arc), "compress_s": round(t, 2),
             "decompress_s": round(td, 2)}
        self.save(key, r, arc)
        return r

    def lossy(self, item, n, seed):
        coder, ckey = self.models["coder"]
        rewriter, rkey = self.models["rewriter"]
        key = self.key("lossy", [ckey, rkey, n, seed], item["original"], item["problem"])
        r = self.load(key)
        if r:
            return r
        inp = self._write("orig.txt", item["original"])
        arc, err, t = self._lmz(["--lossy", "-c", "-v", "-T", str(self.threads), "-m", coder, "--rewriter", rewriter,
                                 "--best-of", str(n), "--seed", str(seed), "--prompt", item["problem"], inp],
                                "lmz --lossy --best-of %d on %s#%d" % (n, item["set"], item["index"]))
        ap = self._write("lossy.lmz", arc)
        back, _, td = self._lmz(["-d", "-c", "-q", "-T", str(self.threads), "-m", coder, "--prompt", item["problem"],
                                 ap], "lmz -d of the lossy archive of %s#%d" % (item["set"], item["index"]))
        m = re.search(r"coded sizes: the input (\d+) bytes; rewrites (.*)", err)
        cands = [None if s == "empty" else int(s) for s in re.findall(r"#\d+ (\d+|empty)", m.group(2))] if m else None
        toks = re.search(r"\(tokens: ([^)]*)\)", err)
        gen_s = re.search(r"in ([0-9.]+)s", err)
        fallback = not (archive_flags(arc) & 4)
        r = {"bytes": len(arc), "payload": archive_payload(arc), "fallback": fallback,
             "rewrite": back.decode("utf-8", errors="replace"), "rewrite_bytes": len(back),
             "candidate_bytes": cands, "lossless_bytes_seen": int(m.group(1)) if m else None,
             "candidate_tokens": toks.group(1).split() if toks else None,
             "rewrite_s": float(gen_s.group(1)) if gen_s else None, "compress_s": round(t, 2),
             "decompress_s": round(td, 2)}
        if fallback and back != item["original"].encode():
            raise BenchError("lossy fallback archive of %s#%d does not give back the original" % (item["set"], item["index"]))
        self.save(key, r, arc)
        return r

    def answer(self, prompt):
        model, mkey = self.models["answer"]
        key = self.key("answer", [mkey, ANSWER_TOKENS], prompt, "")
        r = self.load(key)
        if r:
            return r
        p = self._write("answer.txt", prompt)
        out, _, t = self._lmz(["generate", "-m", model, "--chat", "-T", str(self.threads), "-n", str(ANSWER_TOKENS), p],
                              "lmz generate (answer)")
        r = {"reply": out.decode("utf-8", errors="replace").strip(), "s": round(t, 2)}
        self.save(key, r)
        return r

    def judge(self, prompt, max_tokens):
        """The judge's reply to PROMPT: the local judge model through `lmz generate` (greedy), or
        the OpenAI-compatible endpoint --judge-url (temperature 0)."""
        if self.judge_url:
            model = self.models["judge"][0]
            key = self.key("judge-url", [self.judge_url, model, max_tokens], prompt, "")
        else:
            model, mkey = self.models["judge"]
            key = self.key("judge", [mkey, max_tokens], prompt, "")
        r = self.load(key)
        if r:
            return r
        t = time.time()
        if self.judge_url:
            reply = chat_endpoint(self.judge_url, model, prompt, max_tokens, self.timeout)
        else:
            p = self._write("judge.txt", prompt)
            out, _, _ = self._lmz(["generate", "-m", model, "--chat", "-T", str(self.threads), "-n",
                                   str(max_tokens), p], "lmz generate (judge)")
            reply = out.decode("utf-8", errors="replace").strip()
        r = {"reply": reply, "s": round(time.time() - t, 2)}
        self.save(key, r)
        return r


def normalize_fact(text):
    """Lower case, markup and punctuation to spaces, spaces collapsed (for fact matching)."""
    return " ".join(re.sub(r"[^\w%$.+-]+|(?<!\d)[.]|[.](?!\d)", " ", text.lower()).split())


def parse_facts(reply, original):
    """The judge's facts as (question, answer), at most JUDGE_FACTS, keeping only those whose
    answer occurs in the original (normalize_fact)."""
    facts, orig = [], " %s " % normalize_fact(original)
    for line in reply.split("\n"):
        m = re.search(r"Q:\s*(.*?)\s*A:\s*(.+)", line)
        if m and normalize_fact(m.group(2)) and " %s " % normalize_fact(m.group(2)) in orig:
            facts.append((m.group(1), m.group(2).strip()))
    return facts[:JUDGE_FACTS]


def facts_kept(facts, text):
    """For each fact, whether its answer occurs in TEXT (normalize_fact)."""
    t = " %s " % normalize_fact(text)
    return [" %s " % normalize_fact(a) in t for _, a in facts]


def chat_endpoint(url, model, prompt, max_tokens, timeout):
    """One user message to an OpenAI-compatible /v1/chat/completions URL (key: $LMZ_JUDGE_KEY,
    else $OPENAI_API_KEY); the first choice's content."""
    import urllib.error, urllib.request
    body = {"messages": [{"role": "user", "content": prompt}], "temperature": 0, "max_tokens": max_tokens}
    if model:
        body["model"] = model
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    key = os.environ.get("LMZ_JUDGE_KEY") or os.environ.get("OPENAI_API_KEY")
    if key:
        req.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as f:
            return json.load(f)["choices"][0]["message"]["content"].strip()
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        raise BenchError("judge endpoint %s: %s" % (url, e))


def cut_to(text, nbytes):
    """TEXT's first NBYTES bytes (at most), cut back to a whole character."""
    return text.encode()[:nbytes].decode("utf-8", errors="ignore")


def peer_size(cmd, data):
    p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    if p.returncode != 0:
        raise BenchError("%s failed: %s" % (" ".join(cmd), p.stderr[-300:]))
    return len(p.stdout)


def resolve_model(name):
    if os.path.sep in name or name.endswith(".gguf"):
        if not os.path.exists(name):
            raise BenchError("model file %s not found" % name)
        st = os.stat(name)
        return name, [os.path.basename(name), st.st_size, int(st.st_mtime)]
    fm = common.load_fetch_models()
    if name not in fm.MODELS:
        raise BenchError("unknown model %s (tools/fetch_models.py knows %s)" % (name, ", ".join(fm.MODELS)))
    path = os.path.join(CACHE, "models", fm.MODELS[name][0])
    if not os.path.exists(path):
        raise BenchError("model %s is not in %s/models: `python3 tools/fetch_models.py %s` fetches it"
                         % (name, CACHE, name))
    st = os.stat(path)
    return path, [os.path.basename(path), fm.MODELS[name][3][:16], st.st_size, int(st.st_mtime)]


# ---------------------------------------------------------------- tables

def methods_of(d):
    return ["gzip -9", "xz -9e", "lmz"] + ["lmz --lossy N=%d" % n for n in d["best_of"]]


def judge_summary(items, label):
    """The share of the judge's facts one text of every item keeps, pooled over items."""
    kept = [k for it in items for k in it["judge"][label]]
    return {"facts_kept": sum(kept), "facts": len(kept)}


CUT_CONTROL = "original cut to the N=%d rewrite's length (control)"


def summarize(items, best_of):
    """Per-method ratios, and derivability (math sets) or judge scores (chat), of one set's
    per-problem records."""
    orig = sum(it["original_bytes"] for it in items)
    chat = "judge" in items[0]
    out = {}
    for m in ["gzip -9", "xz -9e", "lmz"] + ["lmz --lossy N=%d" % n for n in best_of]:
        sizes = [it["sizes"][m] for it in items]
        row = {"ratio_mean": sum(s / it["original_bytes"] for s, it in zip(sizes, items)) / len(items),
               "ratio_pooled": sum(sizes) / orig, "bytes": sum(sizes)}
        if m.startswith("lmz"):
            pay = [it["payload"][m] for it in items]
            row["payload_pooled"] = sum(pay) / orig
        if m == "lmz":
            if not chat:
                row["derivable"] = sum(it["derivable"]["original"] for it in items)
            else:
                row["facts_kept"] = row["facts"] = sum(len(it["facts"]) for it in items)
        elif m.startswith("lmz --lossy"):
            n = int(m.split("=")[1])
            if chat:
                row.update(judge_summary(items, "N=%d" % n))
            else:
                row["derivable"] = sum(it["derivable"]["N=%d" % n] for it in items)
            row["fallback"] = sum(it["lossy"]["N=%d" % n]["fallback"] for it in items)
            row["rewrite_bytes_pooled"] = sum(it["lossy"]["N=%d" % n]["rewrite_bytes"] for it in items) / orig
        out[m] = row
    if chat:
        out[CUT_CONTROL % best_of[0]] = judge_summary(items, "original cut")
    else:
        out["problem only (control)"] = {"derivable": sum(it["derivable"]["problem only"] for it in items)}
    return {"n": len(items), "original_bytes": orig, "methods": out}


def markdown_section(d):
    out = ["## Lossy compression by succinct rewrite (`lmz --lossy`): GSM8K, MATH-500 and chat answers", "",
           "Ratio = compressed bytes / bytes of the original solution with its final answer hidden (lower is "
           "better): the mean of per-problem ratios, and pooled (sum of outputs / sum of originals). lmz sizes are "
           "whole archives; _payload_ leaves out lmz's container (header, chunk table, trailer: about 48 bytes "
           "per archive with a prompt), which dominates at these sizes. _rewrite text_ is the kept rewrite's own "
           "bytes / the original's (the shortening before coding). lmz and `--lossy` get the problem as "
           "`--prompt` (shared context: the rewriter sees it and the coder is conditioned on it; not stored); "
           "gzip and xz compress the solution alone. _Derivable_: the answer model found the gold final answer "
           "from problem + that text (for gzip/xz/lmz: the original, which they give back exactly); the control "
           "row gives it the problem alone. _Fallback_: problems where no rewrite coded smaller than the original, "
           "so `--lossy` kept the original's lossless archive.", ""]
    for s in d["sets"]:
        sm = d["results"][s]["summary"]
        if s == "chat":
            out += chat_table(d, sm)
            continue
        out += ["### %s (n = %d, %d bytes of answer-hidden solutions)" % (SET_TITLE[s], sm["n"], sm["original_bytes"]),
                "", "| method | ratio (mean) | ratio (pooled) | payload (pooled) | rewrite text | derivable | fallback |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for m in methods_of(d) + ["problem only (control)"]:
            r = sm["methods"][m]
            der = ("%d/%d (%.0f%%)" % (r["derivable"], sm["n"], 100.0 * r["derivable"] / sm["n"])
                   if "derivable" in r else "")
            if m == "problem only (control)":
                out.append("| %s | | | | | %s | |" % (m, der))
                continue
            out.append("| %s | %.3f | %.3f | %s | %s | %s | %s |" % (
                m, r["ratio_mean"], r["ratio_pooled"],
                "%.3f" % r["payload_pooled"] if "payload_pooled" in r else "",
                "%.3f" % r["rewrite_bytes_pooled"] if "rewrite_bytes_pooled" in r else "",
                der or ("(same as lmz)" if m in ("gzip -9", "xz -9e") else ""),
                "%d/%d" % (r["fallback"], sm["n"]) if "fallback" in r else ""))
        out.append("")
    o = d["options"]
    out += ["Caveats:", "",
            "- GSM8K: hiding drops the `#### N` line, but a solution's last sentence usually still computes the "
            "answer, so derivability there mostly says whether a rewrite kept that last result (not whether it "
            "kept the steps before it; the per-problem rewrites are in report.json).",
            "- The answer model is small (1.5B) and replies in at most %d tokens with an answer-only prompt: on "
            "long MATH-500 solutions it often starts working the problem out instead of answering and is cut off "
            "(counted as not derived), which penalises the long original more than a short rewrite. MATH-500 "
            "derivability reflects the answer model as much as the text. The chat judge is the same small model; "
            "it only picks the facts (checking them is string matching, after asking it to grade texts gave the same "
            "grade to every text)." % ANSWER_TOKENS,
            "- `--best-of N` keeps the candidate that codes smallest, which favours rewrites that keep only the "
            "result; N > 1 samples (temperature 0.7) without the greedy rewrite, so for a given problem N = 3 can "
            "code larger than N = 1, and N = 5's first three candidates are N = 3's (same seeds).",
            "- n is small: one problem is %.0f%% of a rate." % (100.0 / max(d["results"][s0]["summary"]["n"]
                                                                           for s0 in d["sets"])),
            ""]
    out += ["Method:", "",
            "- selection: %s" % d["selection"],
            "- answer hiding: %s" % "; ".join("%s: %s" % (k, v) for k, v in d["hiding"].items()),
            "- models: coder `%s`, rewriter `%s`, answer model `%s`%s" % (
                d["models"]["coder"], d["models"]["rewriter"], d["models"]["answer"],
                ", judge `%s`" % d["models"]["judge"] if "judge" in d["models"] else ""),
            "- rewrite instruction: lmz's default (`lmz --help-lossy`): \"%s\"" % d["rewrite_instruction"],
            "- commands: `%s`; then `%s`; lossless: `%s`; peers: `gzip -9 -n -c`, `xz -9e -c`"
            % (o["lossy_cmd"], o["decompress_cmd"], o["lossless_cmd"]),
            "- answer: `%s` with the prompt \"%s\" (control: \"%s\"); correct when %s"
            % (o["answer_cmd"], d["answer_prompt"].replace("\n", "\\n"), d["control_prompt"].replace("\n", "\\n"),
               d["normalizer"]),
            ] + (["- judge (chat): `%s` with the prompt \"%s\"; facts whose answer does not occur in the original "
                  "are dropped; a text keeps a fact when its answer occurs in the text (both lower-cased, markup and "
                  "punctuation to spaces, spaces collapsed)" % (d["judge"], d["judge_prompt"].replace("\n", "\\n"))]
                 if d.get("judge") else []) + [
            "- date: %s; this run %.0f s (%.1f min): %d results made, %d reused from the cache (`--resume`); the "
            "lmz commands behind all results took %.0f s (%.1f min) when they ran"
            % (d["date"], d["wall_s"], d["wall_s"] / 60, d["runs"], d["reused"], d.get("lmz_command_s", 0),
               d.get("lmz_command_s", 0) / 60),
            "- CPU: %s, %d logical CPUs; 1-minute load average at start %.2f; lmz -T %d (%s)"
            % (d["cpu"]["model"], d["cpu"]["cpus"], d["load_average_at_start"], d["threads"], d["threads_choice"]),
            "- lmz: commit %s (binary sha256 %s)" % (d["lmz_commit"], d["lmz_binary_sha256"]),
            "- per-problem records (texts, rewrites, candidate sizes, replies): report.json, section `lossy`"]
    for s, k in d.get("kept_sets", {}).items():
        out.append("- %s: results of an earlier run (--keep-other-sets): %s, lmz %s (binary sha256 %s), -T %d; "
                   "selection: %s%s" % (SET_TITLE[s], k["date"], k["lmz_commit"], k["lmz_binary_sha256"],
                                         k["threads"], k["selection"],
                                         "".join("; that run's note: %s" % n for n in k.get("notes", []))))
    for n in d["notes"]:
        out.append("- note: %s" % n)
    return "\n".join(out)


def keep_other_sets(d, jpath):
    """Adds to this run's section D the sets of report.json's lossy section that D lacks, each
    with a note of the run it comes from."""
    try:
        with open(jpath) as f:
            old = json.load(f).get(SECTION)
    except (OSError, ValueError) as e:
        raise BenchError("--keep-other-sets: cannot read %s (%s)" % (jpath, e))
    if not old:
        return
    if old["best_of"] != d["best_of"]:
        raise BenchError("--keep-other-sets: the report's lossy section measured best-of %s, this run %s"
                         % (old["best_of"], d["best_of"]))
    for s in old["sets"]:
        if s in d["sets"]:
            continue
        d["results"][s] = old["results"][s]
        d["kept_sets"][s] = old.get("kept_sets", {}).get(s) or {
            "date": old["date"], "lmz_commit": old["lmz_commit"], "lmz_binary_sha256": old["lmz_binary_sha256"],
            "threads": old["threads"], "selection": old["selection"], "notes": old["notes"]}
        d["sets"].append(s)
    d["sets"].sort(key=list(SETS).index)


def chat_table(d, sm):
    """The chat set's table: ratios and the share of key points kept."""
    out = ["### %s (n = %d, %d bytes of answers)" % (SET_TITLE["chat"], sm["n"], sm["original_bytes"]), "",
           "_Facts kept_: the judge model listed up to %d key facts the user needs from each original answer, each "
           "with a short answer copied from it (prompt in _Method_); a text keeps a fact when that answer occurs in "
           "it. Pooled over answers. The original keeps all by construction; the original cut to the N=%d "
           "rewrite's length is the control a rewrite should beat. A fact restated in other words counts as "
           "dropped, so rewrites' shares are lower bounds." % (JUDGE_FACTS, d["best_of"][0]), "",
           "| method | ratio (mean) | ratio (pooled) | payload (pooled) | rewrite text | facts kept | fallback |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for m, r in sm["methods"].items():
        judge = ("%d/%d (%.0f%%)" % (r["facts_kept"], r["facts"], 100.0 * r["facts_kept"] / max(1, r["facts"]))
                 if "facts" in r else "")
        if m in ("gzip -9", "xz -9e"):
            judge = "(same as lmz)"
        if "ratio_mean" not in r:
            out.append("| %s | | | | | %s | |" % (m, judge))
            continue
        out.append("| %s | %.3f | %.3f | %s | %s | %s | %s |" % (
            m, r["ratio_mean"], r["ratio_pooled"], "%.3f" % r["payload_pooled"] if "payload_pooled" in r else "",
            "%.3f" % r["rewrite_bytes_pooled"] if "rewrite_bytes_pooled" in r else "", judge,
            "%d/%d" % (r["fallback"], sm["n"]) if "fallback" in r else ""))
    return out + [""]


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="lmz --lossy on GSM8K and MATH-500: ratio and answer derivability")
    ap.add_argument("--n", type=int, default=10, help="problems per set (default 10), records floor(i*total/n)")
    ap.add_argument("--sets", default="gsm8k,math500,chat",
                    help="comma-separated: gsm8k, math500, chat (default all three)")
    ap.add_argument("--best-of", default="1,3,5", help="the N of --best-of to measure (default 1,3,5)")
    ap.add_argument("--seed", type=int, default=0, help="lmz --seed for N > 1 (default 0)")
    ap.add_argument("--coder", default="smollm2", help="lmz -m (default smollm2, lmz's default)")
    ap.add_argument("--rewriter", default="qwen25coder", help="lmz --rewriter (default qwen25coder)")
    ap.add_argument("--answer-model", default="qwen25coder", help="model that derives the answers (default qwen25coder)")
    ap.add_argument("--judge-model", default="qwen25coder",
                    help="model that scores chat rewrites (default qwen25coder); with --judge-url, the request's "
                         "\"model\" (or '' for none)")
    ap.add_argument("--judge-url", help="score chat rewrites by an OpenAI-compatible /v1/chat/completions endpoint "
                    "(key: $LMZ_JUDGE_KEY or $OPENAI_API_KEY) instead of a local model")
    ap.add_argument("--threads", default="auto",
                    help="lmz -T; 'auto' (default): all CPUs when the 1-minute load average is below 0.5, else 1")
    ap.add_argument("--lmz", default=os.path.join(ROOT, "lmz"), help="lmz binary (default ./lmz; copied first)")
    ap.add_argument("--lmz-commit", help="commit to report for a --lmz built elsewhere (default: this checkout's)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds for one lmz command (default 1800)")
    ap.add_argument("--resume", action="store_true", help="reuse results in %s of a run with the same binary, "
                    "models, options and inputs" % CACHE_DIR)
    ap.add_argument("--out-dir", help="where report.md/report.json go (default: bench/)")
    ap.add_argument("--no-write", action="store_true", help="print the section only")
    ap.add_argument("--render-only", action="store_true", help="rewrite the Markdown section from report.json")
    ap.add_argument("--note", action="append", default=[], help="a note for the report (repeatable)")
    ap.add_argument("--keep-other-sets", action="store_true",
                    help="keep the results of the sets not in --sets from the report's lossy section (an earlier "
                         "run with the same --best-of; the report says which run each set comes from)")
    a = ap.parse_args()
    out_dir = os.path.abspath(a.out_dir) if a.out_dir else os.path.join(ROOT, "bench")
    jpath, mpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")
    if a.render_only:
        try:
            with open(jpath) as f:
                d = json.load(f)[SECTION]
            common.atomic_write(mpath, common.merged_md(mpath, SECTION, markdown_section(d)))
        except (OSError, ValueError, KeyError, BenchError) as e:
            print("lossy: --render-only FAILED: %s" % e, file=sys.stderr)
            return 1
        log("rewrote the %s section of %s" % (SECTION, mpath))
        return 0
    sets = [s.strip() for s in a.sets.split(",") if s.strip()]
    if not sets or any(s not in SETS for s in sets):
        ap.error("--sets takes gsm8k, math500 and/or chat")
    try:
        best_of = [int(x) for x in a.best_of.split(",")]
    except ValueError:
        ap.error("--best-of takes comma-separated integers")
    if a.n < 1 or any(n < 1 for n in best_of):
        ap.error("--n and --best-of must be >= 1")
    cpu = common.cpu_info()
    load1 = os.getloadavg()[0]
    if a.threads == "auto":
        threads = cpu["cpus"] if load1 < 0.5 else 1
        threads_why = "auto: 1-minute load average %.2f at start %s 0.5" % (load1, "<" if load1 < 0.5 else ">=")
    else:
        threads = int(a.threads)
        threads_why = "--threads %d" % threads
    notes = list(a.note)
    try:
        if not os.access(a.lmz, os.X_OK):
            raise BenchError("%s not found; run `make` first" % a.lmz)
        for _, c in PEERS:
            if not shutil.which(c[0]):
                raise BenchError("%s is not installed" % c[0])
        models = {"coder": resolve_model(a.coder), "rewriter": resolve_model(a.rewriter),
                  "answer": resolve_model(a.answer_model)}
        if "chat" in sets:
            models["judge"] = (a.judge_model, [a.judge_model]) if a.judge_url else resolve_model(a.judge_model)
        data = {s: load_set(s, a.n) for s in sets}
        log("%s; n = %d per set; best-of %s; lmz -T %d (%s)" % (", ".join(sets), a.n, best_of, threads, threads_why))
        with tempfile.TemporaryDirectory(prefix="lmz-lossy-bench-") as tmp:
            lmz = os.path.join(tmp, "lmz")
            shutil.copy2(a.lmz, lmz)
            lmz_sha = common.file_sha256(lmz)
            instruction = subprocess.run([lmz, "--help-lossy"], stdout=subprocess.PIPE, text=True).stdout.strip()
            runner = Runner(tmp, lmz, lmz_sha, threads, {k: (v[0], v[1]) for k, v in models.items()}, a.resume,
                            a.timeout, a.judge_url)
            results = {}
            for s in sets:
                recs = []
                for k, it in enumerate(data[s]):
                    ob = len(it["original"].encode())
                    rec = {"index": it["index"], "gold": it["gold"], "original_bytes": ob, "problem": it["problem"],
                           "original": it["original"], "sizes": {}, "payload": {}, "lossy": {}, "answers": {},
                           "derivable": {}}
                    if it["boxed_hidden"] is not None:
                        rec["boxed_hidden"] = it["boxed_hidden"]
                    for name, cmd in PEERS:
                        rec["sizes"][name] = peer_size(cmd, it["original"].encode())
                    ll = runner.lossless(it)
                    rec["sizes"]["lmz"], rec["payload"]["lmz"] = ll["bytes"], ll["payload"]
                    rec["lmz_lossless"] = ll
                    texts = {"original": it["original"]}
                    for n in best_of:
                        r = runner.lossy(it, n, a.seed)
                        m = "lmz --lossy N=%d" % n
                        rec["sizes"][m], rec["payload"][m] = r["bytes"], r["payload"]
                        rec["lossy"]["N=%d" % n] = r
                        texts["N=%d" % n] = r["rewrite"]
                    if s == "chat":
                        # The control: the original cut to the length of the smallest-N rewrite.
                        texts["original cut"] = cut_to(it["original"], rec["lossy"]["N=%d" % best_of[0]]["rewrite_bytes"])
                        reply = runner.judge(FACTS_PROMPT % (it["problem"], it["original"]), FACTS_TOKENS)["reply"]
                        rec["judge_reply"], rec["facts"] = reply, parse_facts(reply, it["original"])
                        rec["judge"] = {label: facts_kept(rec["facts"], text) for label, text in texts.items()
                                        if label != "original"}
                        recs.append(rec)
                        log("chat #%d (%d/%d): %d B; lmz %d; %s; judge %s" % (
                            it["index"], k + 1, len(data[s]), ob, rec["sizes"]["lmz"],
                            ", ".join("N=%d %d" % (n, rec["sizes"]["lmz --lossy N=%d" % n]) for n in best_of),
                            " ".join("%s:%d/%d" % (k2, sum(v), len(v)) for k2, v in rec["judge"].items())))
                        continue
                    for label, text in texts.items():
                        rep = runner.answer(ANSWER_PROMPT % (it["problem"], text))
                        ok, got = correct(s, rep["reply"], it["gold"])
                        rec["answers"][label] = {"reply": rep["reply"], "extracted": got}
                        rec["derivable"][label] = ok
                    rep = runner.answer(CONTROL_PROMPT % it["problem"])
                    ok, got = correct(s, rep["reply"], it["gold"])
                    rec["answers"]["problem only"] = {"reply": rep["reply"], "extracted": got}
                    rec["derivable"]["problem only"] = ok
                    recs.append(rec)
                    log("%s #%d (%d/%d): %d B; lmz %d; %s; derivable %s" % (
                        s, it["index"], k + 1, len(data[s]), ob, rec["sizes"]["lmz"],
                        ", ".join("N=%d %d%s" % (n, rec["sizes"]["lmz --lossy N=%d" % n],
                                                 " (fallback)" if rec["lossy"]["N=%d" % n]["fallback"] else "")
                                  for n in best_of),
                        " ".join("%s:%s" % (k2, "y" if v else "n") for k2, v in rec["derivable"].items())))
                results[s] = {"summary": summarize(recs, best_of), "problems": recs}
        wall = time.time() - T0
        t = threads
        d = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": cpu, "load_average_at_start": round(load1, 2), "threads": threads, "threads_choice": threads_why,
            "lmz_commit": a.lmz_commit or common.lmz_git(), "lmz_binary_sha256": lmz_sha[:16],
            "wall_s": round(wall, 1), "runs": runner.ran, "reused": runner.reused,
            "lmz_command_s": round(sum(runner.seconds.values()), 1),
            "sets": list(sets), "kept_sets": {}, "best_of": best_of, "seed": a.seed,
            "selection": "%d problems per set: records floor(i*total/%d), i = 0..%d, of %s%s" % (
                a.n, a.n, a.n - 1, ", ".join("%s (%d records; indices %s)" % (
                    SETS[s], SET_RECORDS[s], ",".join(str(r["index"]) for r in results[s]["problems"]))
                    for s in sets),
                "; chat: of the answers of %d..%d bytes" % (CHAT_MIN, CHAT_MAX) if "chat" in sets else ""),
            "hiding": {"gsm8k": "the '#### N' line dropped, calculator annotations <<...>> removed, surrounding "
                                "whitespace stripped",
                       "math500": "every \\boxed{X} (balanced braces) replaced by \\boxed{?}, surrounding whitespace "
                                  "stripped"},
            "models": {k: os.path.basename(v[0]) for k, v in models.items()},
            "rewrite_instruction": instruction,
            "options": {
                "lossy_cmd": "lmz --lossy -c -v -T %d -m %s --rewriter %s --best-of N --seed %d --prompt PROBLEM "
                             "ORIGINAL" % (t, a.coder, a.rewriter, a.seed),
                "decompress_cmd": "lmz -d -c -T %d -m %s --prompt PROBLEM ARCHIVE" % (t, a.coder),
                "lossless_cmd": "lmz -c -T %d -m %s --prompt PROBLEM ORIGINAL (round trip checked)" % (t, a.coder),
                "answer_cmd": "lmz generate -m %s --chat -T %d -n %d PROMPT_FILE (greedy)" % (a.answer_model, t,
                                                                                             ANSWER_TOKENS)},
            "answer_prompt": ANSWER_PROMPT % ("PROBLEM", "TEXT"), "control_prompt": CONTROL_PROMPT % "PROBLEM",
            "judge_prompt": FACTS_PROMPT % ("REQUEST", "ANSWER"),
            "judge": ("endpoint %s, temperature 0, max_tokens %d" % (a.judge_url, FACTS_TOKENS) if a.judge_url else
                      "lmz generate -m %s --chat -T %d -n %d PROMPT_FILE (greedy)" % (a.judge_model, t, FACTS_TOKENS))
            if "chat" in sets else None,
            "normalizer": ("GSM8K: the reply's last number (commas between digits removed; $ and units fall away) "
                           "equals the gold number; MATH-500: the reply's last \\boxed{} content, else its first "
                           "line without a leading 'final answer is', and the gold answer, both normalized (strip "
                           "surrounding $ and \\( \\), a trailing '.', \\text{X} -> X, \\left/\\right, \\! \\, \\; \\:, "
                           "\\dfrac/\\tfrac -> \\frac, all whitespace, ^\\circ, then \\frac{A}{B} -> A/B) are the same string, "
                           "or the same number"),
            "results": results,
            "notes": notes,
        }
        if a.keep_other_sets:
            keep_other_sets(d, jpath)
        md = markdown_section(d)
        print(md)
        if a.no_write:
            log("--no-write: report not written")
        else:
            common.write_section(jpath, mpath, SECTION, d, md)
            log("wrote %s and %s (total %.0fs)" % (mpath, jpath, wall))
    except BenchError as e:
        print("lossy: FAILED: %s" % e, file=sys.stderr)
        print("lossy: no report written", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lossy: interrupted; no report written (rerun with --resume to continue)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    import signal

    def _term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    sys.exit(main())
