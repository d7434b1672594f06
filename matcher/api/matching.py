"""Matches for the service: the engine over the cached job arrays and the asked-for people only.

The expensive part, the prepared jobs, is cached per process and rebuilt when the jobs'
version in the database changes; the workers are read per request (a household is a few
rows), so a hire or a new vacancy shows in the very next answer.
"""

from __future__ import annotations

import threading

import numpy as np

from matcher.api.errors import not_found
from matcher.api.runtime import runtime
from matcher.eligibility import KIND, Pairs, WorkerArrays, eligible_mask
from matcher.features import pair_features, skill_overlap
from matcher.geo import haversine_km
from matcher.ranking import Engine
from matcher.store import queries

_seekers_lock = threading.Lock()


def _household_engine(household_id: str):
    rt = runtime()
    loaded = rt.models.require()
    frames = queries.household_frames(rt.engine, household_id)
    if frames is None:
        return None, loaded
    households, workers = frames
    J = rt.jobs.get(rt.engine)
    W = WorkerArrays.build(workers, households, rt.policy, J.skill_index, J.words)
    return Engine(W, J, loaded.model, rt.policy), loaded


def worker_matches(worker_id: str, household_id: str, k: int) -> dict:
    engine, loaded = _household_engine(household_id)
    if engine is None or worker_id not in set(engine.W.ids):
        raise not_found("worker")
    out = engine.worker_matches(worker_id, k)
    return {"worker_id": out["worker_id"], "model_version": loaded.version, **{
        key: out[key] for key in ("matches", "fallback", "training", "notes")}}


def household_matches(household_id: str, k: int) -> dict:
    engine, loaded = _household_engine(household_id)
    if engine is None:
        raise not_found("household")
    out = engine.household_matches(household_id, k)
    return {"household_id": household_id, "model_version": loaded.version, "plan": out["plan"],
            "members": out["members"]}


def _seekers(J):
    """Arrays of every worker seeking a job, cached per (workers' version, job arrays)."""
    rt = runtime()
    version = (queries.workers_version(rt.engine), id(J))
    cached = getattr(rt, "_seekers", None)
    if cached is not None and cached[0] == version:
        return cached[1]
    with _seekers_lock:
        households, workers = queries.seeker_frames(rt.engine)
        W = WorkerArrays.build(workers, households, rt.policy, J.skill_index, J.words)
        rt._seekers = (version, W)
        return W


def age_band(age: int) -> str:
    lo = (int(age) // 10) * 10
    return f"{lo}-{lo + 9}"


def candidates(job_id: str, k: int) -> dict:
    """The eligible seekers ranked by predicted P(hire), with nothing that names a person."""
    rt = runtime()
    loaded = rt.models.require()
    J = rt.jobs.get(rt.engine)
    hits = np.flatnonzero(J.ids == job_id)
    out = {"job_id": job_id, "model_version": loaded.version, "candidates": []}
    if not len(hits) or not J.open[hits[0]]:
        return out
    j = int(hits[0])
    W = _seekers(J)
    if not len(W):
        return out
    if J.kind[j] == KIND["out_of_county"]:
        rows = np.flatnonzero(W.available & W.will_migrate)
        d = np.full(len(rows), np.nan)
    else:
        dist = haversine_km(W.lat, W.lon, J.lat[j], J.lon[j])
        reach = np.maximum(W.commute_km, rt.policy.commute.home_delivery_km)
        rows = np.flatnonzero(W.available & (dist <= reach))
        d = dist[rows]
    p = Pairs(rows.astype(np.int64), np.full(len(rows), j, dtype=np.int64), d)
    p = p.take(eligible_mask(W, J, p, rt.policy))
    if not len(p):
        return out
    covered, _ = skill_overlap(W, J, p)
    scores = loaded.model.score(pair_features(W, J, p, covered))
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
