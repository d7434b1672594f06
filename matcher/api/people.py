"""Households and workers: admins add them; volunteers (in their county) and admins get matches.

Every read of a household's or a worker's data is written to the audit log.
"""

from __future__ import annotations

from flask import Blueprint

from matcher.api import matching
from matcher.api.auth import audit, require_scope
from matcher.api.errors import conflict, invalid, not_found
from matcher.api.jobs import MAX_K, checked_row
from matcher.api.openapi import Reply, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import (Household, HouseholdIn, HouseholdMatches, MatchesQuery, Worker, WorkerIn,
                                 WorkerMatches, plausible_id)
from matcher.store import queries

bp = Blueprint("people", __name__, url_prefix="/api/v1")
MATCHERS = ("volunteer", "admin")


@endpoint(bp, "/households", "POST", summary="Add a household", roles=("admin",), body=HouseholdIn,
          response=Household, status=201, errors=(409,), response_headers={"Location": "the household's matches"})
def post_household(body: HouseholdIn):
    row = checked_row("households", body.model_dump())
    if not queries.insert_row(runtime().engine, "households", row):
        raise conflict(f"household {row['household_id']!r} exists already", "household_id")
    audit("household.create", "household", row["household_id"], 201)
    return Reply(row, 201, {"Location": f"/api/v1/households/{row['household_id']}/matches"})


@endpoint(bp, "/workers", "POST", summary="Add a worker to a household", roles=("admin",), body=WorkerIn,
          response=Worker, status=201, errors=(409,), response_headers={"Location": "the worker's matches"})
def post_worker(body: WorkerIn):
    engine = runtime().engine
    row = checked_row("workers", body.model_dump())
    if queries.get_household(engine, row["household_id"]) is None:
        raise invalid(f"household_id: no household {row['household_id']!r}", "household_id")
    if not queries.insert_row(engine, "workers", row):
        if queries.get_household(engine, row["household_id"]) is None:
            raise invalid(f"household_id: no household {row['household_id']!r}", "household_id")
        raise conflict(f"worker {row['worker_id']!r} exists already", "worker_id")
    audit("worker.create", "worker", row["worker_id"], 201)
    out = dict(row, skills=[t for t in row["skills"].split(";") if t])
    return Reply(out, 201, {"Location": f"/api/v1/workers/{row['worker_id']}/matches"})


@endpoint(bp, "/workers/<worker_id>/matches", summary="A worker's ranked jobs, fallback posts and training "
          "suggestions", roles=MATCHERS, query=MatchesQuery, response=WorkerMatches,
          path_params={"worker_id": "the worker's id"}, errors=(503,))
def worker_matches(worker_id: str, query: MatchesQuery):
    worker = queries.get_worker(runtime().engine, worker_id) if plausible_id(worker_id) else None
    if worker is None:
        raise not_found("worker")
    require_scope(worker["county_code"], "worker", worker_id, village_code=worker["village_code"])
    runtime().models.require()
    out = matching.worker_matches(worker_id, min(query.k, MAX_K), query.order)
    audit("worker.matches", "worker", worker_id)
    return out


@endpoint(bp, "/households/<household_id>/matches", summary="The household plan, each member's ranked jobs, "
          "fallback posts and training suggestions", roles=MATCHERS, query=MatchesQuery, response=HouseholdMatches,
          path_params={"household_id": "the household's id"}, errors=(503,))
def household_matches(household_id: str, query: MatchesQuery):
    household = queries.get_household(runtime().engine, household_id) if plausible_id(household_id) else None
    if household is None:
        raise not_found("household")
    require_scope(household["county_code"], "household", household_id, village_code=household["village_code"])
    runtime().models.require()
    out = matching.household_matches(household_id, min(query.k, MAX_K), query.order)
    audit("household.matches", "household", household_id)
    return out
