"""City-wide plans: computed and stored by evaluators and admins, read by volunteers for their county."""

from __future__ import annotations

from flask import Blueprint

from matcher.api.errors import APIError
from matcher.api.openapi import endpoint
from matcher.api.schemas import Allocation, AllocationIn

bp = Blueprint("allocations", __name__, url_prefix="/api/v1/allocations")


@endpoint(bp, "", "POST", summary="Compute and store a city-wide plan", roles=("evaluator", "admin"),
          body=AllocationIn, response=Allocation, status=201, errors=(501, 503))
def post_allocation(body: AllocationIn):
    raise APIError(501, "not_implemented", "city-wide allocation is not available in this build yet")


@endpoint(bp, "/<int:allocation_id>", summary="Read a stored plan (volunteers: their county's rows)",
          roles=("volunteer", "evaluator", "admin"), response=Allocation, errors=(501,),
          path_params={"allocation_id": "the plan's id"})
def get_allocation(allocation_id: int):
    raise APIError(501, "not_implemented", "city-wide allocation is not available in this build yet")
