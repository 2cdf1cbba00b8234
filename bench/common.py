"""Helpers shared by the bench scripts (bench.py, compress_bench.py). Standard library only.

Each script owns one SECTION of bench/report.json (a top-level key) and of bench/report.md
(the text between `<!-- section:NAME -->` and `<!-- /section:NAME -->`); merged_json and
merged_md replace only that section and keep every other one; atomic_write replaces a file
in one rename so a crash never leaves a half-written report.
"""
import importlib.util, json, os, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("LMZ_CACHE", os.path.expanduser("~/.cache/lmz"))


class BenchError(Exception):
    pass


def run(cmd, timeout, what, env=None, merge=False):
    """Runs cmd in the repository root, returns stdout (and stderr too if merge); raises
    BenchError with the tail of stderr on failure."""
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("%s timed out after %ds: %s" % (what, timeout, " ".join(cmd)))
    except OSError as e:
        raise BenchError("%s could not start: %s: %s" % (what, " ".join(cmd), e))
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-25:])
        raise BenchError("%s failed (exit %d): %s\n%s" % (what, p.returncode, " ".join(cmd), tail))
    return p.stdout + p.stderr if merge else p.stdout


def file_sha256(path):
    """The file's SHA-256 (hex), computed as tools/fetch_models.py verifies models."""
    return load_fetch_models().sha256_file(path)


def load_fetch_models():
    """tools/fetch_models.py as a module (its MODELS table: name -> (file name, ...))."""
    path = os.path.join(ROOT, "tools", "fetch_models.py")
    spec = importlib.util.spec_from_file_location("lmz_fetch_models", path)
    mod = importlib.util.module_from_spec(spec)
    sys.dont_write_bytecode = True
    spec.loader.exec_module(mod)
    return mod


def cpu_info():
    model, flags = "?", set()
    try:
        for line in open("/proc/cpuinfo"):
            k, _, v = line.partition(":")
            k = k.strip()
            if k == "model name" and model == "?":
                model = v.strip()
            elif k == "flags" and not flags:
                flags = set(v.split())
    except OSError:
        pass
    interesting = ["avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                   "avx512_bf16", "amx_int8"]
    have = [f for f in interesting if f in flags]
    try:
        ncpu = len(os.sched_getaffinity(0))
    except AttributeError:
        ncpu = os.cpu_count() or 1
    return {"model": model, "flags": have, "cpus": ncpu}


def lmz_git():
    """Short HEAD commit, "+dirty" when src/ or the Makefile has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "Makefile"],
                               cwd=ROOT, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "") if head else "?"
    except OSError:
        return "?"


def write_section(jpath, mpath, section, data, md):
    """Replaces SECTION of report.json at JPATH (with DATA) and of report.md at MPATH (with
    MD), keeping the other sections; the folder is made when missing."""
    os.makedirs(os.path.dirname(jpath) or ".", exist_ok=True)
    atomic_write(jpath, merged_json(jpath, section, data))
    atomic_write(mpath, merged_md(mpath, section, md))


def atomic_write(path, text):
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def merged_json(path, section, data):
    """The text of report.json at path with its `section` key set to data."""
    doc = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                doc = json.load(f)
        except ValueError as e:
            raise BenchError("%s exists but is not valid JSON (%s); fix or remove it" % (path, e))
        if not isinstance(doc, dict):
            raise BenchError("%s is not a JSON object; fix or remove it" % path)
    doc[section] = data
    return json.dumps(doc, indent=2) + "\n"


def merged_md(path, section, body):
    """The text of report.md at path with the block of `section` replaced by body (appended
    when the file has no such block)."""
    begin, end = "<!-- section:%s -->" % section, "<!-- /section:%s -->" % section
    block = begin + "\n" + body + "\n" + end
    text = open(path).read() if os.path.exists(path) else "# lmz benchmark report\n"
    i, j = text.find(begin), text.find(end)
    if i >= 0 and j > i:
        return text[:i] + block + text[j + len(end):]
    if i >= 0 or j >= 0:
        raise BenchError("%s has an unbalanced %s marker; fix it by hand" % (path, section))
    return text.rstrip("\n") + "\n\n" + block + "\n"
