"""Benchmark of the explorer's server (issue 15 numbers); runs the real CLI server.

    python scripts/bench_explore.py [--requests 200] [--seconds 10] [--clients 8]

Starts ``trialsynth explore ivig_rm --no-browser --port 0`` in a child process, then
measures, against 127.0.0.1 only:
- latency of exact posteriors, each with a tau prior not asked before (no cache hit):
  median and 99th percentile over --requests sequential GETs of /api/posterior;
- requests per second held with --clients concurrent clients for --seconds, distinct
  priors (cold) and one repeated prior (cached);
- the server's peak resident memory (psutil) during 50 parallel distinct requests.
Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

import numpy as np


def _get(url: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as r:
        r.read()
        return r.status, time.perf_counter() - t0


def _url(base: str, tau: str) -> str:
    q = urllib.parse.urlencode([("model", "normal-normal"), ("tau", tau)])
    return f"{base}/api/posterior?{q}"


def start_server(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "http://" in line:
            url = line[line.index("http://") :].split()[0].rstrip("/")
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, url
    proc.kill()
    raise RuntimeError("server did not start")


def latency(base: str, n: int, pid: int) -> dict[str, float]:
    import psutil

    server = psutil.Process(pid)
    scales = np.linspace(0.11, 2.5, n)
    times = []
    cpu0 = sum(server.cpu_times()[:2])
    for s in scales:
        status, dt = _get(_url(base, f"half-normal({s:.6f})"))
        assert status == 200
        times.append(dt * 1e3)
    cpu = sum(server.cpu_times()[:2]) - cpu0
    return {
        "n": n,
        "median_ms": statistics.median(times),
        "p99_ms": float(np.percentile(times, 99)),
        "max_ms": max(times),
        "server_cpu_ms_per_request": 1e3 * cpu / n,  # less sensitive to other load
    }


def throughput(base: str, clients: int, seconds: float, *, cached: bool) -> float:
    stop = time.time() + seconds
    counter = iter(range(10**9))
    lock = threading.Lock()
    done = [0]

    def client() -> None:
        while time.time() < stop:
            with lock:
                i = next(counter)
            tau = "half-normal(0.5)" if cached else f"half-cauchy({0.05 + i * 1e-5:.6f})"
            status, _ = _get(_url(base, tau))
            assert status == 200
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.perf_counter() - t0)


def memory_under_parallel(base: str, pid: int, n: int = 50) -> dict[str, float]:
    import psutil

    p = psutil.Process(pid)
    before = p.memory_info().rss
    peak = [before]
    running = [True]

    def watch() -> None:
        while running[0]:
            peak[0] = max(peak[0], p.memory_info().rss)
            time.sleep(0.01)

    w = threading.Thread(target=watch)
    w.start()
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=n) as pool:
        results = list(
            pool.map(lambda i: _get(_url(base, f"half-t(3, {0.2 + i / 50:.4f})")), range(n))
        )
    wall = time.perf_counter() - t0
    running[0] = False
    w.join()
    assert all(s == 200 for s, _ in results)
    return {
        "rss_before_mb": before / 2**20,
        "rss_peak_mb": peak[0] / 2**20,
        "wall_s": wall,
        "max_latency_ms": max(dt for _, dt in results) * 1e3,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--cmd", default=None, help="server command (default: the CLI)")
    args = ap.parse_args()
    cmd = (
        args.cmd.split()
        if args.cmd
        else [
            sys.executable,
            "-c",
            "import sys; from trialsynth.cli import main; sys.exit(main(sys.argv[1:]))",
            *("explore", "ivig_rm", "--no-browser", "--port", "0"),
        ]
    )
    proc, base = start_server(cmd)
    try:
        _get(_url(base, "half-normal(0.5)"))  # warm
        out = {"load_avg_1min": os.getloadavg()[0], "cpus": os.cpu_count()}
        out["latency_exact_uncached"] = latency(base, args.requests, proc.pid)
        out["rps_distinct_priors"] = throughput(base, args.clients, args.seconds, cached=False)
        out["rps_repeated_prior"] = throughput(base, args.clients, args.seconds, cached=True)
        out["memory_50_parallel"] = memory_under_parallel(base, proc.pid)
        out["load_avg_1min_after"] = os.getloadavg()[0]
        print(json.dumps(out, indent=2))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
