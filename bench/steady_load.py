"""The everyday profile of bench/bench_load.py --steady: readers asking for household matches, with or
without a writer posting a job every second and a referral with its hire every two seconds.

Readers are processes (one keep-alive connection each, random households, every answer timed); the writer
is a thread of the main process. After each post the writer waits one second and asks for the
matches of a household next to the new job eight times: each answer must carry the job, so that every
worker process (the kernel spreads connections between them) has seen it within the second.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import random
import threading
import time
from urllib.parse import urlparse


def _conn(base: str) -> http.client.HTTPConnection:
    u = urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=10)


def call(conn, method: str, path: str, token: str, body=None):
    headers = {"Authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, raw


def _reader(base: str, token: str, households: list[str], seconds: float, seed: int, out) -> None:
    rng = random.Random(seed)
    conn = _conn(base)
    lat, errors = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        h = households[rng.randrange(len(households))]
        t = time.perf_counter()
        try:
            status, _ = call(conn, "GET", f"/api/v1/households/{h}/matches", token)
        except OSError:
            errors += 1
            conn.close()
            conn = _conn(base)
            continue
        lat.append(time.perf_counter() - t)
        if status >= 500:
            errors += 1
    out.put({"lat": lat, "errors": errors})


def _has_job(raw: bytes, job_id: str) -> bool:
    body = json.loads(raw)
    return any(it["job_id"] == job_id for m in body.get("members", []) for key in ("matches", "fallback")
               for it in m[key])


class Writer(threading.Thread):
    """A job posted every second (and seen by every process within a second?), a referral and its hire
    every two seconds."""

    def __init__(self, base: str, token: str, seekers: list[dict], job: dict, seconds: float):
        super().__init__(daemon=True)
        self.base, self.token, self.seekers, self.job, self.seconds = base, token, seekers, job, seconds
        self.stats = {"posts": 0, "seen_within_1s": 0, "referrals": 0, "hires": 0, "conflicts": 0, "errors": 0,
                      "write_ms": []}

    def _write(self, conn, method, path, body):
        t = time.perf_counter()
        status, raw = call(conn, method, path, self.token, body)
        self.stats["write_ms"].append((time.perf_counter() - t) * 1000)
        if status >= 500:
            self.stats["errors"] += 1
        return status, raw

    def run(self) -> None:
        conn = _conn(self.base)
        rng = random.Random(1)
        start = time.monotonic()
        tick = 0
        while time.monotonic() - start < self.seconds:
            due = start + tick
            time.sleep(max(0.0, due - time.monotonic()))
            s = self.seekers[rng.randrange(len(self.seekers))]
            job_id = f"JLOAD{tick:05d}{rng.randrange(10**6):06d}"
            status, _ = self._write(conn, "POST", "/api/v1/jobs", dict(
                self.job, job_id=job_id, lat=s["lat"] + 0.002, lon=s["lon"], county_code=s["county_code"],
                town_code=s["town_code"], village_code=s["village_code"] or None))
            if status == 201:
                self.stats["posts"] += 1
                threading.Timer(1.0, self._check_seen, (s["household_id"], job_id)).start()
            if tick % 2 == 0:
                self._refer_and_hire(conn, rng)
            tick += 1

    def _check_seen(self, household_id: str, job_id: str) -> None:
        conn = _conn(self.base)
        seen = 0
        for _ in range(8):
            status, raw = call(conn, "GET", f"/api/v1/households/{household_id}/matches?k=100", self.token)
            seen += status == 200 and _has_job(raw, job_id)
        self.stats["seen_within_1s"] += seen == 8
        conn.close()

    def _refer_and_hire(self, conn, rng) -> None:
        s = self.seekers[rng.randrange(len(self.seekers))]
        status, raw = call(conn, "GET", f"/api/v1/workers/{s['worker_id']}/matches?k=5", self.token)
        if status != 200:
            return
        body = json.loads(raw)
        options = body["matches"] or body["fallback"]
        if not options:
            return
        status, raw = self._write(conn, "POST", "/api/v1/referrals",
                                  {"worker_id": s["worker_id"], "job_id": options[0]["job_id"]})
        if status != 201:
            self.stats["conflicts"] += status == 409
            return
        self.stats["referrals"] += 1
        rid = json.loads(raw)["referral_id"]
        status, _ = self._write(conn, "PATCH", f"/api/v1/referrals/{rid}", {"outcome": "hired"})
        self.stats["hires"] += status == 200
        self.stats["conflicts"] += status == 409


def phase(base: str, token: str, households: list[str], readers: int, seconds: float, writer: Writer | None):
    """``readers`` reader processes for ``seconds`` (and the writer beside them); the readers' figures."""
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_reader, args=(base, token, households, seconds, i, out)) for i in range(readers)]
    for p in procs:
        p.start()
    if writer is not None:
        writer.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    if writer is not None:
        writer.join()
        time.sleep(1.5)           # the last freshness checks
    lat = sorted(x for r in results for x in r["lat"])
    n = len(lat)
    return {"requests": n, "rps": n / seconds, "p50_ms": lat[n // 2] * 1000 if n else None,
            "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1000 if n else None,
            "errors": sum(r["errors"] for r in results)}
