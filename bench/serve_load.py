#!/usr/bin/env python3
"""A bounded load test of `lmz serve`: starts it on a free loopback port with the default
model, then sends the same --requests short chat requests (greedy, --max-tokens each) from
1, 4 and 8 concurrent clients (--concurrency) and reports, per level, requests/s, p50 and
p99 latency (send to full reply), completion tokens/s, and whether every reply equals the
one the same request got alone (lmz's replies do not depend on what else runs). Also the
server's peak resident memory and its exit status on SIGTERM.

Writes the "serve" section of bench/report.json and bench/report.md. Standard library only.
"""
import argparse, datetime, http.client, json, os, signal, statistics, subprocess, sys, threading, time

import common

SECTION = "serve"
TOPICS = ["the moon", "volcanoes", "honey bees", "the Roman empire", "photosynthesis", "chess", "the Pacific Ocean",
          "jazz", "penguins", "the printing press", "rainbows", "coffee", "the Eiffel Tower", "electricity",
          "dinosaurs", "the violin", "Mount Everest", "tea", "octopuses", "the internet", "glaciers", "Mars",
          "bread", "lighthouses", "the piano", "tigers", "the Sahara", "bicycles", "comets", "origami", "whales",
          "the compass"]
FORMS = ["Give one short fact about %s.", "Describe %s in one sentence."]


def log(msg):
    print("[serve] " + msg, file=sys.stderr, flush=True)


def prompts(n):
    return [FORMS[(i // len(TOPICS)) % len(FORMS)] % TOPICS[i % len(TOPICS)] for i in range(n)]


def start(a):
    model = os.path.join(common.CACHE, "models", common.load_fetch_models().MODELS[a.model][0])
    cmd = [a.lmz, "serve", "-m", model, "--port", "0", "-T", str(a.threads), "--streams", str(a.streams), "-q"]
    p = subprocess.Popen(cmd, cwd=common.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    if "listening on http://127.0.0.1:" not in line:
        p.kill()
        raise common.BenchError("lmz serve did not start: %r %s" % (line, p.stderr.read()[-2000:]))
    port = int(line.split("127.0.0.1:")[1].split("/")[0])
    return p, port, cmd


def request(port, text, max_tokens):
    body = json.dumps({"messages": [{"role": "user", "content": text}], "temperature": 0,
                       "max_tokens": max_tokens})
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise common.BenchError("HTTP %d: %s" % (r.status, data[:300]))
    j = json.loads(data)
    return dt, j["choices"][0]["message"]["content"], j["usage"]["completion_tokens"]


def level(port, texts, clients, max_tokens):
    """Sends every text once from CLIENTS threads; latencies, replies, tokens, wall time."""
    results = [None] * len(texts)
    nxt = [0]
    lock = threading.Lock()
    errors = []

    def worker():
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(texts) or errors:
                return
            try:
                results[i] = request(port, texts[i], max_tokens)
            except Exception as e:  # reported after the level
                errors.append("%s: %s" % (texts[i], e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise common.BenchError("%d clients: %s" % (clients, errors[0]))
    return results, wall


def percentile(xs, q):
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q / 100 * len(s) + 0.5)) - 1))]


def peak_rss(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2", help="model name from tools/fetch_models.py (default: %(default)s)")
    ap.add_argument("--lmz", default=os.path.join(common.ROOT, "lmz"), help="lmz binary (default: ./lmz)")
    ap.add_argument("--requests", type=int, default=64, help="requests per concurrency level (default: %(default)s)")
    ap.add_argument("--concurrency", default="1,4,8", help="client counts (default: %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=16, help="max_tokens per request (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=2, help="lmz serve -T (default: %(default)s)")
    ap.add_argument("--streams", type=int, default=8, help="lmz serve --streams (default: %(default)s)")
    ap.add_argument("--note", default="", help="a sentence for the report (e.g. what else ran on the machine)")
    ap.add_argument("--out-dir", help="where report.md/report.json go (default: bench/)")
    ap.add_argument("--lmz-commit", help="commit to report for a --lmz binary built elsewhere")
    a = ap.parse_args()
    texts = prompts(a.requests)
    load_before = os.getloadavg()
    p, port, cmd = start(a)
    try:
        log("lmz serve on port %d; warming up" % port)
        request(port, "Hello!", 4)
        levels, reference = [], None
        for clients in [int(x) for x in a.concurrency.split(",")]:
            results, wall = level(port, texts, clients, a.max_tokens)
            lat = [r[0] for r in results]
            replies = [r[1] for r in results]
            tokens = sum(r[2] for r in results)
            if reference is None:
                reference = replies
            same = replies == reference
            row = {"clients": clients, "requests": len(texts), "wall_s": round(wall, 3),
                   "requests_per_s": round(len(texts) / wall, 3), "p50_ms": round(percentile(lat, 50) * 1000, 1),
                   "p99_ms": round(percentile(lat, 99) * 1000, 1), "mean_ms": round(statistics.mean(lat) * 1000, 1),
                   "completion_tokens": tokens, "completion_tokens_per_s": round(tokens / wall, 1),
                   "replies_equal_serial": same}
            log(json.dumps(row))
            levels.append(row)
            if not same:
                raise common.BenchError("%d clients: replies differ from the serial run" % clients)
        rss = peak_rss(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            code = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            code = None
    if code != 0:
        raise common.BenchError("lmz serve exited with %s on SIGTERM" % code)
    data = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": common.cpu_info(),
            "lmz_commit": a.lmz_commit or common.lmz_git(), "model": a.model, "threads": a.threads,
            "streams": a.streams, "max_tokens": a.max_tokens, "loadavg_before": [round(x, 2) for x in load_before],
            "server_peak_rss_bytes": rss, "exit_on_sigterm": code, "levels": levels, "note": a.note,
            "command": " ".join(["lmz"] + cmd[1:3] + [a.model] + cmd[4:])}
    md = markdown_section(data)
    print(md)
    out_dir = a.out_dir or os.path.join(common.ROOT, "bench")
    jpath, mpath = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "report.md")
    common.write_section(jpath, mpath, SECTION, data, md)
    log("wrote the %s section of %s and %s" % (SECTION, mpath, jpath))


def markdown_section(d):
    out = ["## lmz serve under load (%s)" % d["model"], "",
           "`bench/serve_load.py`: `%s` on a free loopback port; %d short chat requests (one user message, "
           "greedy, max_tokens %d) sent from each number of concurrent clients, one connection per request. "
           "Latency is from sending a request to its whole reply. Concurrent requests are batched by the "
           "server (up to %d sequences per lmz_generate_each call); every reply was checked equal to the one the "
           "same request got with one client." % (d["command"], d["levels"][0]["requests"], d["max_tokens"],
                                                   d["streams"]), "",
           "| clients | requests/s | p50 latency | p99 latency | mean latency | completion tokens/s | replies = serial |",
           "|---:|---:|---:|---:|---:|---:|---|"]
    for r in d["levels"]:
        out.append("| %d | %.2f | %.0f ms | %.0f ms | %.0f ms | %.1f | %s |" % (
            r["clients"], r["requests_per_s"], r["p50_ms"], r["p99_ms"], r["mean_ms"], r["completion_tokens_per_s"],
            "yes" if r["replies_equal_serial"] else "NO"))
    rss = d["server_peak_rss_bytes"]
    out += ["", "- server peak RSS %s; exit status on SIGTERM %s" % (
        "%.0f MiB" % (rss / 2**20) if rss else "?", d["exit_on_sigterm"]),
            "- date: %s; CPU: %s, %d logical CPUs; load average before the run %s; lmz %s" % (
                d["date"], d["cpu"]["model"], d["cpu"]["cpus"], " ".join("%.2f" % x for x in d["loadavg_before"]),
                d["lmz_commit"])]
    if d["note"]:
        out.append("- " + d["note"])
    return "\n".join(out)


if __name__ == "__main__":
    try:
        main()
    except common.BenchError as e:
        sys.exit("serve_load: %s" % e)
