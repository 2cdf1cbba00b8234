#!/usr/bin/env python3
"""Question-Asking compression (issue 8): `lmz qa bench` on GSM8K, MATH-500, MBPP and
HumanEval for a small model (SLM) and a large one (LLM), and the report.

Steps:
  1. tools/make_qa_sets.py writes the sets to $LMZ_CACHE/qa/<set>.jsonl (deterministic).
  2. For each pair SLM:LLM and each set: `lmz qa bench --set SET --limit N --out RESULTS`
     with RESULTS = $LMZ_CACHE/qa-bench/<config>/<set>.jsonl, where <config> names the models
     and protocol options. lmz appends one line per problem after each batch and skips ids
     already there, so an interrupted run resumes (run this script again); the lmz binary is
     copied to $LMZ_CACHE/qa-bench/bin/ once per build so a rebuild of ./lmz does not change
     the binary under a running bench; a results folder remembers the build that started it
     and refuses another one (its prompts may differ) unless --new-binary.
  3. Aggregates, per pair and set, over the set's first N problems (file order; --limit):
     n; SLM, LLM, QA and self-refinement accuracy; gap recovered = (QA - SLM) / (LLM - SLM);
     the paper's difficulty labels (easy: SLM and LLM right, gap: SLM wrong and LLM right,
     hard: both wrong, inverse: SLM right and LLM wrong); on the gap problems the fraction QA
     fixes; regressions (SLM right, QA wrong); mean decision bits and coded bits; the LLM's
     mean answer tokens; compression ratio = mean bits / (mean LLM tokens x log2 |V|), |V|
     the LLM's vocabulary (its output dimension); decode checks; seconds per problem.
  Writes the "qa" section of bench/report.md and bench/report.json (other sections kept).

A set whose run has fewer than N results is reported with what it has (marked partial);
--no-run only aggregates what is already there. Standard library only.

usage: qa.py [--sets gsm8k,math500,mbpp,humaneval] [--limit N] [--pairs SLM:LLM[,SLM:LLM]]
             [--variant oneshot|iterative] [--questions K] [--rounds R] [--coded] [--batch B]
             [--threads N] [--lmz PATH] [--no-run] [--render-only] [--no-write] [--note TEXT]
       (make bench passes $QA_BENCH_ARGS)
"""
import argparse, datetime, json, math, os, shutil, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import BenchError  # noqa: E402

ROOT, CACHE = common.ROOT, common.CACHE
SECTION = "qa"
SETS = ["gsm8k", "math500", "mbpp", "humaneval"]
TITLE = {"gsm8k": "GSM8K test", "math500": "MATH-500", "mbpp": "MBPP sanitized test", "humaneval": "HumanEval"}
SET_DIR = os.path.join(CACHE, "qa")
RUN_DIR = os.path.join(CACHE, "qa-bench")
FETCH = common.load_fetch_models()
T0 = time.time()


def log(msg):
    el = time.time() - T0
    print("qa [%d:%02d]: %s" % (el // 60, el % 60, msg), file=sys.stderr, flush=True)


def model_file(name):
    if name in FETCH.MODELS:
        return os.path.join(CACHE, "models", FETCH.MODELS[name][0])
    return name


def config_name(slm, llm, a):
    """The results folder's name: models and protocol options, lmz's defaults spelled out
    (K = 10 one-shot, 5 per round iterative; R = 2)."""
    k = a.questions or (10 if a.variant == "oneshot" else 5)
    s = "%s-%s-%s-k%d" % (slm, llm, a.variant, k)
    if a.variant == "iterative":
        s += "-r%d" % (a.rounds or 2)
    if a.question_model:
        s += "-q%s" % os.path.basename(a.question_model)
    if a.coded:
        s += "-coded"
    return s


def read_lines(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    r = json.loads(line)
                except ValueError:
                    continue   # a line cut short by an interruption; lmz cuts it off on resume
                out[r["id"]] = r
    return out


def set_ids(name, limit):
    with open(os.path.join(SET_DIR, name + ".jsonl"), encoding="utf-8") as f:
        ids = [json.loads(l)["id"] for l in f if l.strip()]
    return ids[:limit]


def aggregate(recs, vocab_bits):
    """The summary of one pair and set over recs (result lines)."""
    n = len(recs)
    if not n:
        return {"n": 0}
    c = lambda who: sum(1 for r in recs if r[who] and r[who]["correct"])  # noqa: E731
    slm, llm, qa = c("slm"), c("llm"), c("qa")
    with_self = [r for r in recs if r.get("self")]
    self_ = sum(1 for r in with_self if r["self"]["correct"])
    labels = {k: sum(1 for r in recs if r["label"] == k) for k in ("easy", "gap", "hard", "inverse")}
    gap = [r for r in recs if r["label"] == "gap"]
    slm_right = [r for r in recs if r["slm"]["correct"]]
    slm_wrong = [r for r in recs if not r["slm"]["correct"]]
    bits = sum(r["qa"]["n_bits"] for r in recs) / n
    coded = sum(r["qa"]["coded_bits"] for r in recs) / n
    ideal = sum(r["qa"]["ideal_bits"] for r in recs) / n
    toks = [r["llm"]["tokens"] for r in recs if r["llm"].get("tokens") is not None]
    mt = sum(toks) / len(toks) if toks else None
    dec = [r["decode_ok"] for r in recs if r.get("decode_ok") is not None]
    secs = [(r["batch"]["seconds_qa"] + r["batch"]["seconds_self"] + r["batch"]["seconds_decode"]) / r["batch"]["size"]
            + r.get("seconds_grade", 0) for r in recs]
    vb = vocab_bits(recs)
    s = {"n": n, "slm_acc": slm / n, "llm_acc": llm / n, "qa_acc": qa / n,
         "self_acc": self_ / len(with_self) if with_self else None, "n_self": len(with_self),
         "slm_right": slm, "llm_right": llm, "qa_right": qa, "self_right": self_,
         "gap_recovered": (qa - slm) / (llm - slm) if llm != slm else None,
         "labels": labels,
         "gap_fixed": sum(1 for r in gap if r["qa"]["correct"]), "gap_n": len(gap),
         "gap_fixed_self": sum(1 for r in gap if r.get("self") and r["self"]["correct"]),
         "slm_wrong_fixed": sum(1 for r in slm_wrong if r["qa"]["correct"]), "slm_wrong_n": len(slm_wrong),
         "regressions": sum(1 for r in slm_right if not r["qa"]["correct"]), "slm_right_n": len(slm_right),
         "regressions_self": sum(1 for r in slm_right if r.get("self") and not r["self"]["correct"]),
         "mean_bits": bits, "mean_coded_bits": coded, "mean_ideal_bits": ideal,
         "mean_llm_tokens": mt, "log2_vocab": vb,
         "llm_at_token_limit": sum(1 for r in recs if r["llm"].get("tokens") is not None and
                                   r["llm"]["tokens"] >= llm_token_limit(r["config"])),
         "ratio": bits / (mt * vb) if mt and vb else None,
         "ratio_coded": coded / (mt * vb) if mt and vb else None,
         "decode_ok": sum(1 for d in dec if d), "decode_checked": len(dec),
         "seconds_per_problem": sum(secs) / n,
         "threads": sorted(set(r["batch"]["threads"] for r in recs)),
         "batch_sizes": sorted(set(r["batch"]["size"] for r in recs)),
         "config": sorted(set(r["config"] for r in recs))}
    return s


def llm_token_limit(config):
    """The LLM's token limit for its own solution in a result line's configuration (lmz's
    default, 512, when the run did not set --llm-tokens)."""
    for part in config.split():
        if part.startswith("llm_tokens="):
            v = part.split("=", 1)[1]
            return int(v) if v.isdigit() else 512
    return 512


def vocab_bits(recs):
    v = [r["llm_vocab"] for r in recs if r.get("llm_vocab")]
    return math.log2(v[0]) if v else None


def pct(x):
    return "—" if x is None else "%.1f%%" % (100 * x)


def markdown_section(d):
    out = ["## Question-Asking compression (`lmz qa bench`)", "",
           "A small model (SLM) answers, asks yes/no questions about its answer, a large model (LLM) answers "
           "them, and the SLM refines; only the answer bits travel (issue 8; docs/qa.md). Baselines: the SLM "
           "alone (its first answer), the LLM alone (its own solution, which the oracle also sees), and "
           "self-refinement (the same protocol with the SLM answering its own questions: no LLM). Gap "
           "recovered = (QA − SLM) / (LLM − SLM). Ratio = mean bits / (mean LLM answer tokens × log2 |V|), "
           "|V| the LLM's vocabulary.", ""]
    for pair in d["pairs"]:
        out += ["### %s → %s (%s)" % (pair["slm_file"], pair["llm_file"], pair["config"]), "",
                "| benchmark | n | SLM | LLM | QA | self-refine | gap recovered | gap fixed | regressions | "
                "bits | coded bits | LLM tokens | ratio | decode | s/problem |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name in d["sets"]:
            s = pair["results"].get(name)
            if not s or not s["n"]:
                out.append("| %s | 0 | | | | | | | | | | | | | |" % TITLE[name])
                continue
            out.append("| %s%s | %d | %s | %s | %s | %s | %s | %d/%d | %d/%d | %.1f | %.2f | %s | %s | %d/%d | %.0f |" % (
                TITLE[name], " (partial)" if s["n"] < d["limit"] else "", s["n"], pct(s["slm_acc"]), pct(s["llm_acc"]),
                pct(s["qa_acc"]), pct(s["self_acc"]), pct(s["gap_recovered"]), s["gap_fixed"], s["gap_n"],
                s["regressions"], s["slm_right_n"], s["mean_bits"], s["mean_coded_bits"],
                "%.0f" % s["mean_llm_tokens"] if s["mean_llm_tokens"] else "—",
                "%.5f" % s["ratio"] if s["ratio"] else "—", s["decode_ok"], s["decode_checked"],
                s["seconds_per_problem"]))
        cut = ["%s %d/%d" % (TITLE[n], pair["results"][n]["llm_at_token_limit"], pair["results"][n]["n"])
               for n in d["sets"] if pair["results"].get(n) and pair["results"][n]["n"]]
        out += ["", "LLM answers that reached its token limit (cut off, and graded as they stand): " + "; ".join(cut)]
        out += ["", "Labels (easy / gap / hard / inverse): " + "; ".join(
            "%s %s" % (TITLE[n], " / ".join(str(pair["results"][n]["labels"][k]) for k in ("easy", "gap", "hard", "inverse")))
            for n in d["sets"] if pair["results"].get(n) and pair["results"][n]["n"]), ""]
    out += ["Method:", "",
            "- problems: the first N of each set in file order (N = %d; `tools/make_qa_sets.py`: GSM8K test, "
            "MATH-500, MBPP sanitized test split task ids 11–510 with the first assert shown, HumanEval)" % d["limit"],
            "- grading (src/qa/grade.c): math — the last \\boxed{}, else `#### X`, else \"answer is X\", else the last "
            "number, normalized and compared as numbers or normalized LaTeX; code — the answer's fenced block, "
            "HumanEval's prompt before it, the tests after it, run by python3 in a sandbox (own namespaces, "
            "unprivileged uid, rlimits, %g s wall clock); pass = exit 0" % d.get("code_timeout", 10),
            "- gap fixed: gap problems (SLM wrong, LLM right) that QA gets right; regressions: problems the SLM got "
            "right that QA gets wrong; decode: problems whose QA bits decoded (`lmz_qa_decode`) to the same answer",
            "- s/problem: encode + self-refinement + decode (batch time / batch size) + grading; lmz -T %s, batches of "
            "%s problems (results do not depend on either)" % (
                ",".join(sorted(set(str(t) for p in d["pairs"] for s in p["results"].values() for t in s.get("threads", [])))),
                ",".join(sorted(set(str(b) for p in d["pairs"] for s in p["results"].values()
                                    for b in s.get("batch_sizes", [])), key=int))),
            "- lmz qa bench configuration (every line records it): %s" % "; ".join(sorted(set(
                c for p in d["pairs"] for s in p["results"].values() for c in s.get("config", [])))),
            "- command: `%s`" % d["command"],
            "- date: %s; CPU: %s, %d logical CPUs (shared with other work); lmz %s" % (
                d["date"], d["cpu"]["model"], d["cpu"]["cpus"], d["lmz_commit"]),
            "- per-problem lines (answers, questions, bits, grades): `$LMZ_CACHE/qa-bench/<config>/<set>.jsonl`"]
    for n in d.get("notes", []):
        out.append("- note: %s" % n)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description="lmz qa bench on GSM8K, MATH-500, MBPP, HumanEval")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--limit", type=int, default=100, help="problems per set (default 100): the first N")
    ap.add_argument("--pairs", default="smollm2:qwen25coder", help="SLM:LLM[,SLM:LLM] (fetched names or files)")
    ap.add_argument("--question-model", help="lmz qa bench --question-model (default: the SLM)")
    ap.add_argument("--variant", default="oneshot", choices=["oneshot", "iterative"])
    ap.add_argument("--questions", type=int, default=0, help="0: lmz's default")
    ap.add_argument("--rounds", type=int, default=0, help="0: lmz's default")
    ap.add_argument("--coded", action="store_true")
    ap.add_argument("--batch", type=int, default=8, help="lmz qa bench --batch (default 8: faster per problem than 4 here)")
    ap.add_argument("--threads", type=int, default=1, help="lmz -T (default 1: leaves a core to other work)")
    ap.add_argument("--code-timeout", type=float, default=10)
    ap.add_argument("--lmz", default=os.path.join(ROOT, "lmz"))
    ap.add_argument("--lmz-commit", help="commit to report for a --lmz built elsewhere")
    ap.add_argument("--no-run", action="store_true", help="aggregate the results already there")
    ap.add_argument("--new-binary", action="store_true",
                    help="resume a results folder with another lmz build than the one that started it")
    ap.add_argument("--render-only", action="store_true", help="rewrite the Markdown section from report.json")
    ap.add_argument("--out-dir", help="where report.md/report.json go (default bench/)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--note", action="append", default=[])
    a = ap.parse_args()
    out_dir = os.path.abspath(a.out_dir) if a.out_dir else os.path.join(ROOT, "bench")
    jpath, mpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")
    try:
        if a.render_only:
            with open(jpath) as f:
                d = json.load(f)[SECTION]
            common.atomic_write(mpath, common.merged_md(mpath, SECTION, markdown_section(d)))
            log("rewrote the %s section of %s" % (SECTION, mpath))
            return 0
        sets = [s for s in a.sets.split(",") if s]
        if any(s not in SETS for s in sets):
            ap.error("--sets takes %s" % ", ".join(SETS))
        pairs = [p.split(":") for p in a.pairs.split(",") if p]
        if any(len(p) != 2 for p in pairs):
            ap.error("--pairs takes SLM:LLM[,SLM:LLM]")
        common.run([sys.executable, "tools/make_qa_sets.py", "-q", "--sets", ",".join(sets)], 600, "make_qa_sets")
        lmz = a.lmz
        if not a.no_run:
            if not os.access(a.lmz, os.X_OK):
                raise BenchError("%s not found; run `make` first" % a.lmz)
            sha = common.file_sha256(a.lmz)
            os.makedirs(os.path.join(RUN_DIR, "bin"), exist_ok=True)
            lmz = os.path.join(RUN_DIR, "bin", "lmz-" + sha[:16])
            if not os.path.exists(lmz):
                shutil.copy2(a.lmz, lmz + ".tmp")
                os.replace(lmz + ".tmp", lmz)
        cpu = common.cpu_info()
        pair_out = []
        opts = ["--variant", a.variant, "-T", str(a.threads), "--batch", str(a.batch),
                "--code-timeout", "%g" % a.code_timeout]
        if a.questions:
            opts += ["--questions", str(a.questions)]
        if a.rounds:
            opts += ["--rounds", str(a.rounds)]
        if a.coded:
            opts.append("--coded")
        if a.question_model:
            opts += ["--question-model", a.question_model]
        for slm, llm in pairs:
            cfg = config_name(slm, llm, a)
            os.makedirs(os.path.join(RUN_DIR, cfg), exist_ok=True)
            if not a.no_run:
                # one lmz build per results folder: a rebuilt lmz may ask other questions
                # (prompts are part of the protocol), and its lines must not join these
                stamp = os.path.join(RUN_DIR, cfg, "lmz-binary")
                mine = os.path.basename(lmz)
                if os.path.exists(stamp):
                    with open(stamp) as f:
                        first = f.read().strip()
                    if first != mine and not a.new_binary:
                        raise BenchError("%s holds results of %s, not of this lmz (%s): resume with --lmz %s, or pass "
                                         "--new-binary if the protocol is unchanged" % (
                                             os.path.join(RUN_DIR, cfg), first, mine, os.path.join(RUN_DIR, "bin", first)))
                else:
                    common.atomic_write(stamp, mine + "\n")
            res = {}
            for s in sets:
                out = os.path.join(RUN_DIR, cfg, s + ".jsonl")
                if not a.no_run:
                    cmd = [lmz, "qa", "bench", "--set", os.path.join(SET_DIR, s + ".jsonl"), "--limit", str(a.limit),
                           "-m", slm, "--llm", llm, "--out", out] + opts
                    log("%s: %s" % (cfg, " ".join(cmd)))
                    p = subprocess.run(cmd, cwd=ROOT)
                    if p.returncode != 0:
                        raise BenchError("lmz qa bench failed (exit %d) on %s; rerun to resume" % (p.returncode, s))
                lines = read_lines(out)
                ids = set_ids(s, a.limit)
                recs = [lines[i] for i in ids if i in lines]
                res[s] = aggregate(recs, vocab_bits)
                log("%s %s: n %d" % (cfg, s, res[s]["n"]))
            pair_out.append({"slm": slm, "llm": llm, "slm_file": os.path.basename(model_file(slm)),
                             "llm_file": os.path.basename(model_file(llm)), "config": cfg, "results": res})
        d = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "cpu": cpu, "lmz_commit": a.lmz_commit or common.lmz_git(), "sets": sets, "limit": a.limit,
             "threads": a.threads, "batch": a.batch, "code_timeout": a.code_timeout,
             "command": "python3 bench/qa.py --sets %s --limit %d --pairs %s --variant %s%s%s%s --threads %d --batch %d" % (
                 ",".join(sets), a.limit, a.pairs, a.variant, " --questions %d" % a.questions if a.questions else "",
                 " --rounds %d" % a.rounds if a.rounds else "", " --coded" if a.coded else "", a.threads, a.batch),
             "pairs": pair_out, "notes": a.note}
        md = markdown_section(d)
        print(md)
        if not a.no_write:
            common.write_section(jpath, mpath, SECTION, d, md)
            log("wrote %s and %s" % (mpath, jpath))
    except BenchError as e:
        print("qa: FAILED: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qa: interrupted; the results so far are kept (run again to resume)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
