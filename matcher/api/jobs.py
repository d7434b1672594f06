"""Vacancies: recruiters post, change and close their own; anyone with a token lists them."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
from flask import Blueprint, g

from matcher.api.auth import denied, owns
from matcher.api.errors import conflict, invalid, not_found
from matcher.api.openapi import ROLES, Reply, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import Candidates, Job, JobIn, JobPage, JobPatch, JobsQuery, MatchQuery, plausible_id
from matcher.errors import SchemaError
from matcher.schema import COLUMNS, parse_table
from matcher.store import queries
from matcher.store.io import rows_from_frame

bp = Blueprint("jobs", __name__, url_prefix="/api/v1/jobs")
OWNERS = ("recruiter", "admin")
JOB_ID = {"job_id": "the job's id"}
MAX_PAGE = 100
MAX_K = 100


def csv_cell(v) -> str:
    """A value as its CSV cell (SPEC section 2), so API records pass the same checks as files."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ";".join(v)
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()[:10]
    if isinstance(v, float):
        return repr(v)
    return str(v)


def checked_row(table: str, record: dict) -> dict:
    """Validate one record with the data contract's own checks; a 422 naming the field if it fails."""
    raw = pd.DataFrame([{c: csv_cell(record.get(c)) for c in COLUMNS[table]}], columns=COLUMNS[table])
    try:
        frame = parse_table(table, raw)
    except SchemaError as exc:
        raise invalid(f"{exc.column}: {exc.detail}" if exc.column else exc.detail, exc.column) from None
    return rows_from_frame(table, frame)[0]


def require_min_wage(row: dict) -> None:
    """A market vacancy pays at least the policy's ``jobs.min_monthly_wage`` (SPEC section 6)."""
    floor = runtime().policy.jobs.min_monthly_wage
    if row["kind"] != "public_welfare" and row["monthly_wage"] < floor:
        raise invalid(f"monthly_wage: {row['monthly_wage']:g} yuan is below the minimum wage of {floor} yuan a "
                      "month (policy jobs.min_monthly_wage); public-welfare posts pay their post subsidy instead",
                      "monthly_wage")


def visible_job(job_id: str) -> dict:
    """The job, if this token owns it (or is an admin); otherwise 404, as if it did not exist."""
    job = queries.get_job(runtime().engine, job_id) if plausible_id(job_id) else None
    if job is None:
        raise not_found("job")
    if not owns(job["owner"]):
        denied("job", job_id, 404)
        raise not_found("job")
    return job


@endpoint(bp, "", "POST", summary="Post a vacancy", roles=OWNERS, body=JobIn, response=Job, status=201,
          errors=(409,), response_headers={"Location": "the new job's URL"})
def post_job(body: JobIn):
    record = body.model_dump()
    record["job_id"] = body.job_id or f"J{uuid.uuid4().hex[:16]}"
    record["posted_on"] = body.posted_on or dt.date.today()
    record.update(filled=0, status="open")
    row = checked_row("jobs", record)
    require_min_wage(row)
    row["owner"] = g.token.name
    if not queries.insert_job(runtime().engine, row):
        raise conflict(f"job {row['job_id']!r} exists already", "job_id")
    job = queries.get_job(runtime().engine, row["job_id"])
    return Reply(job, 201, {"Location": f"/api/v1/jobs/{row['job_id']}"})


@endpoint(bp, "", summary="List vacancies (filters: county_code, kind, status; paginated)", roles=ROLES,
          description="`owner` is shown to the job's owner and to admins; to everyone else it is null.",
          query=JobsQuery, response=JobPage)
def list_jobs(query: JobsQuery):
    per_page = min(query.per_page, MAX_PAGE)
    items, total = queries.list_jobs(runtime().engine, county_code=query.county_code, kind=query.kind,
                                     status=query.status, owner=g.token.name if query.mine else None,
                                     offset=(query.page - 1) * per_page, limit=per_page)
    for item in items:
        if not owns(item["owner"]):
            item["owner"] = None            # who posted a job is for its owner and admins only
    return {"items": items, "page": query.page, "per_page": per_page, "total": total}


@endpoint(bp, "/<job_id>", summary="Read a vacancy", roles=OWNERS, response=Job, path_params=JOB_ID)
def get_job(job_id: str):
    return visible_job(job_id)


@endpoint(bp, "/<job_id>", "PATCH", summary="Change a vacancy (not filled or status)", roles=OWNERS,
          body=JobPatch, response=Job, path_params=JOB_ID, errors=(409,))
def patch_job(job_id: str, body: JobPatch):
    job = visible_job(job_id)
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    if not changes:
        return job
    if "slots" in changes and changes["slots"] < job["filled"]:
        # A conflict with the job's state (a 409 naming slots), not a bad value of `filled`.
        raise conflict("slots cannot go below the positions already filled", "slots")
    merged = dict(job, **changes)
    row = checked_row("jobs", merged)
    if {"monthly_wage", "kind"} & set(changes):
        require_min_wage(row)
    values = {k: row[k] for k in changes}
    result = queries.update_job(runtime().engine, job_id, values)
    if result == "missing":
        raise not_found("job")
    if result == "below_filled":
        raise conflict("slots cannot go below the positions already filled", "slots")
    return queries.get_job(runtime().engine, job_id)


@endpoint(bp, "/<job_id>/close", "POST", summary="Close a vacancy: it is no longer offered", roles=OWNERS,
          response=Job, path_params=JOB_ID)
def close_job(job_id: str):
    visible_job(job_id)
    if queries.update_job(runtime().engine, job_id, {"status": "closed"}) == "missing":
        raise not_found("job")
    return queries.get_job(runtime().engine, job_id)


@endpoint(bp, "/<job_id>/reopen", "POST", summary="Open a closed vacancy again (it must have a free slot)",
          description="409 when the job is already open or has no free slot (filled = slots).", roles=OWNERS,
          response=Job, path_params=JOB_ID, errors=(409,))
def reopen_job(job_id: str):
    visible_job(job_id)
    result = queries.reopen_job(runtime().engine, job_id)
    if result == "missing":
        raise not_found("job")
    if result == "open":
        raise conflict(f"job {job_id!r} is open already", "job_id")
    if result == "full":
        raise conflict(f"job {job_id!r} has no free slot: raise its slots first (PATCH)", "job_id")
    return queries.get_job(runtime().engine, job_id)


@endpoint(bp, "/<job_id>/candidates", summary="Ranked eligible workers for a vacancy, pseudonymised",
          description="No names or ids of people: each candidate is an age band, a distance and how "
                      "their skills fit.", roles=OWNERS, query=MatchQuery, response=Candidates,
          path_params=JOB_ID, errors=(503,))
def candidates(job_id: str, query: MatchQuery):
    from matcher.api import matching
    from matcher.api.auth import audit
    visible_job(job_id)
    out = matching.candidates(job_id, min(query.k, MAX_K))
    audit("job.candidates", "job", job_id)
    return out
