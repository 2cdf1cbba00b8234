#!/usr/bin/env python3
"""Regenerate tests/fixtures/tokens_<model>.tsv: llama.cpp's token ids for lmz's parity tests.

Runs tools/ref/ref_tokenize.cpp (built here against the static libraries of the reference
llama.cpp that tools/ref/build_llamacpp.sh builds) with each model's vocabulary on

  * every file under the shared data folder's llm-text/, corpora/ and qa/ (binary files
    included: they exercise invalid UTF-8), tokenized whole, parse_special off — the mode
    lmz uses to compress plain text;
  * the edge cases below (whitespace, CRLF, emoji, CJK, marks, invalid UTF-8, control
    characters, digits, contractions, NUL bytes, chat markup with parse_special off and
    on, and per model the texts of its special tokens), with their full id lists;
  * relabelled copies of the vocabulary (metadata-only GGUF copies with one key
    replaced) on the same edge cases and a subset of the files, to check paths before
    a model that needs them arrives: for SmolLM2 the pre-tokenizers "gpt-2", "qwen2" and
    "llama-bpe"; for Gemma 3 (SentencePiece) add_space_prefix = true, as Llama 2 has,
    and no tokenizer.ggml.scores (every score 0: each merge is decided by the
    leftmost-pair rule);
  * for SmolLM2, the same inputs through llama.cpp's word splitter alone (variant
    "split:<name>"), since some boundaries (digit groups, for one) leave no trace in
    this vocabulary's tokens.

Fixture columns (tab-separated; '#' lines are comments):
  variant  add_special  parse_special  name  input  n_bytes  n_ids  sha256_ids  ids
  variant: the model's own vocabulary ("smollm", "gemma3"), a relabelled copy
  ("gpt-2", "qwen2", "llama-bpe", "gemma3+space_prefix", "gemma3-scores") or a
  splitter ("split:<name>")
  input: "file:<path under the data folder>" or "hex:<the bytes in hex>"
  ids: token ids, or for "split:" rows the words' lengths in bytes; space-separated,
  edge cases only. sha256_ids: of those values as little-endian int32
  n_ids "error": llama.cpp threw on this input (the reason is in ids)

usage: ref_tokens.py [--data DIR] [MODEL...]   (MODEL: smollm2, gemma3, qwen25coder; default all)
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
MODELS_DIR = os.path.join(CACHE, "models")

FILE_DIRS = ["llm-text", "corpora", "qa"]
# Files the relabelled pre-tokenizers are also checked on: prose, HTML, C, a spreadsheet
# (binary), multilingual prompts, chat answers.
VARIANT_FILES = [
    "corpora/cantrbry/alice29.txt", "corpora/cantrbry/cp.html", "corpora/cantrbry/fields.c",
    "corpora/cantrbry/kennedy.xls", "corpora/calgary/obj1", "llm-text/arena-hard/question.jsonl",
    "llm-text/mt_bench/question.jsonl", "llm-text/alpaca_eval/claude-3-opus-20240229.json",
]

# llama.cpp's pre-tokenizer regexes (gguf-spec.md §5.4); its custom matchers are chosen
# by exact string comparison, so these must match llama-vocab.cpp character for character.
R_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
R_QWEN2 = (r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
           r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
R_LLAMA3 = R_QWEN2.replace(r"|\p{N}|", r"|\p{N}{1,3}|")
SPLITTERS = {"gpt2": [R_GPT2], "smollm": [r"\p{N}", R_GPT2], "qwen2": [R_QWEN2], "llama3": [R_LLAMA3]}

CHAT = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi, what's 2+2?<|im_end|>\n<|im_start|>assistant\n"
GEMMA_CHAT = ("<bos><start_of_turn>user\nYou are helpful.\n\nHi, what's 2+2?<end_of_turn>\n"
              "<start_of_turn>model\n4<end_of_turn>\n<start_of_turn>user\n  Thanks!\t<end_of_turn>\n<start_of_turn>model\n")

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
]

# Chat markup and special-token texts of SmolLM2 (ChatML).
SMOLLM2_CASES = [
    ("chat_plain", CHAT.encode(), 0, 0),
    ("chat_special", CHAT.encode(), 0, 1),
    ("special_alone_plain", b"<|endoftext|>", 0, 0),
    ("special_alone", b"<|endoftext|>", 0, 1),
    ("special_glued", b"abc<|im_end|>def<|im_start|><|im_start|>", 0, 1),
    ("special_partial", b"<|im_start <|im_end| <|im_end|", 0, 1),
    ("special_add_special", b"<|im_start|>user\nhi<|im_end|>", 1, 1),
]

# Gemma 3: its turn markers and other CONTROL tokens (matched only with parse_special),
# its USER_DEFINED tokens (always cut out of the text: runs of newlines, spaces and
# tabs up to 31, HTML tags, image markers; "</s>" is made CONTROL by llama.cpp's EOG
# list), literal "▁" in the input, byte-token texts, invalid UTF-8 whose lead byte
# swallows what follows, and a token with "▁" inside (">▁</").
GEMMA3_CASES = [
    ("gemma_chat_plain", GEMMA_CHAT.encode(), 0, 0),
    ("gemma_chat_special", GEMMA_CHAT.encode(), 0, 1),
    ("gemma_chat_special_add_special", GEMMA_CHAT[5:].encode(), 1, 1),
    ("turn_markers_plain", b"<start_of_turn><end_of_turn>", 0, 0),
    ("turn_markers_special", b"<start_of_turn><end_of_turn>", 0, 1),
    ("turn_markers_glued", b"abc<end_of_turn>def<start_of_turn><start_of_turn>", 0, 1),
    ("turn_markers_partial", b"<start_of_turn <end_of_turn> <end_of_turn <start_of_turn>>", 0, 1),
    ("control_texts_plain", b"<eos> <bos> <pad> <unk> <mask>", 0, 0),
    ("control_texts_special", b"<eos> <bos> <pad> <unk> <mask>", 0, 1),
    ("unused_plain", b"<unused0><unused99>x<unused6241>", 0, 0),
    ("unused_special", b"<unused0><unused99>x<unused6241>", 0, 1),
    ("html_tags", b"<table><tr><td>a</td></tr></table> <h1>T</h1> <b>b</b><i>i</i><code>c</code>", 0, 0),
    ("html_tags_special", b"<table><tr><td>a</td></tr></table> <h1>T</h1>", 0, 1),
    ("html_nested", b"<<table>> <table<tr>> </<b>> <tr><tr>", 0, 0),
    ("strike_plain", b"<s>x</s> </s></s>", 0, 0),
    ("strike_special", b"<s>x</s> </s></s>", 0, 1),
    ("image_markers", b"<start_of_image>pic<end_of_image>[multimodal]", 0, 0),
    ("newline_runs", b"a\nb\n\nc\n\n\nd" + b"\n" * 31 + b"e" + b"\n" * 32 + b"f" + b"\n" * 100, 0, 0),
    ("newline_run_63", b"\n" * 63, 0, 0),
    ("space_runs", b"a  b   c" + b" " * 30 + b"d" + b" " * 31 + b"e" + b" " * 32 + b"f" + b" " * 62, 0, 0),
    ("space_run_100", b" " * 100 + b"x", 0, 0),
    ("tab_runs", b"\t" + b"a\t\tb" + b"\t" * 31 + b"c" + b"\t" * 32 + b"d" + b"\t" * 70, 0, 0),
    ("mixed_runs", b" \n \n\t \t\t  \n\n\n   x \t y\t \n", 0, 0),
    ("space_before_newline", b"end of line \nnext  \n  indented\n", 0, 0),
    ("escape_char_in_text", "a\u2581b \u2581 \u2581\u2581c\u2581".encode(), 0, 0),
    ("byte_token_texts", b"<0x41><0x0A> <0xFF>", 0, 0),
    ("invalid_lead_swallows", b"\xe2ab \xf0cde \xe2 x \xc3", 0, 0),
    ("invalid_lead_before_space", b"\xe2 \xf0  x", 0, 0),
    ("escape_inside_token", b"x> </y <b> </b>", 0, 0),
    ("long_words", b"unbelievable internationalization antidisestablishmentarianism pneumonoultramicroscopic", 0, 0),
    ("alternating", b"ab" * 500, 0, 0),
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


def gguf_with(src, dst, key, value):
    """Copy SRC's metadata (no tensors) to DST with KEY (an existing key) set to VALUE (a
    str or a bool), or dropped when VALUE is None."""
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

    if value is None:
        encoded = None
    elif isinstance(value, bool):
        encoded = struct.pack("<IB", 7, int(value))
    else:
        encoded = struct.pack("<IQ", 8, len(value.encode())) + value.encode()
    out = [struct.pack("<4sIQQ", b"GGUF", version, 0, n_kv - (value is None))]
    pos, found = 24, False
    for _ in range(n_kv):
        start = pos
        key_len = struct.unpack_from("<Q", data, pos)[0]
        name = data[pos + 8:pos + 8 + key_len]
        pos += 8 + key_len
        vtype = struct.unpack_from("<I", data, pos)[0]
        end = skip_value(vtype, pos + 4)
        if name == key.encode():
            if encoded is not None:
                out.append(data[start:pos] + encoded)
            found = True
        else:
            out.append(data[start:end])
        pos = end
    assert found, "no %s in %s" % (key, src)
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


# Per model: its GGUF, its own variant's name, the edge cases (shared ones first), the
# relabelled copies ((variant, key, value; None drops the key)) and whether the word
# splitters are checked.
MODELS = {
    "smollm2": dict(gguf="SmolLM2-135M-Instruct.Q4_1.gguf", own="smollm", cases=EDGE_CASES + SMOLLM2_CASES,
                    relabels=[(pre, "tokenizer.ggml.pre", pre) for pre in ["gpt-2", "qwen2", "llama-bpe"]],
                    splitters=True),
    "gemma3": dict(gguf="gemma-3-270m-q4_k_m.gguf", own="gemma3", cases=EDGE_CASES + GEMMA3_CASES,
                   relabels=[("gemma3+space_prefix", "tokenizer.ggml.add_space_prefix", True),
                             ("gemma3-scores", "tokenizer.ggml.scores", None)],
                   splitters=False),
    "qwen25coder": dict(gguf="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", own="qwen2", cases=EDGE_CASES, relabels=[],
                        splitters=False),
}


def write_fixture(name, data_dir):
    spec = MODELS[name]
    model = os.path.join(MODELS_DIR, spec["gguf"])
    if not os.path.exists(model):
        sys.exit("ref_tokens: %s is missing; run `python3 tools/fetch_models.py %s`" % (model, name))
    cases = spec["cases"]
    files = []
    for d in FILE_DIRS:
        for dirpath, _, names in os.walk(os.path.join(data_dir, d)):
            files += [os.path.relpath(os.path.join(dirpath, n), data_dir) for n in names]
    files.sort()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        case_paths = []
        for i, (case, data, _, _) in enumerate(cases):
            path = os.path.join(tmp, "case%03d" % i)
            open(path, "wb").write(data)
            case_paths.append(path)

        def run_cases(variant, gguf):
            for flags in sorted({(a, p) for _, _, a, p in cases}):
                picked = [i for i, c in enumerate(cases) if (c[2], c[3]) == flags]
                results = run_ref(["tokens", gguf, str(flags[0]), str(flags[1])], [case_paths[i] for i in picked])
                for i, res in zip(picked, results):
                    case, data = cases[i][0], cases[i][1]
                    rows.append((variant, flags[0], flags[1], case, "hex:" + data.hex(), len(data), res, True))

        def run_files(variant, gguf, names):
            results = run_ref(["tokens", gguf, "0", "0"], [os.path.join(data_dir, n) for n in names])
            for n, res in zip(names, results):
                size = os.path.getsize(os.path.join(data_dir, n))
                rows.append((variant, 0, 0, n, "file:" + n, size, res, False))

        run_cases(spec["own"], model)
        run_files(spec["own"], model, files)
        for variant, key, value in spec["relabels"]:
            copy = os.path.join(tmp, "vocab-%s.gguf" % variant)
            gguf_with(model, copy, key, value)
            run_cases(variant, copy)
            run_files(variant, copy, VARIANT_FILES)
        if spec["splitters"]:
            for splitter, regexes in SPLITTERS.items():
                results = run_ref(["split", "\n".join(regexes)], case_paths)
                for (case, data, _, _), res in zip(cases, results):
                    rows.append(("split:" + splitter, 0, 0, case, "hex:" + data.hex(), len(data), res, True))
                paths = [os.path.join(data_dir, n) for n in VARIANT_FILES]
                for n, res in zip(VARIANT_FILES, run_ref(["split", "\n".join(regexes)], paths)):
                    size = os.path.getsize(os.path.join(data_dir, n))
                    rows.append(("split:" + splitter, 0, 0, n, "file:" + n, size, res, False))

    out = os.path.join(ROOT, "tests", "fixtures", "tokens_%s.tsv" % name)
    with open(out, "w", encoding="utf-8") as f:
        sdists = sorted(n for n in os.listdir(REF) if n.startswith("llama_cpp_python-"))
        f.write("# Generated by tools/ref/ref_tokens.py from the llama.cpp in %s with %s; do not edit.\n"
                % (sdists[-1] if sdists else "llama.cpp", spec["gguf"]))
        f.write("# variant\tadd_special\tparse_special\tname\tinput\tn_bytes\tn_ids\tsha256_ids\tids\n")
        for variant, add, parse, case, inp, size, res, full in rows:
            if isinstance(res, str):
                f.write("%s\t%d\t%d\t%s\t%s\t%d\terror\t-\t%s\n" % (variant, add, parse, case, inp, size, res))
            else:
                ids = " ".join(map(str, res)) if full else ""
                f.write("%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%s\n"
                        % (variant, add, parse, case, inp, size, len(res), sha256_ids(res), ids))
    print("wrote %s (%d rows)" % (out, len(rows)), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("LMZ_DATA", os.path.join(ROOT, "..", "shared", "data")))
    ap.add_argument("models", nargs="*", metavar="MODEL", help="%s (default: all)" % ", ".join(sorted(MODELS)))
    args = ap.parse_args()
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error("unknown model %s" % ", ".join(unknown))
    build_tool()
    check_regexes()
    for name in args.models or sorted(MODELS):
        write_fixture(name, args.data)


if __name__ == "__main__":
    main()
