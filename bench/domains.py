#!/usr/bin/env python3
"""Domain LoRA adapters: train one per domain with `lmz train`, then measure bits/byte on
every domain's test split with the base model, each adapter and automatic choice.

Domains come from tools/make_domains.py (split by prompt; adapters only ever see the train
split). Adapters are cached in $LMZ_CACHE/adapters under a name that hashes the model file,
the train split's bytes and every training option, so a rerun trains only what changed
(delete the folder to retrain after changing the trainer itself).
For each trained adapter the report keeps the training wall time, tokens/s and the peak
resident memory of `lmz train` (wait4).

Evaluation compresses the first whole documents of each test split that fit in
--eval-bytes (the split is stored in a fixed pseudo-random order, so they are a fair
sample) with `lmz -c`: bits/byte = 8 x archive bytes / input bytes, the archive's own size
with its header and chunk table, exactly what a user gets. "auto" is `lmz --lora-dir` over
the folder of all the domain adapters; the adapter it chose is read back with `lmz -l`.

Writes the "domains" section of bench/report.json and bench/report.md.
"""
import argparse, datetime, hashlib, json, os, re, subprocess, sys, tempfile, time

import common

SECTION = "domains"
DOMAINS = ["chat", "arena", "math", "code"]


def log(msg):
    print("[domains] " + msg, file=sys.stderr, flush=True)


FETCH = common.load_fetch_models()
sha256_file = common.file_sha256


def model_path(name):
    return os.path.join(common.CACHE, "models", FETCH.MODELS[name][0])


def steps_for(a, domain):
    """--steps, unless --steps-for names the domain."""
    for item in filter(None, a.steps_for.split(",")):
        name, _, n = item.partition("=")
        if name == domain:
            return int(n)
    return a.steps


def train_options(a, domain):
    return ["--rank", str(a.rank), "--alpha", str(a.alpha), "--steps", str(steps_for(a, domain)),
            "--batch", str(a.batch),
            "--seq", str(a.seq), "--lr", str(a.lr), "--warmup", str(a.warmup), "--seed", str(a.seed)]


def adapter_path(a, domain, model_file, train_file):
    key = hashlib.sha256(json.dumps({"model": sha256_file(model_file), "train": sha256_file(train_file),
                                     "options": train_options(a, domain)}).encode()).hexdigest()[:12]
    return os.path.join(common.CACHE, "adapters", "%s-%s-%s.gguf" % (a.model, domain, key))


def run_measured(cmd, log_path):
    """Runs cmd with stderr to log_path; returns (exit status, wall seconds, peak RSS bytes)."""
    t0 = time.time()
    with open(log_path, "w") as err:
        p = subprocess.Popen(cmd, cwd=common.ROOT, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
    return os.waitstatus_to_exitcode(status), time.time() - t0, usage.ru_maxrss * 1024


def train(a, domain, model_file, train_file):
    out = adapter_path(a, domain, model_file, train_file)
    meta = out[:-len(".gguf")] + ".json"
    if os.path.exists(out) and os.path.exists(meta):
        with open(meta) as f:
            return out, json.load(f)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [a.lmz, "train", "-m", model_file, "--data", train_file, "-o", out, "-T", str(a.train_threads)] + \
        train_options(a, domain)
    log("training %s: %s" % (domain, " ".join(cmd)))
    rc, wall, rss = run_measured(cmd, out + ".log")
    text = open(out + ".log").read()
    if rc != 0:
        raise common.BenchError("lmz train for %s failed (exit %d):\n%s" % (domain, rc, text[-2000:]))
    rates = [float(x) for x in re.findall(r"([0-9.]+) tokens/s", text)]
    data = re.search(r"data\s+(\d+) documents, (\d+) bytes, (\d+) tokens in (\d+) sequences", text)
    losses = re.findall(r"bits/token ([0-9.]+)", text)
    info = {"domain": domain, "command": " ".join(cmd[1:]), "threads": a.train_threads, "wall_s": round(wall, 1),
            "peak_rss_bytes": rss, "tokens_per_s_last": rates[-1] if rates else None,
            "train_tokens_seen": steps_for(a, domain) * a.batch * a.seq,
            "data_tokens": int(data.group(3)) if data else None,
            "first_bits_per_token": float(losses[0]) if losses else None,
            "last_bits_per_token": float(losses[-1]) if losses else None,
            "adapter_sha256": sha256_file(out), "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")}
    with open(meta, "w") as f:
        json.dump(info, f, indent=1)
    log("trained %s in %.0f s, %.1f tokens/s, peak RSS %.0f MiB" % (domain, wall, info["tokens_per_s_last"] or 0,
                                                                    rss / 2**20))
    return out, info


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2", help="model name from tools/fetch_models.py (default: %(default)s)")
    ap.add_argument("--domains", default=",".join(DOMAINS), help="comma-separated (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per adapter (default: %(default)s)")
    ap.add_argument("--steps-for", default="", metavar="DOMAIN=N,...",
                    help="steps for the named domains instead of --steps (a domain with more training data "
                         "can use more steps before it over-fits)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lr", default="1e-3")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", default="32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-threads", type=int, default=1, help="lmz train -T (default: %(default)s)")
    ap.add_argument("--lmz", default=os.path.join(common.ROOT, "lmz"), help="lmz binary (default: ./lmz)")
    ap.add_argument("--train-only", action="store_true", help="train (or find cached) adapters, measure nothing")
    ap.add_argument("--eval-bytes", type=int, default=49152, help="bytes of each test split (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="lmz -T when evaluating (default: %(default)s)")
    ap.add_argument("--out-dir", help="where report.md/report.json go (default: bench/)")
    ap.add_argument("--lmz-commit", help="commit to report for a --lmz binary built elsewhere (default: this "
                    "checkout's HEAD, +dirty when src/ has changes)")
    a = ap.parse_args()
    sys.path.insert(0, os.path.join(common.ROOT, "tools"))
    global make_domains
    import make_domains
    domains = a.domains.split(",")
    folder = os.path.join(common.CACHE, "domains")
    for d in domains:
        make_domains.build(folder, d)
    model_file = model_path(a.model)
    adapters = {}
    for d in domains:
        adapters[d] = train(a, d, model_file, os.path.join(folder, d, "train.txt"))
    if a.train_only:
        return
    data = evaluate(a, domains, folder, model_file, adapters)
    md = markdown_section(data)
    print(md)
    out_dir = a.out_dir or os.path.join(common.ROOT, "bench")
    jpath, mpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")
    common.write_section(jpath, mpath, SECTION, data, md)
    log("wrote the %s section of %s and %s" % (SECTION, mpath, jpath))


def eval_text(folder, domain, max_bytes):
    """The test split's first documents, as many whole ones as fit in max_bytes (at least
    one), joined as in test.txt; and their count."""
    with open(os.path.join(folder, domain, "test.jsonl"), encoding="utf-8") as f:
        docs = [json.loads(line) for line in f]
    text, n = b"", 0
    for d in docs:
        more = (make_domains.SEPARATOR if n else "").encode() + d.encode()
        if n and len(text) + len(more) + 1 > max_bytes:
            break
        text, n = text + more, n + 1
    return text + b"\n", n


def compress_size(a, model_file, path, extra, verbose=False):
    """Archive bytes of `lmz -c` on path with the extra options (and lmz's stderr with -v)."""
    cmd = [a.lmz, "-c", "-m", model_file, "-T", str(a.threads)] + (["-v"] if verbose else ["-q"]) + extra + [path]
    p = subprocess.run(cmd, cwd=common.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=3600)
    if p.returncode != 0:
        raise common.BenchError("%s failed (exit %d): %s" % (" ".join(cmd), p.returncode, p.stderr.decode()[-2000:]))
    return len(p.stdout), p.stderr.decode(errors="replace"), p.stdout


def evaluate(a, domains, folder, model_file, adapters):
    with tempfile.TemporaryDirectory(prefix="lmz-domains-") as tmp:
        adapter_dir = os.path.join(tmp, "adapters")
        os.makedirs(adapter_dir)
        for d in domains:  # --lora-dir sees exactly this run's adapters, named by domain
            os.symlink(adapters[d][0], os.path.join(adapter_dir, d + ".gguf"))
        rows = []
        for d in domains:
            text, n_docs = eval_text(folder, d, a.eval_bytes)
            path = os.path.join(tmp, d + ".txt")
            with open(path, "wb") as f:
                f.write(text)
            n = len(text)
            row = {"domain": d, "bytes": n, "documents": n_docs, "bits_per_byte": {}}
            t0 = time.time()
            size, _, _ = compress_size(a, model_file, path, [])
            row["bits_per_byte"]["base"] = 8.0 * size / n
            for other in domains:
                size, _, _ = compress_size(a, model_file, path, ["--lora", adapters[other][0]])
                row["bits_per_byte"][other] = 8.0 * size / n
            size, err, archive = compress_size(a, model_file, path, ["--lora-dir", adapter_dir], verbose=True)
            row["bits_per_byte"]["auto"] = 8.0 * size / n
            m = re.search(r"adapter (\S+), scored", err)
            row["auto_choice"] = os.path.basename(m.group(1))[:-len(".gguf")] if m and m.group(1) != "none" else "none"
            apath = os.path.join(tmp, d + ".lmz")
            with open(apath, "wb") as f:
                f.write(archive)
            back = subprocess.run([a.lmz, "-d", "-c", "-q", "-m", model_file, "-T", str(a.threads), "--lora-dir",
                                   adapter_dir, apath], cwd=common.ROOT, stdout=subprocess.PIPE, timeout=3600).stdout
            if back != text:
                raise common.BenchError("the --lora-dir archive of %s did not decompress to its input" % d)
            xz = subprocess.run(["xz", "-9e", "-c", path], stdout=subprocess.PIPE, check=True).stdout
            row["bits_per_byte"]["xz -9e"] = 8.0 * len(xz) / n
            row["own_factor"] = row["bits_per_byte"]["base"] / row["bits_per_byte"][d]
            row["seconds"] = round(time.time() - t0, 1)
            log("%s: %s" % (d, json.dumps(row)))
            rows.append(row)
    cpu = common.cpu_info()
    return {"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "model": a.model,
            "model_file": os.path.basename(model_file), "lmz_commit": a.lmz_commit or common.lmz_git(), "cpu": cpu,
            "eval_bytes": a.eval_bytes, "threads": a.threads, "domains": domains,
            "training": {d: adapters[d][1] for d in domains}, "rows": rows}


def markdown_section(data):
    doms = data["domains"]
    out = ["## Domain LoRA adapters (%s)" % data["model"], "",
           "Bits per byte of each domain's test split (prompts never trained on; `tools/make_domains.py`), "
           "compressed by `lmz -c` (whole archive) with the base model, with each domain's adapter "
           "(`--lora`), and with automatic choice (`--lora-dir` over the four; its pick in brackets); xz -9e "
           "for scale. Factor = base / own adapter. Each test text is the split's first whole documents "
           "that fit in %d bytes (the split's order is a fixed shuffle); every auto archive was "
           "decompressed and compared." % data["eval_bytes"], "",
           "| test split | documents | bytes | base | " + " | ".join("%s adapter" % d for d in doms) +
           " | auto | xz -9e | factor (base / own) |",
           "|---|---:|---:|---:|" + "---:|" * len(doms) + "---:|---:|---:|"]
    for r in data["rows"]:
        bpb = r["bits_per_byte"]
        cells = []
        for d in doms:
            v = "%.3f" % bpb[d]
            cells.append("**%s**" % v if d == r["domain"] else v)
        out.append("| %s | %d | %d | %.3f | %s | %.3f (%s) | %.3f | %.2fx |" % (
            r["domain"], r["documents"], r["bytes"], bpb["base"], " | ".join(cells), bpb["auto"], r["auto_choice"], bpb["xz -9e"],
            r["own_factor"]))
    out += ["", "Training (`lmz train`, one adapter per domain, on this machine):", "",
            "| adapter | tokens seen | wall time | tokens/s | peak RSS | bits/token first step → last |",
            "|---|---:|---:|---:|---:|---:|"]
    for d in doms:
        t = data["training"][d]
        out.append("| %s | %d | %.0f s | %.0f | %.0f MiB | %.2f → %.2f |" % (
            d, t["train_tokens_seen"], t["wall_s"], t["train_tokens_seen"] / t["wall_s"], t["peak_rss_bytes"] / 2**20,
            t["first_bits_per_token"], t["last_bits_per_token"]))
    commands = {}  # command (paths and data file dropped) -> domains trained by it
    for d in doms:
        t = data["training"][d]
        cmd = "lmz %s` (-T %d)" % (re.sub(r" -o \S+", "", re.sub(r"\S*/", "", t["command"])).replace(" --data train.txt", ""), t["threads"])
        commands.setdefault(cmd, []).append(d)
    out += [""] + ["- command%s: `%s; data: the domain's train.txt" % (
        " (%s)" % ", ".join(ds) if len(commands) > 1 else "", cmd) for cmd, ds in commands.items()] + [
            "- date: %s; CPU: %s, %d logical CPUs; lmz %s; evaluation -T %d" % (
                data["date"], data["cpu"]["model"], data["cpu"]["cpus"], data["lmz_commit"], data["threads"])]
    return "\n".join(out)


if __name__ == "__main__":
    try:
        main()
    except common.BenchError as e:
        sys.exit("domains: %s" % e)
