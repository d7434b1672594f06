"""The model in use: what it is, and loading another one without a restart."""

from __future__ import annotations

from flask import Blueprint

from matcher.api.errors import APIError
from matcher.api.openapi import ROLES, endpoint
from matcher.api.runtime import LoadedModel, runtime
from matcher.api.schemas import ModelInfo, ReloadIn
from matcher.errors import ModelError

bp = Blueprint("model", __name__, url_prefix="/api/v1/model")


def describe(loaded: LoadedModel) -> dict:
    m = loaded.manifest
    return {"model_version": loaded.version, "trained_at": m.get("created"), "kind": m.get("kind"),
            "metrics": m.get("metrics") or {}, "features": list(m.get("features") or []),
            "training_data_sha256": m.get("training_data_sha256"),
            "retention_model": bool(m.get("retention_model")), "loaded_at": loaded.loaded_at}


@endpoint(bp, "", summary="The model in use: version, training date, metrics", roles=ROLES, response=ModelInfo,
          errors=(503,))
def get_model():
    return describe(runtime().models.require())


@endpoint(bp, "/reload", "POST", summary="Load a model artifact (default: the production model)",
          description="The artifact's SHA-256 and library versions are checked against its manifest before "
                      "it is unpickled; on any failure (a 422 naming `path`) the model in use stays. The path must lie inside the "
                      "models folder. Other worker processes follow before their next request.",
          roles=("evaluator", "admin"), body=ReloadIn, response=ModelInfo)
def reload_model(body: ReloadIn):
    try:
        return describe(runtime().models.reload(body.path))
    except ModelError as exc:
        in_use = runtime().models.current
        keeping = f"; still serving {in_use.version}" if in_use else "; no model is loaded"
        raise APIError(422, "model_refused", f"{exc}{keeping}", "path") from None
