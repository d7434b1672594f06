"""Locust users for bench/bench_load.py: a volunteer's and a recruiter's mixed traffic at a fixed rate.

Not run on its own: bench/bench_load.py starts `locust --headless -f bench/locust_mixed.py` with
LOAD_PLAN pointing at a JSON file (tokens by role, households and seeking workers by county),
LOAD_RATE (task runs per second per user) and LOAD_MIX (a key of MIXES). Each request is tagged by what it does; a 409 (the job filled
up, the worker was hired elsewhere) is a right answer under contention, anything else outside 2xx is
a failure, and a 5xx or a connection error is an error.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque

from locust import constant_throughput
from locust.contrib.fasthttp import FastHttpUser

PLAN = json.loads(open(os.environ["LOAD_PLAN"], encoding="utf-8").read())
RATE = float(os.environ.get("LOAD_RATE", "5"))
PENDING: deque = deque(maxlen=5000)      # referrals waiting for an outcome, shared by this process's users


def _check(resp, ok=(200, 201), conflict_ok=False):
    if resp.status_code in ok or (conflict_ok and resp.status_code == 409):
        resp.success()
    else:
        resp.failure(f"HTTP {resp.status_code}")


# Task weights per traffic mix (LOAD_MIX): how often each volunteer and recruiter action comes up,
# and the share of users who are recruiters. "everyday": nine requests in ten read a household's or a
# worker's matches, a few in a hundred refer or record an outcome, a recruiter posts now and then (a
# couple of store changes a second). "reads-only": the same reads and nothing else, to tell the cost of
# the writes from that of the load generator. "write-heavy": a referral or an outcome every few
# requests and a vacancy posted every few seconds per recruiter (some twenty store changes a second).
MIXES = {
    "everyday": {"volunteer": {"household_matches": 140, "worker_matches": 36, "list_jobs": 12, "refer": 4,
                               "outcome": 3},
                 "recruiter": {"post_job": 1, "candidates": 6, "list_mine": 6}, "recruiter_share": 1 / 16},
    "reads-only": {"volunteer": {"household_matches": 140, "worker_matches": 36, "list_jobs": 12},
                   "recruiter": {"list_mine": 1}, "recruiter_share": 1 / 16},
    "write-heavy": {"volunteer": {"household_matches": 60, "worker_matches": 16, "list_jobs": 4, "refer": 8,
                                  "outcome": 6},
                    "recruiter": {"post_job": 3, "candidates": 5, "list_mine": 2}, "recruiter_share": 1 / 10},
}
MIX = MIXES[os.environ.get("LOAD_MIX", "everyday")]


class VolunteerActions(FastHttpUser):
    """Household and worker matches, referrals and their outcomes, in the volunteer's county."""

    abstract = True
    wait_time = constant_throughput(RATE)

    def on_start(self):
        county = random.choice(sorted(PLAN["volunteers"]))
        self.county = county
        self.headers = {"Authorization": f"Bearer {random.choice(PLAN['volunteers'][county])}"}
        self.households = PLAN["households"][county]
        self.workers = PLAN["workers"][county]

    def household_matches(self):
        hid = random.choice(self.households)
        with self.client.get(f"/api/v1/households/{hid}/matches?k={random.choice((5, 10, 20))}",
                             headers=self.headers, name="household matches", catch_response=True) as r:
            _check(r)

    def worker_matches(self):
        wid = random.choice(self.workers)
        with self.client.get(f"/api/v1/workers/{wid}/matches?k=10", headers=self.headers, name="worker matches",
                             catch_response=True) as r:
            _check(r)

    def refer(self):
        wid = random.choice(self.workers)
        with self.client.get(f"/api/v1/workers/{wid}/matches?k=3", headers=self.headers, name="worker matches",
                             catch_response=True) as r:
            _check(r)
            matches = r.json().get("matches", []) if r.status_code == 200 else []
        if not matches:
            return
        with self.client.post("/api/v1/referrals", json={"worker_id": wid, "job_id": matches[0]["job_id"]},
                              headers=self.headers, name="refer", catch_response=True) as r:
            _check(r, conflict_ok=True)
            if r.status_code == 201:
                PENDING.append((self.headers, r.json()["referral_id"]))

    def outcome(self):
        if not PENDING:
            return
        headers, rid = PENDING.popleft()
        body = {"outcome": "hired"} if random.random() < 0.7 else {"outcome": "declined", "reason": "wage"}
        with self.client.patch(f"/api/v1/referrals/{rid}", json=body, headers=headers,
                               name="outcome (70% hired)", catch_response=True) as r:
            _check(r, ok=(200,), conflict_ok=True)

    def list_jobs(self):
        with self.client.get(f"/api/v1/jobs?county_code={self.county}&status=open&per_page=50",
                             headers=self.headers, name="list jobs", catch_response=True) as r:
            _check(r)


class RecruiterActions(FastHttpUser):
    """Posts vacancies near the households of a county and looks at their candidates."""

    abstract = True
    wait_time = constant_throughput(RATE)

    def on_start(self):
        self.headers = {"Authorization": f"Bearer {random.choice(PLAN['recruiters'])}"}
        self.mine: list[str] = []

    def post_job(self):
        county = random.choice(sorted(PLAN["places"]))
        lat, lon = random.choice(PLAN["places"][county])
        body = {"employer": "压测车间", "title": random.choice(["缝纫工", "分拣包装", "柳编", "保洁"]),
                "kind": random.choice(["workshop_factory", "enterprise", "workshop_home"]),
                "lat": round(lat + random.uniform(-0.02, 0.02), 5), "lon": round(lon + random.uniform(-0.02, 0.02), 5),
                "county_code": county, "slots": random.randint(1, 3), "monthly_wage": random.choice([2200, 2800, 3500]),
                "min_age": 18, "max_age": 60}
        with self.client.post("/api/v1/jobs", json=body, headers=self.headers, name="post job",
                              catch_response=True) as r:
            _check(r, ok=(201,))
            if r.status_code == 201:
                self.mine.append(r.json()["job_id"])

    def candidates(self):
        if not self.mine:
            return self.list_mine()
        with self.client.get(f"/api/v1/jobs/{random.choice(self.mine)}/candidates?k=20", headers=self.headers,
                             name="candidates", catch_response=True) as r:
            _check(r)

    def list_mine(self):
        with self.client.get("/api/v1/jobs?mine=true&per_page=20", headers=self.headers, name="list jobs",
                             catch_response=True) as r:
            _check(r)


# The users locust runs: the actions above, weighted by the mix.
Volunteer = type("Volunteer", (VolunteerActions,), {
    "weight": round(1000 * (1 - MIX["recruiter_share"])),
    "tasks": {getattr(VolunteerActions, name): w for name, w in MIX["volunteer"].items()}})
Recruiter = type("Recruiter", (RecruiterActions,), {
    "weight": round(1000 * MIX["recruiter_share"]),
    "tasks": {getattr(RecruiterActions, name): w for name, w in MIX["recruiter"].items()}})
