"""Visits to households and the 311 standard (SPEC section 7).

- ``POST /api/v1/households/{id}/visits``: a volunteer in scope (or an admin) records a visit and the
  services given at it to members of that household (guidance, a training offer, a job offer).
- ``GET /api/v1/households/{id}/visits``: the household's visits, newest first.
- ``GET /api/v1/service-standard``: per person able and willing to work, this year's job offers,
  guidance and training offers against the 311 standard, with the totals (JSON or CSV).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid

from flask import Blueprint, Response, g

from matcher.api.auth import audit, require_scope, scope_villages
from matcher.api.errors import invalid, not_found
from matcher.api.openapi import Reply, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import ServiceStandard, StandardQuery, Visit, VisitIn, Visits, plausible_id
from matcher.service_standard import COLUMNS, least_served_first, service_standard, totals
from matcher.store import queries
from matcher.store import visits as store

bp = Blueprint("visits", __name__, url_prefix="/api/v1")
MATCHERS = ("volunteer", "admin")
FIRST_DAY = dt.date(2015, 1, 1)
HOUSEHOLD_ID = {"household_id": "the household's id"}


def _household(household_id: str) -> dict:
    household = queries.get_household(runtime().engine, household_id) if plausible_id(household_id) else None
    if household is None:
        raise not_found("household")
    require_scope(household["county_code"], "household", household_id, village_code=household["village_code"])
    return household


@endpoint(bp, "/households/<household_id>/visits", "POST", summary="Record a visit to a household",
          description="`visited_on` is not in the future nor before 2015; every service's `worker_id` is a "
                      "member of this household, and a (worker, kind) appears once per visit.",
          roles=MATCHERS, body=VisitIn, response=Visit, status=201, path_params=HOUSEHOLD_ID,
          response_headers={"Location": "the household's visits"})
def post_visit(household_id: str, body: VisitIn):
    _household(household_id)
    today = dt.date.today()
    if body.visited_on > today:
        raise invalid(f"visited_on: {body.visited_on} is in the future", "visited_on")
    if body.visited_on < FIRST_DAY:
        raise invalid(f"visited_on: {body.visited_on} is before {FIRST_DAY}", "visited_on")
    engine = runtime().engine
    members = set(queries.household_members(engine, household_id))
    seen = set()
    for i, s in enumerate(body.services):
        if s.worker_id not in members:
            raise invalid(f"services: services[{i}].worker_id {s.worker_id!r} is not a member of household "
                          f"{household_id!r}", "services")
        if (s.worker_id, s.kind) in seen:
            raise invalid(f"services: services[{i}] repeats {s.kind} for {s.worker_id!r} in one visit", "services")
        seen.add((s.worker_id, s.kind))
    visit_id = f"V{uuid.uuid4().hex[:16]}"
    store.insert_visit(engine, visit_id=visit_id, household_id=household_id, visited_on=body.visited_on,
                       note=body.note, services=[(s.worker_id, s.kind) for s in body.services],
                       created_by=g.token.name, recorded_by=g.token.display_name)
    audit("visit.create", "household", household_id, 201)
    visit = store.household_visits(engine, household_id, visit_id)[0]
    return Reply(visit, 201, {"Location": f"/api/v1/households/{household_id}/visits"})


@endpoint(bp, "/households/<household_id>/visits", summary="A household's visits, newest first",
          roles=MATCHERS, response=Visits, path_params=HOUSEHOLD_ID)
def get_visits(household_id: str):
    _household(household_id)
    audit("visit.list", "household", household_id)
    return {"items": store.household_visits(runtime().engine, household_id)}


def _csv(items: list[dict]) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for item in items:
        writer.writerow([("true" if item[c] else "false") if c == "meets_311" else
                         ("" if item[c] is None else item[c]) for c in COLUMNS])
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=service-standard.csv"})


@endpoint(bp, "/service-standard", summary="The 311 standard: per person, this year's job offers, guidance and "
          "training offers",
          description="People counted: those able and willing to work who are not employed (labour capacity not "
                      "none, wanting a job). Job offers are the referrals made in the year and the job offers "
                      "recorded at visits; the standard is met with 3 job offers, 1 guidance and 1 training offer. "
                      "A volunteer sees its own scope (county, or villages) only: another county answers no one. "
                      "`below=true` keeps those not meeting it; `sort` orders by a column (default: least served "
                      "first); `format=csv` answers text/csv with the items' columns.",
          roles=("volunteer", "evaluator", "admin"), query=StandardQuery, response=ServiceStandard, csv_response=True)
def get_service_standard(query: StandardQuery):
    tok = g.token
    year = query.year or dt.date.today().year
    county = query.county_code
    if tok.role == "volunteer":
        if county not in (None, tok.county_code) or tok.county_code is None:
            return _answer(query, year, county, [])             # another county: no one in scope
        county = tok.county_code
    table = service_standard(*store.standard_frames(runtime().engine, year, county_code=county,
                                                    villages=scope_villages()), year)
    if query.below:
        table = table[~table["meets_311"]]
    audit("service_standard.read", "place", county or "all")
    return _answer(query, year, county, records(least_served_first(table, query.sort)))


def records(table) -> list[dict]:
    """Rows of a 311 table as plain Python values (ints and bools, not numpy's)."""
    return [{"worker_id": str(r.worker_id), "household_id": str(r.household_id), "village_code": r.village_code,
             "job_offers": int(r.job_offers), "guidance": int(r.guidance), "training_offers": int(r.training_offers),
             "meets_311": bool(r.meets_311)} for r in table.itertuples(index=False)]


def _answer(query: StandardQuery, year: int, county: str | None, items: list[dict]):
    if query.format == "csv":
        return _csv(items)
    return {"year": year, "county_code": county, "items": items, "totals": totals(items)}


def member_standards(household_id: str, year: int | None = None) -> dict[str, dict]:
    """This year's 311 counts of each member of a household the standard counts, by worker id."""
    year = year or dt.date.today().year
    table = service_standard(*store.standard_frames(runtime().engine, year, household_id=household_id), year)
    return {r["worker_id"]: {"year": year, "job_offers": r["job_offers"], "guidance": r["guidance"],
                             "training_offers": r["training_offers"], "meets_311": r["meets_311"]}
            for r in records(table)}
