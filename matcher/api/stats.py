"""Figures for evaluators and admins: households covered, placements by kind, subsidies owed."""

from __future__ import annotations

from flask import Blueprint

from matcher.api.openapi import endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import Stats
from matcher.eligibility import KIND_CODES
from matcher.store import queries

bp = Blueprint("stats", __name__, url_prefix="/api/v1/stats")


@endpoint(bp, "", summary="Households covered, placements by kind, subsidies owed", roles=("evaluator", "admin"),
          response=Stats)
def get_stats():
    rt = runtime()
    subsidy = {k: int(getattr(rt.policy.subsidy, k)) for k in KIND_CODES}
    return queries.stats(rt.engine, subsidy)
