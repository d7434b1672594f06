"""Where to open the next workshop (SPEC section 8, 送企进村): evaluators and admins ask, over the stored world
and the model in use; the answer names villages, never people."""

from __future__ import annotations

from flask import Blueprint

from matcher.api.auth import audit
from matcher.api.openapi import endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import Sites, SitesIn

bp = Blueprint("sites", __name__, url_prefix="/api/v1/sites")


@endpoint(bp, "", "POST", summary="Where N new workshops (or welfare posts) of S slots would cover the most "
          "households", roles=("evaluator", "admin"),
          description="Hypothetical jobs of `kind` at every village are scored like any other job; the `n` "
                      "with the greatest gain in households the city-wide plan covers (exact when small, "
                      "else lazy greedy), each gain measured by re-solving the plan with the site. Can take "
                      "a while on a large world.",
          body=SitesIn, response=Sites, errors=(503,))
def post_sites(body: SitesIn):
    from matcher import sites
    from matcher.ranking import Engine
    from matcher.store.io import read_world
    rt = runtime()
    loaded = rt.models.require()
    world = read_world(rt.engine)
    engine = Engine.build(world, loaded.model, rt.policy)
    rows, summary = sites.suggest(engine, world, body.kind, body.slots, body.n)
    audit("sites.suggest", "sites", body.kind, 200)
    return dict(summary, sites=rows.to_dict("records"))
