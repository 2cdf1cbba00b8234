#!/usr/bin/env python3
"""make_qa_sets.py — the benchmark sets of `lmz qa bench` (issue 8), in one common JSONL form.

Reads ../shared/data/qa (or $LMZ_DATA/qa) and writes $LMZ_CACHE/qa/<set>.jsonl (default
~/.cache/lmz/qa/), one problem a line, keys in this order:

  {"id", "task": "math"|"code", "problem", "gold", "tests", "entry_point", "prefix"}

  gsm8k      gsm8k_test.jsonl (1,319): problem = `question`; gold = the number after "####"
             (thousands commas removed); tests/entry_point/prefix empty.
  math500    math500_test.jsonl (500): problem = `problem`; gold = `answer` (else the last
             \\boxed{} of `solution`); id from `unique_id`.
  mbpp       sanitized-mbpp.json, the test split the reference paper uses (task_id 11..510,
             257 problems; the file also holds the prompt 1..10, validation 511..600 and train
             601..974 problems). problem = the task text plus its first assert as the example
             that shows the function's name and signature, as MBPP evaluations do; tests =
             test_imports + every assert of test_list; entry_point = the function the asserts
             call; gold = the reference code (a passing solution, which the grader's tests use).
  humaneval  HumanEval.jsonl.gz (164): problem = an instruction plus the `prompt` (signature
             and docstring) in a fenced block; prefix = `prompt` (the grader puts it before an
             answer, so an answer that is only the body, or one without the prompt's imports and
             helpers, runs as HumanEval's own evaluation runs it); tests = `test` +
             "check(<entry_point>)"; gold = prompt + canonical_solution.

The output depends only on the input files: reruns are byte-identical (UTF-8, sorted
nothing, '\\n' line ends, ensure_ascii JSON). The C side (src/qa/grade.c) reads these files
and needs no zlib. Standard library only.

usage: make_qa_sets.py [--out DIR] [--data DIR] [--sets gsm8k,math500,mbpp,humaneval]
"""
import argparse, gzip, json, os, re, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("LMZ_DATA") or os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
CACHE = os.environ.get("LMZ_CACHE") or os.path.expanduser("~/.cache/lmz")
SETS = ["gsm8k", "math500", "mbpp", "humaneval"]

MBPP_TEST_IDS = range(11, 511)   # the original MBPP paper's test split, task ids 11..510
HUMANEVAL_INSTRUCTION = "Complete the following Python function.\n\n```python\n%s```"
MBPP_EXAMPLE = "%s\nYour code should pass this test:\n%s"


def rec(id_, task, problem, gold, tests="", entry_point="", prefix=""):
    return {"id": id_, "task": task, "problem": problem, "gold": gold, "tests": tests,
            "entry_point": entry_point, "prefix": prefix}


def boxed_spans(s):
    """[(start, end, content)] of every \\boxed{...} in s, braces balanced (a \\boxed without a
    closing brace is left alone). bench/lossy.py uses it too."""
    out, i = [], 0
    while True:
        i = s.find("\\boxed{", i)
        if i < 0:
            return out
        j, depth = i + len("\\boxed{"), 1
        while j < len(s) and depth:
            if s[j] == "\\" and j + 1 < len(s):
                j += 2
                continue
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            j += 1
        if depth:
            return out
        out.append((i, j, s[i + len("\\boxed{"):j - 1]))
        i = j


def last_boxed(s):
    """The content of the last \\boxed{...} of s (braces balanced), or None."""
    spans = boxed_spans(s)
    return spans[-1][2] if spans else None


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f.read().split("\n") if l.strip()]


def gsm8k(data):
    out = []
    for i, r in enumerate(read_jsonl(os.path.join(data, "qa", "gsm8k_test.jsonl"))):
        if "####" not in r["answer"]:
            raise SystemExit("gsm8k record %d has no '####' line" % i)
        gold = r["answer"].rsplit("####", 1)[1].strip()
        gold = re.sub(r"(?<=\d),(?=\d{3}(?!\d))", "", gold)
        out.append(rec("gsm8k/%04d" % i, "math", r["question"], gold))
    return out


def math500(data):
    out = []
    for i, r in enumerate(read_jsonl(os.path.join(data, "qa", "math500_test.jsonl"))):
        gold = r.get("answer")
        if not gold:
            gold = last_boxed(r["solution"])
        if not gold:
            raise SystemExit("math500 record %d has neither an answer nor a \\boxed{}" % i)
        uid = r.get("unique_id") or "%04d" % i
        uid = uid[len("test/"):] if uid.startswith("test/") else uid
        uid = uid[:-len(".json")] if uid.endswith(".json") else uid
        out.append(rec("math500/" + uid, "math", r["problem"], gold))
    return out


def called_function(asserts, code):
    """The function the asserts call: the first name defined by `def` in the reference code
    that the first assert calls; else the first call in the first assert."""
    defs = re.findall(r"^def\s+([A-Za-z_]\w*)\s*\(", code, flags=re.M)
    first = asserts[0]
    for d in defs:
        if re.search(r"\b%s\s*\(" % re.escape(d), first):
            return d
    m = re.search(r"assert\s+(?:\w+\s*\(\s*)?([A-Za-z_]\w*)\s*\(", first)
    if m and m.group(1) not in ("set", "math", "abs", "round", "sorted", "list", "tuple", "str", "int", "float"):
        return m.group(1)
    return defs[0] if defs else ""


def mbpp(data):
    with open(os.path.join(data, "qa", "sanitized-mbpp.json"), encoding="utf-8") as f:
        recs = json.load(f)
    out = []
    for r in sorted(recs, key=lambda r: r["task_id"]):
        if r["task_id"] not in MBPP_TEST_IDS:
            continue
        asserts = [a.strip() for a in r["test_list"]]
        if not asserts:
            raise SystemExit("mbpp task %d has no asserts" % r["task_id"])
        tests = "".join(l + "\n" for l in r.get("test_imports", [])) + "".join(a + "\n" for a in asserts)
        problem = MBPP_EXAMPLE % (r["prompt"].strip(), asserts[0])
        out.append(rec("mbpp/%d" % r["task_id"], "code", problem, r["code"], tests,
                       called_function(asserts, r["code"])))
    if len(out) != 257:
        raise SystemExit("mbpp: expected the 257 problems of the sanitized test split, got %d" % len(out))
    return out


def humaneval(data):
    with gzip.open(os.path.join(data, "qa", "HumanEval.jsonl.gz"), "rt", encoding="utf-8") as f:
        recs = [json.loads(l) for l in f.read().split("\n") if l.strip()]
    out = []
    for r in recs:
        tests = r["test"].rstrip("\n") + "\n\n\ncheck(%s)\n" % r["entry_point"]
        out.append(rec(r["task_id"], "code", HUMANEVAL_INSTRUCTION % r["prompt"], r["prompt"] + r["canonical_solution"],
                       tests, r["entry_point"], r["prompt"]))
    return out


MAKERS = {"gsm8k": gsm8k, "math500": math500, "mbpp": mbpp, "humaneval": humaneval}


def main():
    ap = argparse.ArgumentParser(description="write the lmz qa bench sets (common JSONL)")
    ap.add_argument("--data", default=DATA, help="the shared data folder (default %s)" % DATA)
    ap.add_argument("--out", default=os.path.join(CACHE, "qa"), help="output folder (default $LMZ_CACHE/qa)")
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated, of %s" % ", ".join(SETS))
    ap.add_argument("-q", "--quiet", action="store_true")
    a = ap.parse_args()
    sets = [s for s in a.sets.split(",") if s]
    bad = [s for s in sets if s not in MAKERS]
    if bad:
        ap.error("unknown set(s) %s; known: %s" % (", ".join(bad), ", ".join(SETS)))
    os.makedirs(a.out, exist_ok=True)
    for s in sets:
        items = MAKERS[s](a.data)
        ids = [r["id"] for r in items]
        if len(set(ids)) != len(ids):
            raise SystemExit("%s: duplicate ids" % s)
        text = "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in items)
        path = os.path.join(a.out, s + ".jsonl")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
        if not a.quiet:
            print("%s: %d problems -> %s" % (s, len(items), path), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
