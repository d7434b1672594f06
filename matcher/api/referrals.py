"""Referrals: a volunteer refers a worker of their county to a job and records the outcome.

``hired`` takes one slot of the job in the same transaction as the outcome, with a
conditional update (``filled < slots``), so a job is never over-filled: the loser of a race
for the last slot gets a 409 and nothing of its request is written.
"""

from __future__ import annotations

import datetime as dt
import uuid

from flask import Blueprint, g

from matcher.api.auth import audit, require_scope
from matcher.api.errors import APIError, conflict, invalid, not_found
from matcher.api.openapi import Reply, endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import OutcomeIn, Referral, ReferralIn, plausible_id
from matcher.store import queries

bp = Blueprint("referrals", __name__, url_prefix="/api/v1/referrals")
REFERRERS = ("volunteer", "admin")


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
    ref = queries.get_referral(runtime().engine, referral_id) if plausible_id(referral_id) else None
    if ref is None:
        raise not_found("referral")
    require_scope(ref["county_code"], "referral", referral_id, village_code=ref["village_code"])
    return ref


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


@endpoint(bp, "/<referral_id>", "PATCH", summary="Record a referral's outcome (hired takes a slot; 409 when full)",
          description="`reason` is required for declined, rejected and no_show. An outcome, once recorded, "
                      "stays: sending the same outcome again only updates reason, note and retained_6m.",
          roles=REFERRERS, body=OutcomeIn, response=Referral, path_params={"referral_id": "the referral's id"},
          errors=(409,))
def patch_referral(referral_id: str, body: OutcomeIn):
    ref = _visible(referral_id)
    if body.outcome != "hired" and body.reason is None:
        raise invalid(f"reason: is required when the outcome is {body.outcome}", "reason")
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
    return _public(queries.get_referral(runtime().engine, referral_id))
