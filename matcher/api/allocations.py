"""City-wide plans: computed and stored by evaluators and admins, read by volunteers for their county.

The plan is :func:`matcher.allocation.allocate` over the whole stored world with the model in
use; its rows and summary are stored (a snapshot: later hires do not change a stored plan).
"""

from __future__ import annotations

import json

import numpy as np
from flask import Blueprint, g

from matcher import allocation, snapshot
from matcher.api.auth import audit, scope_villages
from matcher.api.errors import not_found
from matcher.api.openapi import Reply, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import Allocation, AllocationIn
from matcher.store import queries

bp = Blueprint("allocations", __name__, url_prefix="/api/v1/allocations")


def _plain(o):
    """JSON for numpy scalars and arrays inside a summary."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if np.isnan(o) else float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _empty_summary(whole: dict) -> dict:
    """A county with no worker in the plan's world: nothing to show but how the plan was made."""
    return {k: whole[k] for k in ("method", "model_version", "optimality", "seconds") if k in whole}


def village_summary(plan: dict) -> dict:
    """What a volunteer narrowed to villages may see of a plan's summary: the figures of its own rows
    (the county's figures count the other villages' households)."""
    rows, whole = plan["rows"], plan["summary"]
    return dict(_empty_summary(whole), note=whole.get("note"), villages_only=True,
                households_placed=len({r["household_id"] for r in rows}), workers_placed=len(rows),
                subsidy_yuan=round(sum(r["subsidy_yuan"] for r in rows), 2))


@endpoint(bp, "", "POST", summary="Compute and store a city-wide plan", roles=("evaluator", "admin"),
          description="One plan for the whole city (SPEC section 4, `matcher allocate`), with the model in use, "
                      "stored as a snapshot. Can take a while on a large world.",
          body=AllocationIn, response=Allocation, status=201, errors=(503,),
          response_headers={"Location": "the stored plan's URL"})
def post_allocation(body: AllocationIn):
    rt = runtime()
    snap = rt.snapshot()
    if not snap.in_id_order:          # rows added since the last whole build: plan on the world as a build orders it
        snap = snapshot.build(rt.engine, rt.policy, snap.loaded)
    loaded = snap.loaded
    plan = allocation.allocate(snap.ranker, prices=True)
    summary = json.loads(json.dumps(dict(plan.summary, note=body.note), default=_plain))
    if plan.prices is not None:       # contention for the match items (SPEC section 8), not shown with the plan
        p = plan.prices
        summary[queries.JOB_PRICES] = {str(j): [float(c), int(n)] for j, c, n in
                                       zip(p["job_id"], p["contention"], p["plan_assigned"])}
    rows = plan.rows
    records = [{"household_id": str(r.household_id), "worker_id": str(r.worker_id), "job_id": str(r.job_id),
                "county_code": str(r.county_code) if r.county_code else None, "score": float(r.score),
                "tier": str(r.tier), "subsidy_yuan": float(r.subsidy_yuan),
                "reasons": " | ".join(r.reasons) if isinstance(r.reasons, (list, tuple)) else str(r.reasons or "")}
               for r in rows.itertuples(index=False)]
    allocation_id = queries.store_allocation(rt.engine, created_by=g.token.name, model_version=loaded.version,
                                             summary=summary, rows=records)
    audit("allocation.create", "allocation", str(allocation_id), 201)
    return Reply(queries.get_allocation(rt.engine, allocation_id), 201,
                 {"Location": f"/api/v1/allocations/{allocation_id}"})


@endpoint(bp, "/<int:allocation_id>", summary="Read a stored plan (volunteers: the rows and figures of their scope only)",
          roles=("volunteer", "evaluator", "admin"), response=Allocation,
          path_params={"allocation_id": "the plan's id"})
def get_allocation(allocation_id: int):
    tok = g.token
    county = tok.county_code if tok.role == "volunteer" else None
    if allocation_id > 2**31 - 1:
        raise not_found("allocation")
    plan = queries.get_allocation(runtime().engine, allocation_id, county_code=county, villages=scope_villages())
    if plan is None:
        raise not_found("allocation")
    if county is not None and scope_villages():
        plan["summary"] = village_summary(plan)
    elif county is not None:
        # the county's own figures, never the city's (its uncovered villages name other counties' people)
        whole = plan["summary"]
        plan["summary"] = dict(whole.get("by_county", {}).get(county) or _empty_summary(whole), note=whole.get("note"))
    audit("allocation.read", "allocation", str(allocation_id))
    return plan
