"""Liveness and readiness; no token needed."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint

from matcher.api.errors import unavailable
from matcher.api.openapi import endpoint
from matcher.api.runtime import runtime
from matcher.api.schemas import Health, Ready

bp = Blueprint("health", __name__)


@endpoint(bp, "/healthz", summary="Liveness: the process answers", roles=None, response=Health)
def healthz():
    return {"status": "ok"}


@endpoint(bp, "/readyz", summary="Readiness: the database is reachable and at the current schema, a model is loaded",
          roles=None, response=Ready, errors=(503,))
def readyz():
    from matcher.store import SchemaNotReady, check_schema
    rt = runtime()
    rt.models.sync()
    try:
        with rt.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        check_schema(rt.engine)
    except SchemaNotReady as exc:
        raise unavailable("database_unavailable", str(exc)) from None
    except sa.exc.SQLAlchemyError as exc:
        raise unavailable("database_unavailable", "the database cannot be reached: "
                                                  f"{type(getattr(exc, 'orig', exc)).__name__}") from None
    loaded = rt.models.current
    if loaded is None:
        raise unavailable("model_unavailable", f"no model is loaded: {rt.models.problem}")
    return {"status": "ready", "database": "ok", "model": "loaded"}
