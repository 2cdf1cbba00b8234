#!/usr/bin/env python3
"""Build the four LoRA domain sets from ../shared/data, each split into train and test BY PROMPT.

A document is one LLM- or human-written answer. Every answer to a given prompt lands on the
same side of the split, decided by the SHA-256 of the prompt's text (1 prompt in 10 goes to
test), so an adapter never sees an answer to a test prompt, not even another model's.

  chat   alpaca_eval: the answers of all 8 models (llm-text/alpaca_eval/*.json)
  arena  arena-hard: GPT-4-0613's and GPT-3.5-Turbo's answers (llm-text/arena-hard)
  math   gsm8k_train solutions (qa/gsm8k_train.jsonl; gsm8k_test is never used)
  code   MBPP sanitized solutions and HumanEval prompt + canonical solution (qa/)

For each domain NAME, writes OUT/NAME/train.txt and OUT/NAME/test.txt (documents joined by
a blank line, in a fixed pseudo-random order so that any prefix is a fair sample), the same
documents one JSON string per line in train.jsonl and test.jsonl, and
OUT/NAME/split.json (counts and the test prompts' hashes). Output is byte-identical on
every run. Default OUT: $LMZ_CACHE/domains (~/.cache/lmz/domains); nothing goes in git.
"""
import argparse, gzip, hashlib, json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
CACHE = os.environ.get("LMZ_CACHE", os.path.expanduser("~/.cache/lmz"))
SEPARATOR = "\n\n"
TEST_ONE_IN = 10


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_test(prompt):
    return int(sha(prompt)[:8], 16) % TEST_ONE_IN == 0


def read_jsonl(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        # split on "\n" only: some strings hold U+2028, which str.splitlines would cut at
        return [json.loads(line) for line in f.read().split("\n") if line.strip()]


def chat():
    folder = os.path.join(DATA, "llm-text", "alpaca_eval")
    pairs = []
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            pairs += [(r["instruction"], r["output"]) for r in json.load(f)]
    return pairs


def arena():
    folder = os.path.join(DATA, "llm-text", "arena-hard")
    prompts = {q["uid"]: q["prompt"] for q in read_jsonl(os.path.join(folder, "question.jsonl"))}
    pairs = []
    for name in ("gpt-4-0613.jsonl", "gpt-3.5-turbo-0125.jsonl"):
        for r in read_jsonl(os.path.join(folder, name)):
            pairs.append((prompts[r["uid"]], r["messages"][1]["content"]["answer"]))
    return pairs


def math():
    return [(r["question"], r["answer"]) for r in read_jsonl(os.path.join(DATA, "qa", "gsm8k_train.jsonl"))]


def code():
    with open(os.path.join(DATA, "qa", "sanitized-mbpp.json"), encoding="utf-8") as f:
        pairs = [(r["prompt"], r["code"]) for r in json.load(f)]
    for r in read_jsonl(os.path.join(DATA, "qa", "HumanEval.jsonl.gz")):
        pairs.append((r["prompt"], r["prompt"] + r["canonical_solution"]))
    return pairs


DOMAINS = {"chat": chat, "arena": arena, "math": math, "code": code}


def build(out_dir, name):
    pairs = [(p, a.strip()) for p, a in DOMAINS[name]() if a.strip()]
    sides = {"train": [], "test": []}
    test_prompts = set()
    for prompt, answer in pairs:
        side = "test" if is_test(prompt) else "train"
        sides[side].append(answer)
        if side == "test":
            test_prompts.add(sha(prompt))
    folder = os.path.join(out_dir, name)
    os.makedirs(folder, exist_ok=True)
    summary = {"domain": name, "split": "1 prompt in %d to test, by sha256(prompt)" % TEST_ONE_IN,
               "test_prompt_sha256": sorted(test_prompts)}
    for side, docs in sides.items():
        docs.sort(key=sha)  # a fixed shuffle: any prefix is a fair sample of the side
        text = SEPARATOR.join(docs) + "\n"
        path = os.path.join(folder, side + ".txt")
        with open(path + ".tmp", "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(path + ".tmp", path)
        with open(os.path.join(folder, side + ".jsonl"), "w", encoding="utf-8") as f:
            f.write("".join(json.dumps(d) + "\n" for d in docs))  # the same documents, countable
        summary[side] = {"documents": len(docs), "bytes": len(text.encode("utf-8"))}
    summary["prompts"] = {"train": len({sha(p) for p, _ in pairs}) - len(test_prompts), "test": len(test_prompts)}
    with open(os.path.join(folder, "split.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(CACHE, "domains"), help="output folder (default: %(default)s)")
    ap.add_argument("domains", nargs="*", default=list(DOMAINS), help="domains to build (default: all)")
    args = ap.parse_args()
    for name in args.domains:
        if name not in DOMAINS:
            sys.exit("make_domains: unknown domain %r (have: %s)" % (name, ", ".join(DOMAINS)))
        s = build(args.out, name)
        print("%-6s prompts %5d train / %4d test; documents %5d / %4d; bytes %8d / %7d" % (
            name, s["prompts"]["train"], s["prompts"]["test"], s["train"]["documents"], s["test"]["documents"],
            s["train"]["bytes"], s["test"]["bytes"]))


if __name__ == "__main__":
    main()
