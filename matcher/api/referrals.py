"""Referrals: a volunteer refers a worker of their county to a job and records the outcome; the job's
owner (a recruiter) records ``hired`` or ``rejected`` on referrals to its own jobs.

``hired`` takes one slot of the job in the same transaction as the outcome, with a
conditional update (``filled < slots``), so a job is never over-filled: the loser of a race
for the last slot gets a 409 and nothing of its request is written.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import Blueprint, g

from matcher.api.auth import audit, denied, require_scope, scope_villages
from matcher.api.errors import APIError, conflict, invalid, not_found
from matcher.api.openapi import ROLES, Reply, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import (OUTCOME_REASONS, OutcomeIn, OutcomeReasons, PendingPage, PendingQuery, Referral,
                                 ReferralIn, plausible_id)
from matcher.skills import normalise_tags
from matcher.store import queries

bp = Blueprint("referrals", __name__, url_prefix="/api/v1/referrals")
REFERRERS = ("volunteer", "admin")
RECORDERS = ("volunteer", "recruiter", "admin")
OWNER_OUTCOMES = ("hired", "rejected")         # what a job's owner may record
MAX_PAGE = 200


def _split_reason(stored: str | None) -> tuple[str | None, str | None]:
    if not stored:
        return None, None
    code, _, note = stored.partition(": ")
    return code, note or None


def _public(ref: dict) -> dict:
    reason, note = _split_reason(ref.get("reason"))
    return {"referral_id": ref["referral_id"], "worker_id": ref["worker_id"], "job_id": ref["job_id"],
            "referred_on": ref["referred_on"], "outcome": ref["outcome"], "reason": reason, "note": note,
            "retained_6m": ref["retained_6m"]}


def _require_eligible(worker_id: str, job_id: str, skip: tuple[str, ...]) -> None:
    """A 422 ``ineligible`` naming each rule of SPEC section 3 the pair breaks, with its values.

    The rules are the engine's own (:func:`matcher.eligibility.broken_rules`), applied to the stored rows.
    """
    from matcher.eligibility import JobArrays, WorkerArrays, broken_rules
    from matcher.store.io import read_rows
    rt = runtime()
    workers = read_rows(rt.engine, "workers", [worker_id])
    households = read_rows(rt.engine, "households", list(workers["household_id"]))
    jobs = read_rows(rt.engine, "jobs", [job_id])
    if not len(workers) or not len(jobs) or bool(workers["employed"].iloc[0]):
        return                      # gone, or employed meanwhile: the caller's own checks answer (404, 409)
    J = JobArrays.build(jobs)
    W = WorkerArrays.build(workers, households, rt.policy, J.skill_index, J.words)
    broken = broken_rules(W, J, 0, 0, rt.policy, skip=skip)
    if broken:
        raise APIError(422, "ineligible", "the worker is not eligible for this job: " + "; ".join(broken), "job_id")


def _visible(referral_id: str) -> dict:
    """The referral, in the caller's scope: a volunteer's county (or villages), a recruiter's own jobs."""
    ref = queries.get_referral(runtime().engine, referral_id) if plausible_id(referral_id) else None
    if ref is None:
        raise not_found("referral")
    if g.token.role == "recruiter" and ref["owner"] != g.token.name:
        denied("referral", referral_id, 404)
        raise not_found("referral")
    require_scope(ref["county_code"], "referral", referral_id, village_code=ref["village_code"])
    return ref


def _check_reason(body: OutcomeIn) -> None:
    """A reason from its outcome's list (SPEC section 7); ``other`` needs a note; a hire takes none."""
    if body.outcome == "hired":
        if body.reason is not None:
            raise invalid("reason: a hire takes no reason", "reason")
        return
    allowed = OUTCOME_REASONS[body.outcome]
    if body.reason is None:
        raise invalid(f"reason: is required when the outcome is {body.outcome} (one of: {', '.join(allowed)})",
                      "reason")
    if body.reason not in allowed:
        raise invalid(f"reason: {body.reason} is not a reason for {body.outcome}; expected one of: "
                      f"{', '.join(allowed)}", "reason")
    if body.reason == "other" and not (body.note or "").strip():
        raise invalid("note: the reason other needs a note saying what happened", "note")


def _pending_item(row: dict, recruiter: bool) -> dict:
    if recruiter:
        have = set(normalise_tags(row["worker_skills"]))
        return {"referral_id": row["referral_id"], "job_id": row["job_id"], "job_title": row["job_title"],
                "referred_on": row["referred_on"], "age": int(row["age"]), "sex": row["sex"],
                "skills_fit": [s for s in normalise_tags(row["job_skills"]) if s in have],
                "referred_by": row["referred_by"]}
    return {"referral_id": row["referral_id"], "worker_id": row["worker_id"], "job_id": row["job_id"],
            "referred_on": row["referred_on"], "household_id": row["household_id"],
            "worker_name": row["worker_name"] or None, "job_title": row["job_title"], "employer": row["employer"],
            "kind": row["kind"]}


@endpoint(bp, "", summary="Referrals awaiting an outcome (status=pending), oldest first",
          description="A volunteer's referrals are those of the households in its scope (its county, or its "
                      "villages), an admin's all of them: each with the worker, the household and the job. A "
                      "recruiter's are the referrals to its own jobs, with the worker's age, sex and the job's "
                      "skills the worker has, and the referring volunteer's display name, never the worker's "
                      "id, name, household, place or disability. Paginated by `limit` (at most 200) and `offset`.",
          roles=("volunteer", "recruiter", "admin"), query=PendingQuery, response=PendingPage)
def list_pending(query: PendingQuery):
    tok = g.token
    county = tok.county_code if tok.role == "volunteer" else None
    owner = tok.name if tok.role == "recruiter" else None
    if tok.role == "volunteer" and county is None:
        return {"items": [], "total": 0}
    rows, total = queries.pending_referrals(runtime().engine, county_code=county, villages=scope_villages(),
                                            owner=owner, offset=query.offset, limit=min(query.limit, MAX_PAGE))
    audit("referral.pending", "place" if owner is None else "owner", county or "all")
    return {"items": [_pending_item(r, owner is not None) for r in rows], "total": total}


@endpoint(bp, "/reasons", summary="The reasons each outcome other than hired may carry, with their labels",
          description="`other` needs a `note`. The same lists PATCH /api/v1/referrals/{referral_id} checks.",
          roles=ROLES, response=OutcomeReasons)
def reasons():
    return {outcome: [{"code": c, "label": label} for c, label in codes.items()]
            for outcome, codes in OUTCOME_REASONS.items()}


@endpoint(bp, "", "POST", summary="Refer a worker to a job", roles=REFERRERS, body=ReferralIn, response=Referral,
          status=201, errors=(404, 409, 422), response_headers={"Location": "the referral's URL"})
def post_referral(body: ReferralIn):
    engine = runtime().engine
    worker = queries.get_worker(engine, body.worker_id)
    if worker is None:
        raise not_found("worker")
    require_scope(worker["county_code"], "worker", body.worker_id, village_code=worker["village_code"])
    job = queries.get_job(engine, body.job_id)
    if job is None:
        raise invalid(f"job_id: no job {body.job_id!r}", "job_id")
    if job["status"] != "open" or job["filled"] >= job["slots"]:
        raise conflict(f"job {body.job_id!r} is {'closed' if job['status'] != 'open' else 'full'}", "job_id")
    if worker["employed"]:
        raise conflict("the worker is employed already", "worker_id")
    _require_eligible(body.worker_id, body.job_id, skip=("job_open",))
    referral_id = f"R{uuid.uuid4().hex[:16]}"
    queries.insert_referral(engine, referral_id, body.worker_id, body.job_id, dt.date.today(), g.token.name)
    audit("referral.create", "worker", body.worker_id, 201)
    ref = queries.get_referral(engine, referral_id)
    return Reply(_public(ref), 201, {"Location": f"/api/v1/referrals/{referral_id}"})


@endpoint(bp, "/<referral_id>", summary="Read a referral", roles=REFERRERS, response=Referral,
          path_params={"referral_id": "the referral's id"})
def get_referral(referral_id: str):
    ref = _visible(referral_id)
    audit("referral.read", "worker", ref["worker_id"])
    return _public(ref)


def _reasons_doc() -> str:
    return "; ".join(f"{o}: {', '.join(f'`{c}`' for c in codes)}" for o, codes in OUTCOME_REASONS.items())


@endpoint(bp, "/<referral_id>", "PATCH", summary="Record a referral's outcome (hired takes a slot; 409 when full)",
          description="`reason` is required for declined, rejected and no_show, from its outcome's list "
                      f"({_reasons_doc()}); `other` needs a `note`; a hire takes no reason. The job's owner (a "
                      "recruiter) may record hired or rejected on referrals to its own jobs (another outcome is a "
                      "403; another recruiter's referral a 404); volunteers in scope and admins any outcome. An "
                      "outcome, once recorded, stays: sending the same outcome again only updates reason, note "
                      "and retained_6m.",
          roles=RECORDERS, body=OutcomeIn, response=Referral, path_params={"referral_id": "the referral's id"},
          errors=(409,))
def patch_referral(referral_id: str, body: OutcomeIn):
    ref = _visible(referral_id)
    if g.token.role == "recruiter" and body.outcome not in OWNER_OUTCOMES:
        denied("referral", referral_id, 403)
        raise APIError(403, "forbidden", f"a job's owner may record {' or '.join(OWNER_OUTCOMES)} only; "
                                         f"{body.outcome} is for the volunteer", "outcome")
    _check_reason(body)
    if body.outcome != "hired" and body.retained_6m is not None:
        raise invalid("retained_6m: only a hire can be retained", "retained_6m")
    if body.outcome == "hired" and ref["outcome"] is None:
        # the pair must still be eligible; a full or closed job and an employed worker are conflicts (below)
        _require_eligible(ref["worker_id"], ref["job_id"], skip=("job_open",))
    stored_reason = None
    if body.reason is not None:
        stored_reason = body.reason + (f": {body.note}" if body.note else "")
    result = queries.record_outcome(runtime().engine, referral_id, body.outcome, stored_reason, body.retained_6m)
    if result == "recorded":
        raise conflict(f"this referral's outcome is already recorded as {ref['outcome'] or 'another outcome'}",
                       "outcome")
    if result == "full":
        raise conflict("the job has no free position left (full or closed)", "outcome")
    if result == "employed":
        raise conflict("the worker is employed already (hired through another referral)", "outcome")
    audit(f"referral.{body.outcome}", "worker", ref["worker_id"])
    out = _public(queries.get_referral(runtime().engine, referral_id))
    if g.token.role == "recruiter":
        out["worker_id"] = None              # a recruiter learns nothing that names the worker
    return out
