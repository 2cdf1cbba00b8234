#!/usr/bin/env python3
"""Regenerates tests/fixtures/logits_<model>.bin: llama.cpp's logits on 4 prompts x 256 tokens.

Prompts: four texts from ../shared/data of different kinds (prose, chat answer, math
solution, code), tokenized by lmz (identical to llama.cpp's ids, see the tokenizer parity
tests), prefixed with lmz's start token, cut to 256 ids. llama.cpp (built from the
llama-cpp-python sdist by build_llamacpp.sh) evaluates each prompt as one batch with its
default settings (flash attention auto, F16 KV cache) and, for a noise floor, once more
without flash attention. The fixture keeps, per position, llama.cpp's top-32 logits and
the log-sum-exp of all logits, and from the second run its argmax, its log-sum-exp and its
logits for the same 32 tokens (NaN where a token is not in its top 256), so the test can
measure llama.cpp's own run-to-run deviation and hold lmz to it.

usage: make_logit_fixtures.py [MODEL_NAME]   (default smollm2; needs ./lmz built)
format (little-endian): "LMZLOGF2" u32 n_prompts u32 topk u32 n_vocab; per prompt:
  u32 n, i32 ids[n]; per position: f32 lse, i32 top_ids[topk], f32 top_logits[topk],
  then for the run without flash attention: i32 argmax, f32 lse, f32 logits[topk]
"""
import json, os, struct, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "..", "shared", "data")
CACHE = os.environ.get("LMZ_CACHE", os.path.expanduser("~/.cache/lmz"))
N_TOKENS, TOPK = 256, 32


def prompts():
    alice = open(os.path.join(DATA, "corpora/cantrbry/alice29.txt"), encoding="latin-1").read()[2000:6000]
    chat = next(r["output"] for r in json.load(open(os.path.join(DATA, "llm-text/alpaca_eval/gpt4.json")))
                if len(r["output"]) > 2000)
    gsm = [json.loads(l) for l in open(os.path.join(DATA, "llm-text/gsm8k_gpt3_solutions.jsonl"))][:6]
    math = "\n\n".join(json.dumps(g)[:800] for g in gsm)
    code = "\n\n".join(m["code"] for m in json.load(open(os.path.join(DATA, "qa/sanitized-mbpp.json")))[:8])
    return [("alice29", alice), ("alpaca_gpt4", chat), ("gsm8k_gpt3", math), ("mbpp_code", code)]


def lmz_ids(model, text):
    out = subprocess.run([os.path.join(ROOT, "lmz"), "tokenize", "-m", model, "--ids", "--start"], input=text.encode(),
                         capture_output=True, check=True).stdout.decode()
    return [int(x) for x in out.split()]


def run_ref(tool, model, ids_lines, env_extra, topk=TOPK):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "ref.bin")
        env = dict(os.environ, **env_extra)
        subprocess.run([tool, model, str(topk), out], input=ids_lines.encode(), env=env, check=True,
                       stderr=subprocess.DEVNULL)
        return open(out, "rb").read()


def parse(blob):
    assert blob[:8] == b"LMZLOGIT"
    n_prompts, topk, n_vocab = struct.unpack_from("<3I", blob, 8)
    o, res = 20, []
    for _ in range(n_prompts):
        (n,) = struct.unpack_from("<I", blob, o); o += 4
        ids = struct.unpack_from("<%di" % n, blob, o); o += 4 * n
        rows = []
        for _ in range(n):
            (lse,) = struct.unpack_from("<f", blob, o); o += 4
            top = struct.unpack_from("<%di" % topk, blob, o); o += 4 * topk
            lg = struct.unpack_from("<%df" % topk, blob, o); o += 4 * topk
            rows.append((lse, top, lg))
        res.append((ids, rows))
    return n_vocab, res


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else "smollm2"
    model = subprocess.run([sys.executable, os.path.join(ROOT, "tools/fetch_models.py"), "--print-path", name],
                           capture_output=True, check=True, text=True).stdout.strip()
    llama_dir = subprocess.run([os.path.join(ROOT, "tools/ref/build_llamacpp.sh")], capture_output=True, check=True,
                               text=True).stdout.strip().splitlines()[-1]
    tool = os.path.join(CACHE, "ref", "ref_logits")
    subprocess.run(["g++", "-O2", "-std=c++17", os.path.join(ROOT, "tools/ref/ref_logits.cpp"),
                    "-I", llama_dir + "/include", "-I", llama_dir + "/ggml/include", "-o", tool,
                    llama_dir + "/build/src/libllama.a", llama_dir + "/build/ggml/src/libggml.a",
                    llama_dir + "/build/ggml/src/libggml-cpu.a", llama_dir + "/build/ggml/src/libggml-base.a",
                    "-lpthread", "-lgomp", "-lm"], check=True)
    lines = []
    for label, text in prompts():
        ids = lmz_ids(model, text)
        assert len(ids) >= N_TOKENS, label
        lines.append(" ".join(map(str, ids[:N_TOKENS])))
        print("prompt %-16s %d tokens" % (label, N_TOKENS), file=sys.stderr)
    n_vocab, default = parse(run_ref(tool, model, "\n".join(lines), {}))
    _, no_fa = parse(run_ref(tool, model, "\n".join(lines), {"REF_NO_FLASH_ATTN": "1"}, topk=256))
    out = bytearray(b"LMZLOGF2" + struct.pack("<3I", len(default), TOPK, n_vocab))
    for (ids, rows), (_, rows2) in zip(default, no_fa):
        out += struct.pack("<I", len(ids)) + struct.pack("<%di" % len(ids), *ids)
        for (lse, top, lg), (lse2, top2, lg2) in zip(rows, rows2):
            out += struct.pack("<f", lse) + struct.pack("<%di" % TOPK, *top) + struct.pack("<%df" % TOPK, *lg)
            second = dict(zip(top2, lg2))
            out += struct.pack("<if", top2[0], lse2)
            out += struct.pack("<%df" % TOPK, *[second.get(t, float("nan")) for t in top])
    path = os.path.join(ROOT, "tests/fixtures/logits_%s.bin" % name)
    open(path, "wb").write(out)
    print("wrote %s (%d bytes)" % (path, len(out)), file=sys.stderr)


if __name__ == "__main__":
    main()
