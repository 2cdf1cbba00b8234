#!/usr/bin/env python3
"""Regenerate tests/fixtures/tokens_smollm2.tsv: llama.cpp's token ids for lmz's parity test.

Runs tools/ref/ref_tokenize.cpp (built here against the static libraries of the reference
llama.cpp that tools/ref/build_llamacpp.sh builds) with the default model's vocabulary on

  * every file under the shared data folder's llm-text/, corpora/ and qa/ (binary files
    included: they exercise invalid UTF-8), tokenized whole, parse_special off — the mode
    lmz uses to compress plain text;
  * the edge cases below (whitespace, CRLF, emoji, CJK, marks, invalid UTF-8, control
    characters, digits, contractions, NUL bytes, chat markup with parse_special off and
    on), with their full id lists;
  * the same edge cases and a subset of the files with the vocabulary relabelled to the
    pre-tokenizers "gpt-2", "qwen2" and "llama-bpe" (a metadata-only copy of the GGUF with
    tokenizer.ggml.pre replaced), to check those paths before their models arrive;
  * the same inputs through llama.cpp's word splitter alone (pre "split:<name>"), since
    some boundaries (digit groups, for one) leave no trace in this vocabulary's tokens.

Fixture columns (tab-separated; '#' lines are comments):
  pre  add_special  parse_special  name  input  n_bytes  n_ids  sha256_ids  ids
  input: "file:<path under the data folder>" or "hex:<the bytes in hex>"
  ids: token ids, or for "split:" rows the words' lengths in bytes; space-separated,
  edge cases only. sha256_ids: of those values as little-endian int32
  n_ids "error": llama.cpp threw on this input (the reason is in ids)

usage: ref_tokens.py [--data DIR] [--model GGUF]
"""
import argparse
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.environ.get("LMZ_CACHE", os.path.expanduser("~/.cache/lmz"))
REF = os.environ.get("LMZ_REF", os.path.join(CACHE, "ref"))
LLAMA = os.path.join(REF, "llama.cpp")
TOOL_SRC = os.path.join(ROOT, "tools", "ref", "ref_tokenize.cpp")
TOOL_BIN = os.path.join(REF, "ref_tokenize")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokens_smollm2.tsv")

FILE_DIRS = ["llm-text", "corpora", "qa"]
# Files the relabelled pre-tokenizers are also checked on: prose, HTML, C, a spreadsheet
# (binary), multilingual prompts, chat answers.
VARIANT_FILES = [
    "corpora/cantrbry/alice29.txt", "corpora/cantrbry/cp.html", "corpora/cantrbry/fields.c",
    "corpora/cantrbry/kennedy.xls", "corpora/calgary/obj1", "llm-text/arena-hard/question.jsonl",
    "llm-text/mt_bench/question.jsonl", "llm-text/alpaca_eval/claude-3-opus-20240229.json",
]
VARIANT_PRES = ["gpt-2", "qwen2", "llama-bpe"]

# llama.cpp's pre-tokenizer regexes (gguf-spec.md §5.4); its custom matchers are chosen
# by exact string comparison, so these must match llama-vocab.cpp character for character.
R_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
R_QWEN2 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
R_LLAMA3 = R_QWEN2.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
SPLITTERS = {"gpt2": [R_GPT2], "smollm": [r"\p{N}", R_GPT2], "qwen2": [R_QWEN2], "llama3": [R_LLAMA3]}

CHAT = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi, what's 2+2?<|im_end|>\n<|im_start|>assistant\n"

# (name, bytes, add_special, parse_special)
EDGE_CASES = [
    ("empty", b"", 0, 0),
    ("hello", b"Hello world", 0, 0),
    ("hello_add_special", b"Hello world", 1, 0),
    ("space", b" ", 0, 0),
    ("two_spaces", b"  ", 0, 0),
    ("space_run", b" " * 17, 0, 0),
    ("long_space_run", b" " * 1000, 0, 0),
    ("leading_spaces", b"   word", 0, 0),
    ("trailing_spaces", b"word   ", 0, 0),
    ("inner_spaces", b"a  b   c    d", 0, 0),
    ("tab", b"\t", 0, 0),
    ("tabs", b"a\tb\t\tc\t\t\t", 0, 0),
    ("mixed_whitespace", b" \t \t x \t\n\t y  \n", 0, 0),
    ("newlines", b"\n\n\n", 0, 0),
    ("paragraphs", b"one\n\ntwo\n\n\nthree\n", 0, 0),
    ("space_newline_space", b"a \n b", 0, 0),
    ("newline_space_word", b"\n word\n  word", 0, 0),
    ("crlf", b"line1\r\nline2\r\n", 0, 0),
    ("cr_runs", b"\r\r\n\n x\r", 0, 0),
    ("crlf_spaces", b"a \r\n b  \r\n\r\n  c", 0, 0),
    ("vt_ff", b"a\x0b\x0cb", 0, 0),
    ("emoji", "😀 I ❤️ you 👍🏽!".encode(), 0, 0),
    ("emoji_zwj", "family: 👨‍👩‍👧‍👦 and 🏳️‍🌈".encode(), 0, 0),
    ("emoji_flags", "🇺🇸🇫🇷🇯🇵".encode(), 0, 0),
    ("emoji_run", ("😀" * 50).encode(), 0, 0),
    ("cjk", "你好，世界！こんにちは世界。안녕하세요".encode(), 0, 0),
    ("cjk_space", "\u3000日本 語".encode(), 0, 0),
    ("combining", "cafe\u0301 Z\u0351\u0364a\u0303l\u0300g\u0301o e\u0301\u0301".encode(), 0, 0),
    ("devanagari", "नमस्ते दुनिया".encode(), 0, 0),
    ("arabic", "مرحبا بالعالم ١٢٣".encode(), 0, 0),
    ("hebrew_niqqud", "שָׁלוֹם".encode(), 0, 0),
    ("greek_cyrillic", "ΑΒΓ αβγ Привет мир Straße ﬁne".encode(), 0, 0),
    ("invalid_lone_continuation", b"\x80", 0, 0),
    ("invalid_in_text", b"abc\x80def \xbf\xbf x", 0, 0),
    ("invalid_truncated_2", b"\xc3", 0, 0),
    ("invalid_truncated_2_then_ascii", b"\xc3(ok", 0, 0),
    ("invalid_truncated_3", b"\xe2\x82", 0, 0),
    ("invalid_truncated_3_then_ascii", b"\xe2\x82(x", 0, 0),
    ("invalid_truncated_4", b"\xf0\x9f\x98 end", 0, 0),
    ("overlong_nul", b"a\xc0\x80b", 0, 0),
    ("overlong_slash", b"\xe0\x80\xaf \xc1\xbf", 0, 0),
    ("surrogate", b"x\xed\xa0\x80y", 0, 0),
    ("byte_ff", b"\xff", 0, 0),
    ("bytes_fe_ff", b"\xfe\xff a\xffb", 0, 0),
    ("five_byte_form", b"\xf8\x88\x80\x80\x80", 0, 0),
    ("above_max_codepoint", b"\xf4\x90\x80\x80", 0, 0),
    ("above_max_codepoint_f7", b"ok \xf7\xbf\xbf\xbf", 0, 0),
    ("control_chars", b"\x01\x02\x03 \x07bell\x1b[0m\x7f", 0, 0),
    ("info_separators", b"a\x1c\x1d\x1e\x1fb", 0, 0),
    ("unicode_spaces", "a\u0085b\u00a0c\u2028d\u2029e\u3000f\u200bg\ufeffh \u00a0word".encode(), 0, 0),
    ("nul", b"\x00", 0, 0),
    ("nuls", b"\x00\x00\x00", 0, 0),
    ("nul_in_text", b"text\x00with\x00 nuls\x00", 0, 0),
    ("digit", b"0", 0, 0),
    ("digit_run", b"12345678901234567890", 0, 0),
    ("numbers", b"3.14159 1,000,000 -42 +7 1e-9 0x1F", 0, 0),
    ("space_digits", b" 42  7", 0, 0),
    ("letters_digits", b"abc123def 4x4", 0, 0),
    ("other_numbers", "x²³ ½ Ⅻ ١٢٣ ４２".encode(), 0, 0),
    ("contractions_lower", b"don't it's we're they've I'll I'd I'm", 0, 0),
    ("contractions_upper", b"DON'T IT'S WE'RE THEY'VE I'LL I'D I'M", 0, 0),
    ("contractions_mixed", b"It'S We'Re they'Ve I'lL", 0, 0),
    ("apostrophes", b"' '' 's 'x rock 'n' roll y'all 'll've", 0, 0),
    ("curly_apostrophe", "don’t it’s".encode(), 0, 0),
    ("punctuation", "...!!!??? --- « quoted » “smart” (a) [b] {c}".encode(), 0, 0),
    ("url", b"https://example.com/path?q=1&r=2#frag", 0, 0),
    ("code", b"def f(x):\n    return x**2  # square\n\n\tpass\n", 0, 0),
    ("json", b'{"a": [1, 2.5, "x\\ny"], "b": null}', 0, 0),
    ("repeat_a", b"a" * 1000, 0, 0),
    ("repeat_eq", b"=" * 300, 0, 0),
    ("chat_plain", CHAT.encode(), 0, 0),
    ("chat_special", CHAT.encode(), 0, 1),
    ("special_alone_plain", b"<|endoftext|>", 0, 0),
    ("special_alone", b"<|endoftext|>", 0, 1),
    ("special_glued", b"abc<|im_end|>def<|im_start|><|im_start|>", 0, 1),
    ("special_partial", b"<|im_start <|im_end| <|im_end|", 0, 1),
    ("special_add_special", b"<|im_start|>user\nhi<|im_end|>", 1, 1),
]


def sha256_ids(ids):
    return hashlib.sha256(struct.pack("<%di" % len(ids), *ids)).hexdigest()


def build_tool():
    if os.path.exists(TOOL_BIN) and os.path.getmtime(TOOL_BIN) >= os.path.getmtime(TOOL_SRC):
        return
    libs = ["build/src/libllama.a", "build/ggml/src/libggml.a", "build/ggml/src/libggml-cpu.a",
            "build/ggml/src/libggml-base.a"]
    for lib in libs:
        if not os.path.exists(os.path.join(LLAMA, lib)):
            sys.exit("ref_tokens: %s is missing; run tools/ref/build_llamacpp.sh first" % os.path.join(LLAMA, lib))
    cmd = ["g++", "-O2", "-std=c++17", "-I", os.path.join(LLAMA, "include"), "-I",
           os.path.join(LLAMA, "ggml", "include"), TOOL_SRC, "-o", TOOL_BIN]
    cmd += [os.path.join(LLAMA, lib) for lib in libs] + ["-fopenmp", "-lpthread", "-ldl"]
    print("building %s" % TOOL_BIN, file=sys.stderr)
    subprocess.run(cmd, check=True)


def gguf_with_pre(src, dst, pre):
    """Copy SRC's metadata (no tensors) to DST with tokenizer.ggml.pre = PRE."""
    data = open(src, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", data, 0)
    assert magic == b"GGUF" and version >= 2, src
    fixed = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip_value(vtype, pos):
        if vtype == 8:
            return pos + 8 + struct.unpack_from("<Q", data, pos)[0]
        if vtype == 9:
            etype, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if etype in fixed:
                return pos + fixed[etype] * count
            for _ in range(count):
                pos = skip_value(etype, pos)
            return pos
        return pos + fixed[vtype]

    out = [struct.pack("<4sIQQ", b"GGUF", version, 0, n_kv)]
    pos, found = 24, False
    for _ in range(n_kv):
        start = pos
        key_len = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8:pos + 8 + key_len]
        pos += 8 + key_len
        vtype = struct.unpack_from("<I", data, pos)[0]
        end = skip_value(vtype, pos + 4)
        if key == b"tokenizer.ggml.pre":
            value = pre.encode()
            out.append(data[start:pos] + struct.pack("<IQ", 8, len(value)) + value)
            found = True
        else:
            out.append(data[start:end])
        pos = end
    assert found, "no tokenizer.ggml.pre in %s" % src
    blob = b"".join(out)
    blob += b"\0" * (-len(blob) % 32)
    open(dst, "wb").write(blob)


def check_regexes():
    source = open(os.path.join(LLAMA, "src", "llama-vocab.cpp"), encoding="utf-8").read()
    for regexes in SPLITTERS.values():
        for regex in regexes:
            quoted = '"%s"' % regex.replace("\\", "\\\\")
            if quoted not in source:
                sys.exit("ref_tokens: regex %s is not in llama-vocab.cpp" % quoted)


def run_ref(args, paths):
    proc = subprocess.run([TOOL_BIN] + args + paths, check=True, stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.splitlines()
    assert len(lines) == len(paths), (len(lines), len(paths))
    results = []
    for line in lines:
        if line.startswith("ERR "):
            results.append(line[4:])
        else:
            fields = line.split()
            ids = [int(x) for x in fields[2:]]
            assert fields[0] == "OK" and int(fields[1]) == len(ids), line[:80]
            results.append(ids)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("LMZ_DATA", os.path.join(ROOT, "..", "shared", "data")))
    ap.add_argument("--model", default=os.path.join(CACHE, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = ap.parse_args()
    build_tool()
    check_regexes()
    files = []
    for d in FILE_DIRS:
        for dirpath, _, names in os.walk(os.path.join(args.data, d)):
            files += [os.path.relpath(os.path.join(dirpath, n), args.data) for n in names]
    files.sort()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        case_paths = []
        for i, (name, data, _, _) in enumerate(EDGE_CASES):
            path = os.path.join(tmp, "case%03d" % i)
            open(path, "wb").write(data)
            case_paths.append(path)

        def run_cases(pre, model):
            for flags in sorted({(a, p) for _, _, a, p in EDGE_CASES}):
                picked = [i for i, c in enumerate(EDGE_CASES) if (c[2], c[3]) == flags]
                results = run_ref(["tokens", model, str(flags[0]), str(flags[1])], [case_paths[i] for i in picked])
                for i, res in zip(picked, results):
                    name, data = EDGE_CASES[i][0], EDGE_CASES[i][1]
                    rows.append((pre, flags[0], flags[1], name, "hex:" + data.hex(), len(data), res, True))

        def run_files(pre, model, names):
            results = run_ref(["tokens", model, "0", "0"], [os.path.join(args.data, n) for n in names])
            for n, res in zip(names, results):
                size = os.path.getsize(os.path.join(args.data, n))
                rows.append((pre, 0, 0, n, "file:" + n, size, res, False))

        run_cases("smollm", args.model)
        run_files("smollm", args.model, files)
        for pre in VARIANT_PRES:
            variant = os.path.join(tmp, "vocab-%s.gguf" % pre)
            gguf_with_pre(args.model, variant, pre)
            run_cases(pre, variant)
            run_files(pre, variant, VARIANT_FILES)
        for name, regexes in SPLITTERS.items():
            results = run_ref(["split", "\n".join(regexes)], case_paths)
            for (case, data, _, _), res in zip(EDGE_CASES, results):
                rows.append(("split:" + name, 0, 0, case, "hex:" + data.hex(), len(data), res, True))
            paths = [os.path.join(args.data, n) for n in VARIANT_FILES]
            for n, res in zip(VARIANT_FILES, run_ref(["split", "\n".join(regexes)], paths)):
                size = os.path.getsize(os.path.join(args.data, n))
                rows.append(("split:" + name, 0, 0, n, "file:" + n, size, res, False))

    with open(OUT, "w", encoding="utf-8") as f:
        sdists = sorted(n for n in os.listdir(REF) if n.startswith("llama_cpp_python-"))
        f.write("# Generated by tools/ref/ref_tokens.py from the llama.cpp in %s with %s; do not edit.\n"
                % (sdists[-1] if sdists else "llama.cpp", os.path.basename(args.model)))
        f.write("# pre\tadd_special\tparse_special\tname\tinput\tn_bytes\tn_ids\tsha256_ids\tids\n")
        for pre, add, parse, name, inp, size, res, full in rows:
            if isinstance(res, str):
                f.write("%s\t%d\t%d\t%s\t%s\t%d\terror\t-\t%s\n" % (pre, add, parse, name, inp, size, res))
            else:
                ids = " ".join(map(str, res)) if full else ""
                f.write("%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n"
                        % (pre, add, parse, name, inp, size, len(res), sha256_ids(res), ids))
    print("wrote %s (%d rows)" % (OUT, len(rows)), file=sys.stderr)


if __name__ == "__main__":
    main()
