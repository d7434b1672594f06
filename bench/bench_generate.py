"""Time `matcher.generate.generate_world` at 1x, 10x and 100x the default world; write bench/generate.md.

Each run is a fresh Python process (so peak RSS is that run's own), generating into a
temporary folder with seed 0; seconds are the wall time of ``generate_world`` alone
(files written, interpreter start-up and imports excluded). 1x and 10x report the
median of ``--runs`` runs, 100x a single run, abandoned after ``--timeout`` seconds.

    .venv/bin/python bench/bench_generate.py [--scales 1,10,100] [--runs 3] [--out bench/generate.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, tempfile, time
from matcher.generate import generate_world
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
with tempfile.TemporaryDirectory() as d:
    t, c = time.perf_counter(), cpu()
    s = generate_world(d, households=int(sys.argv[1]), seed=0)
    seconds, cpu_seconds = time.perf_counter() - t, cpu() - c
print(json.dumps(dict(summary=s, seconds=seconds, cpu_seconds=cpu_seconds,
                      rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def run_once(households: int, timeout: float) -> dict | None:
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, str(households)], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, check=True)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    from matcher.generate import DEFAULT_HOUSEHOLDS
    import numpy
    import pandas

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="1,10,100")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "generate.md")
    args = ap.parse_args(argv)

    load = os.getloadavg()[0]
    rows = []
    for scale in (int(s) for s in args.scales.split(",")):
        households = scale * DEFAULT_HOUSEHOLDS
        runs = args.runs if scale <= 10 else 1
        results = [run_once(households, args.timeout) for _ in range(runs)]
        done = [r for r in results if r is not None]
        if not done:
            rows.append(f"| {scale}x | {households:,} | | | did not finish in {args.timeout:.0f} s | | |")
            print(f"{scale}x: timed out", file=sys.stderr)
            continue
        seconds = statistics.median(r["seconds"] for r in done)
        cpu_seconds = statistics.median(r["cpu_seconds"] for r in done)
        rss = max(r["rss_mb"] for r in done)
        s = done[0]["summary"]
        rows.append(f"| {scale}x | {s['households']:,} | {s['workers']:,} | {s['referrals']:,} | {seconds:.1f} "
                    f"({len(done)} run{'s' if len(done) > 1 else ''}) | {cpu_seconds:.1f} | {rss:.0f} |")
        print(rows[-1], file=sys.stderr)

    text = "\n".join([
        "# `generate_world` benchmark",
        "",
        f"Measured {date.today().isoformat()} by `bench/bench_generate.py` on {platform.machine()} "
        f"({os.cpu_count()} CPUs), Python {platform.python_version()}, numpy {numpy.__version__}, "
        f"pandas {pandas.__version__}. Seed 0; seconds are the median wall time of `generate_world` "
        "(files written; start-up and imports excluded), CPU seconds its user + system time (steadier on a "
        f"shared machine: the 1-minute load average was {load:.1f} when the benchmark started), peak RSS the "
        "whole process's.",
        "",
        "| scale | households | workers | referrals | seconds | CPU seconds | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ])
    args.out.write_text(text, encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
