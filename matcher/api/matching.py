"""Matches for the service, from the engine over every job and worker, cached per process.

The prepared arrays are rebuilt only when the store's fingerprint changes (a new job, a
change, a hire, a new worker), so a vacancy posted through any worker process shows in the
very next answer of every process, and a request costs one cheap query plus the ranking.
Answers are remembered, as JSON bytes, until the fingerprint or the model changes (a volunteer
who opens the same household twice costs one ranking).
"""

from __future__ import annotations

import numpy as np

from flask import Response, current_app

import threading

from matcher.api.errors import not_found
from matcher.api.runtime import runtime
from matcher.api.schemas import HouseholdMatches, WorkerMatches
from matcher.eligibility import KIND, Pairs, eligible_mask
from matcher.ranking import Contention
from matcher.store import queries
from matcher.features import skill_overlap
from matcher.geo import haversine_km


def ranker():
    rt = runtime()
    loaded = rt.models.require()
    return rt.world.engine(rt.engine, rt.policy, loaded), loaded


def _remember(key: tuple, compute, schema) -> bytes | None:
    """The answer as JSON bytes, remembered until the store or the model changes.

    Kept as bytes, not as nested dicts and lists: thousands of remembered answers would
    otherwise be millions of objects for the garbage collector to walk, and a hit needs no
    encoding at all.
    """
    rt = runtime()
    loaded = rt.models.require()
    app = current_app._get_current_object()

    def encoded(engine):
        out = compute(engine, loaded)
        if out is None:
            return None
        if app.config.get("VALIDATE_RESPONSES"):      # fields left out stay out (contention before a plan)
            out = schema.model_validate(out).model_dump(mode="json", exclude_unset=True)
        return app.json.dumps(out).encode("utf-8")

    return rt.world.remember(rt.engine, rt.policy, loaded, key, encoded)


def _json(body: bytes) -> Response:
    return Response(body, mimetype="application/json")


_prices_lock = threading.Lock()
_prices: dict = {}      # (id of the database engine, plan id) -> {job_id: (contention, plan_assigned)}


def contention(engine, plan_id: int | None) -> Contention | None:
    """Plan ``plan_id``'s prices on the ranker's job rows (None before any plan); read once per process."""
    db = runtime().engine
    if plan_id is None:
        return None
    key = (id(db), plan_id)
    prices = _prices.get(key)
    if prices is None:
        prices = queries.job_prices(db, plan_id)
        with _prices_lock:
            _prices.clear()
            _prices[key] = prices
    if not prices:
        return None
    by_rows = getattr(engine, "_contention", None)
    if by_rows is None or by_rows[0] != plan_id:
        by_rows = (plan_id, Contention.of(engine.J.ids, prices))
        engine._contention = by_rows
    return by_rows[1]


def worker_matches(worker_id: str, k: int, order: str = "score") -> Response:
    plan_id = _plan_id()

    def compute(engine, loaded):
        if worker_id not in engine._row:
            return None
        out = engine.worker_matches(worker_id, k, contention(engine, plan_id), order)
        return {"worker_id": out["worker_id"], "model_version": loaded.version,
                **{key: out[key] for key in ("matches", "fallback", "training", "notes", "fallback_reason")}}
    body = _remember(("worker", worker_id, k, order, plan_id), compute, WorkerMatches)
    if body is None:
        raise not_found("worker")
    return _json(body)


def household_matches(household_id: str, k: int, order: str = "score") -> Response:
    """The household's plan and members' matches, each member with this year's 311 counts."""
    import datetime as dt

    from matcher.api.visits import member_standards
    from matcher.store.visits import services_version
    plan_id = _plan_id()
    year = dt.date.today().year
    served = services_version(runtime().engine)      # a referral or a visit changes the members' counts

    def compute(engine, loaded):
        out = engine.household_matches(household_id, k, contention(engine, plan_id), order)
        standards = member_standards(household_id, year)
        members = [dict(m, service_standard=standards.get(m["worker_id"])) for m in out["members"]]
        return {"household_id": household_id, "model_version": loaded.version, "plan": out["plan"],
                "members": members}
    return _json(_remember(("household", household_id, k, order, plan_id, year, served), compute,
                           HouseholdMatches))


def _plan_id() -> int | None:
    """Part of a remembered answer's key: a newly stored plan changes every item's contention."""
    return queries.latest_allocation_id(runtime().engine)


def age_band(age: int) -> str:
    lo = (int(age) // 10) * 10
    return f"{lo}-{lo + 9}"


def candidates(job_id: str, k: int) -> dict:
    """The eligible seekers ranked by predicted P(hire), with nothing that names a person."""
    engine, loaded = ranker()
    W, J, policy = engine.W, engine.J, engine.policy
    hits = np.flatnonzero(J.ids == job_id)
    out = {"job_id": job_id, "model_version": loaded.version, "candidates": []}
    if not len(hits) or not J.open[hits[0]] or not len(W):
        return out
    j = int(hits[0])
    if J.kind[j] == KIND["out_of_county"]:
        rows = np.flatnonzero(W.available & W.will_migrate)
        d = np.full(len(rows), np.nan)
    else:
        dist = haversine_km(W.lat, W.lon, J.lat[j], J.lon[j])
        reach = np.maximum(W.commute_km, policy.commute.home_delivery_km)
        rows = np.flatnonzero(W.available & (dist <= reach))
        d = dist[rows]
    p = Pairs(rows.astype(np.int64), np.full(len(rows), j, dtype=np.int64), d)
    p = p.take(eligible_mask(W, J, p, policy))
    if not len(p):
        return out
    covered, _ = skill_overlap(W, J, p)
    scores = loaded.model.score(loaded.model.matrix(W, J, p, covered))
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
