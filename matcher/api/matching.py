"""Matches for the service, read from the current snapshot of the store (:mod:`matcher.snapshot`).

A request takes the snapshot once and reads only it. Answers are remembered on the snapshot, as
JSON bytes, so a volunteer who opens the same household twice costs one ranking; the next write
(from any process) makes the next snapshot, whose answers are computed afresh.
"""

from __future__ import annotations

import threading

import numpy as np
from flask import Response, current_app

from matcher.api.errors import not_found
from matcher.api.runtime import runtime
from matcher.api.schemas import HouseholdMatches, WorkerMatches
from matcher.eligibility import job_pairs
from matcher.ranking import Contention, score_pairs
from matcher.store import queries


def _remember(snap, key: tuple, compute, schema) -> bytes | None:
    """The answer as JSON bytes, remembered on the snapshot.

    Kept as bytes, not as nested dicts and lists: thousands of remembered answers would
    otherwise be millions of objects for the garbage collector to walk, and a hit needs no
    encoding at all.
    """
    app = current_app._get_current_object()

    def encoded(snap):
        out = compute(snap)
        if out is None:
            return None
        if app.config.get("VALIDATE_RESPONSES"):      # fields left out stay out (contention before a plan)
            out = schema.model_validate(out).model_dump(mode="json", exclude_unset=True)
        return app.json.dumps(out).encode("utf-8")

    return runtime().snapshots.remember(snap, key, encoded)


def _json(body: bytes) -> Response:
    return Response(body, mimetype="application/json")


_prices_lock = threading.Lock()
_prices: dict = {}      # (id of the database engine, plan id) -> {job_id: (contention, plan_assigned)}


def contention(snap) -> Contention | None:
    """The snapshot's newest plan's prices on its job rows (None before any plan); read once per process."""
    plan_id = snap.plan_id
    if plan_id is None:
        return None
    db = runtime().engine
    key = (id(db), plan_id)
    prices = _prices.get(key)
    if prices is None:
        prices = queries.job_prices(db, plan_id)
        with _prices_lock:
            _prices.clear()
            _prices[key] = prices
    if not prices:
        return None
    by_rows = snap.memo.get("contention")
    if by_rows is None or by_rows[0] != plan_id:
        by_rows = snap.memo["contention"] = (plan_id, Contention.of(snap.J.ids, prices))
    return by_rows[1]


def worker_matches(worker_id: str, k: int, order: str = "score") -> Response:
    snap = runtime().snapshot()

    def compute(snap):
        if snap.ranker.row_of(worker_id) is None:
            return None
        out = snap.ranker.worker_matches(worker_id, k, contention(snap), order)
        return {"worker_id": out["worker_id"], "model_version": snap.loaded.version,
                **{key: out[key] for key in ("matches", "fallback", "training", "notes", "fallback_reason")}}
    body = _remember(snap, ("worker", worker_id, k, order), compute, WorkerMatches)
    if body is None:
        raise not_found("worker")
    return _json(body)


def household_matches(household_id: str, k: int, order: str = "score") -> Response:
    """The household's plan and members' matches, each member with this year's 311 counts (a referral or a
    visit is a change in the store's log, so the next snapshot's answers count it)."""
    import datetime as dt

    from matcher.api.visits import member_standards
    snap = runtime().snapshot()
    year = dt.date.today().year

    def compute(snap):
        out = snap.ranker.household_matches(household_id, k, contention(snap), order)
        standards = member_standards(household_id, year)
        members = [dict(m, service_standard=standards.get(m["worker_id"])) for m in out["members"]]
        return {"household_id": household_id, "model_version": snap.loaded.version, "plan": out["plan"],
                "members": members}
    return _json(_remember(snap, ("household", household_id, k, order, year), compute, HouseholdMatches))


def age_band(age: int) -> str:
    lo = (int(age) // 10) * 10
    return f"{lo}-{lo + 9}"


def candidates(job_id: str, k: int) -> dict:
    """The eligible seekers ranked by predicted P(hire), with nothing that names a person."""
    snap = runtime().snapshot()
    W, J, loaded = snap.W, snap.J, snap.loaded
    out = {"job_id": job_id, "model_version": loaded.version, "candidates": []}
    j = snap.job_rows.get(job_id)
    if j is None or not J.open[j] or not len(W):
        return out
    p = job_pairs(W, J, snap.policy, np.array([j]))
    if not len(p):
        return out
    sc = score_pairs(loaded.model, W, J, p)
    scores = sc.score
    order = np.lexsort((np.nan_to_num(p.distance_km, nan=0.0), -scores))[:k]
    required = list(J.skill_index.decode(J.skills[j]))
    items = []
    for rank, i in enumerate(order, start=1):
        w = int(p.w[i])
        matched = list(J.skill_index.decode(W.skills[w] & J.skills[j]))
        dist_i = p.distance_km[i]
        items.append({
            "rank": rank,
            "age_band": age_band(W.age[w]),
            "distance_km": None if np.isnan(dist_i) else round(float(dist_i), 1),
            "skills_fit": {"required": required, "matched": matched,
                           "coverage": round(len(matched) / len(required), 3) if required else 1.0},
            "score": round(float(scores[i]), 4),
            "fallback_eligible": bool(W.fallback[w]),
        })
    out["candidates"] = items
    return out
