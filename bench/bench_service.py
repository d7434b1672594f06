"""Benchmark the HTTP service: household matches per second and their p99, through gunicorn.

    python bench/bench_service.py [--duration 20] [--connections 8 16] [--workers 2]

Runs `matcher serve` (gunicorn, 2 worker processes by default) on loopback against the default
world (`matcher generate --seed 0`) with a model trained on it, and drives it with wrk (Debian
package `wrk`): household-match requests over 2,000 random households, rotating 100 admin tokens
(so the per-token rate limit of 600/min stays on and is part of what is measured), beside the
trivial JSON endpoint /healthz on the same server. Writes the figures to bench/service.md.

The world, the model and the database are made once under instance/bench-service/ and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "instance" / "bench-service"
MATCHER = [sys.executable, "-m", "matcher"]
TARGET_RPS, TARGET_P99_MS = 300, 50


def run(cmd, env=None, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    return subprocess.run(cmd, env=env, check=True, text=True, **kw)


def prepare(env) -> tuple[Path, list[str], list[str]]:
    world = CACHE / "world"
    if not (world / "referrals.csv").exists():
        run(MATCHER + ["generate", "--out", str(world), "--seed", "0"], env=env, stdout=subprocess.DEVNULL)
    models = CACHE / "models"
    if list(models.glob("*.json")):
        from matcher import model as m
        from matcher.errors import ModelError
        try:
            m.load(m.production_path(models))
        except ModelError as exc:   # made by older code (features, libraries): make it again
            print(f"cached model unusable ({exc}); retraining", file=sys.stderr)
            shutil.rmtree(models)
    if not list(models.glob("*.json")):
        print("training the model on the default world (once; a few minutes)...", file=sys.stderr)
        run(MATCHER + ["train", str(world), "--out", str(models)], env=env, stdout=subprocess.DEVNULL)
    db = CACHE / "bench.db"
    for p in CACHE.glob("bench.db*"):
        p.unlink()
    run(MATCHER + ["db", "init"], env=env, stdout=subprocess.DEVNULL)
    run(MATCHER + ["db", "import", str(world)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from matcher.store import create_token, make_engine
    engine = make_engine(env["MATCHER_DATABASE_URL"])
    tokens = [create_token(engine, "admin", f"bench-{i}") for i in range(100)]
    engine.dispose()
    import pandas as pd
    ids = pd.read_csv(world / "households.csv", dtype=str)["household_id"].tolist()
    random.Random(0).shuffle(ids)
    return db, ids, tokens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_server(server: subprocess.Popen, grace: float) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)


def wait_ready(base: str, token: str, timeout: float = 120) -> dict:
    """Wait for /readyz, then return the model in use (GET /api/v1/model: readiness names no version)."""
    end, last = time.time() + timeout, "no answer"
    while time.time() < end:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2):
                pass
            req = urllib.request.Request(base + "/api/v1/model", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:
            last = exc.read().decode("utf-8", "replace")
        except OSError as exc:   # not listening yet
            last = type(exc).__name__
        time.sleep(0.5)
    raise SystemExit(f"the service did not become ready: {last}")


LUA = """
local ids = {%(ids)s}
local tokens = {%(tokens)s}
local i = 0
setup = function(thread) thread:set("offset", math.random(1, #ids)) end
request = function()
  i = i + 1
  local n = i + (offset or 0)
  local path = "%(prefix)s" .. ids[(n %% #ids) + 1] .. "%(suffix)s"
  if %(vary_k)s then path = path .. "?k=" .. (%(kbase)d + math.floor(n / #ids)) end
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. tokens[(n %% #tokens) + 1]})
end
"""


def wrk(base: str, path: str | None, duration: int, connections: int, threads: int, script: Path | None) -> dict:
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency", "--timeout", "5s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [base + (path or "/")], check=True, text=True, capture_output=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        lat[pct] = float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50_ms": lat.get("50"), "p90_ms": lat.get("90"), "p99_ms": lat.get("99"),
            "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1).strip() if errors else None}


def summarise(runs: list[dict]) -> dict:
    """The median run's figures (by p99), with the spread of p99 and requests/s over the runs."""
    import statistics
    out = {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p90_ms", "p99_ms")}
    out.update(p99_min=min(r["p99_ms"] for r in runs), p99_max=max(r["p99_ms"] for r in runs),
               rps_min=min(r["rps"] for r in runs), rps_max=max(r["rps"] for r in runs),
               non_2xx=sum(r["non_2xx"] for r in runs), runs=len(runs))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--repeat", type=int, default=3, help="runs per setting; the report gives the median")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "service.md"))
    args = ap.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")

    CACHE.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MATCHER_DATABASE_URL=f"sqlite:///{CACHE / 'bench.db'}",
               MATCHER_MODELS_DIR=str(CACHE / "models"), MATCHER_INSTANCE=str(CACHE / "instance"),
               MATCHER_LOG_LEVEL="WARNING")
    env.pop("MATCHER_MODEL", None)
    _, ids, tokens = prepare(env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(MATCHER + ["serve", "--host", "127.0.0.1", "--port", str(port),
                                         "--workers", str(args.workers)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    results = []
    try:
        ready = wait_ready(base, tokens[0])
        with tempfile.TemporaryDirectory() as tmp:
            def script(name, households, vary_k, kbase=10):
                path = Path(tmp) / f"{name}.lua"
                path.write_text(LUA % {"ids": ", ".join(json.dumps(i) for i in households),
                                       "tokens": ", ".join(json.dumps(t) for t in tokens),
                                       "prefix": "/api/v1/households/", "suffix": "/matches",
                                       "vary_k": "true" if vary_k else "false", "kbase": kbase})
                return path
            # 300 households asked again and again: answers remembered until something changes.
            warm = script("warm", ids[:300], False)
            # Start every worker process: world arrays, the background table of pair scores, the
            # remembered answers of the revisited households.
            wrk(base, None, 15, 4, 1, warm)
            n = 0
            for c in args.connections:
                runs = {"cold": [], "warm": [], "healthz": []}
                for _ in range(args.repeat):
                    # The world's households once each, k=10+5n (k+1 on a second pass...): no
                    # (household, k) asked before, so every answer is ranked afresh.
                    cold = script(f"cold{n}", ids, True, kbase=10 + 5 * n)
                    n += 1
                    runs["cold"].append(wrk(base, None, args.duration, c, args.wrk_threads, cold))
                    runs["warm"].append(wrk(base, None, args.duration, c, args.wrk_threads, warm))
                    runs["healthz"].append(wrk(base, "/healthz", args.duration, c, args.wrk_threads, None))
                row = {k: summarise(v) for k, v in runs.items()}
                results.append((c, row))
                print(f"c={c}: " + " | ".join(f"{k} {r['rps']:.0f} req/s p99 {r['p99_ms']:.1f} ms "
                                              f"({r['p99_min']:.0f}-{r['p99_max']:.0f})" for k, r in row.items()),
                      file=sys.stderr)
    finally:
        stop_server(server, grace=30)

    write_report(Path(args.out), args, ready, results)
    return 0


LABELS = {"cold": "household matches, every request new (household, k)",
          "warm": "household matches, 300 households revisited",
          "healthz": "/healthz (trivial JSON)"}


def _met(r) -> bool:
    return r["rps"] >= TARGET_RPS and r["p99_ms"] < TARGET_P99_MS


def write_report(path: Path, args, ready: dict, results) -> None:
    world = CACHE / "world"
    sizes = {n: sum(1 for _ in open(world / f"{n}.csv", encoding="utf-8")) - 1 for n in ("households", "workers", "jobs")}
    load = os.getloadavg()
    lines = [
        "# Service benchmark",
        "",
        f"Written by `python bench/bench_service.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"- Machine: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}; "
        f"wrk runs on the same machine and takes CPU from the server; load average at the end "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (other work on the machine counts against the figures).",
        f"- Server: `matcher serve --workers {args.workers}` (gunicorn, gthread, 4 threads per worker), SQLite "
        "database, audit log on (batched), rate limiter on (100 tokens rotated, 600/min each), responses "
        "not re-validated (the test suite checks them).",
        f"- World: the default one (`matcher generate --seed 0`): {sizes['households']:,} households, "
        f"{sizes['workers']:,} workers, {sizes['jobs']:,} jobs; model `{ready.get('model_version')}`.",
        f"- Load: wrk, {args.wrk_threads} thread(s), {args.duration} s per run, {args.repeat} runs per setting "
        "(the table gives medians, and the range over the runs), `GET /api/v1/households/{id}/matches`, and "
        "`GET /healthz` on the same server.",
        "- *every request new*: the world's households in random order, with a `k` near 10 that changes per run "
        "and per pass, so no (household, k) is asked twice and every answer is ranked afresh: pair scores come from the table each worker process computes in the "
        "background once per model and keeps up to date with each write (six-month retention too); training suggestions are scored "
        "on demand (a model call for members with few viable jobs).",
        "- *revisited*: 300 households (k=10) asked over and over; the service remembers an answer until the "
        "store's revision or the model changes, so after the first visit a request is token check, scope "
        "check, audit entry and a lookup.",
        f"- Target: at least {TARGET_RPS} household requests/s with p99 under {TARGET_P99_MS} ms.",
        "",
        "| connections | endpoint | requests/s (range) | p50 ms | p90 ms | p99 ms (range) | non-2xx | target |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for c, row in results:
        for key, r in row.items():
            mark = ("met" if _met(r) else "not met") if key != "healthz" else ""
            lines.append(f"| {c} | {LABELS[key]} | {r['rps']:.0f} ({r['rps_min']:.0f}-{r['rps_max']:.0f}) | "
                         f"{r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} "
                         f"({r['p99_min']:.0f}-{r['p99_max']:.0f}) | {r['non_2xx']} | {mark} |")
    lines += [
        "",
        "How to read it: the machine is shared (other sessions' jobs run beside the benchmark; see the load "
        "average above) and has 2 CPUs for 2 server processes plus wrk, so the tail moves from run to run far "
        "more than throughput does; the ranges show by how much. One request's own cost, measured in-process "
        "without HTTP, is bench/engine.md's household plan (p50, p99).",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
