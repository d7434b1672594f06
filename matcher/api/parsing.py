"""Reading a request: body limits, JSON bodies, CSV bodies and query strings, each into its pydantic model
or a clear 4xx error naming the field.

Used by :mod:`matcher.api.auth` (the body limit, before anything is read) and by
:mod:`matcher.api.openapi` (the views it registers); it imports neither.
"""

from __future__ import annotations

import re

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError

from matcher.api.errors import APIError, bad_request
from matcher.api.schemas import SERVER_KEPT


# -- body limits -----------------------------------------------------------------------------------

def too_large(limit: int) -> APIError:
    return APIError(413, "payload_too_large", f"the request body is larger than {limit} bytes")


def check_size(limit: int) -> None:
    """Refuse a declared length beyond ``limit`` before reading anything, and cap what is read.

    A body with no Content-Length (chunked) is read at most ``limit + 1`` bytes: werkzeug stops
    quietly at its maximum, so one byte more is how :func:`read_body` tells a body that is too
    large from one that is exactly the limit, instead of taking the first ``limit`` bytes for the
    whole body.
    """
    g.body_limit = limit
    request.max_content_length = limit + 1
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)


def read_body(cache: bool = True) -> bytes:
    """The request body, never more than this endpoint's limit (else a 413)."""
    data = request.get_data(cache=cache)
    limit = g.get("body_limit")
    if limit is not None and len(data) > limit:
        raise too_large(limit)
    return data



def operation_for(endpoint_name: str | None):
    """The described operation (:class:`matcher.api.openapi.Operation`) of an endpoint, None for the others."""
    if not endpoint_name:
        return None
    view = current_app.view_functions.get(endpoint_name)
    return getattr(view, "operation", None)


# -- bodies and query strings ----------------------------------------------------------------------

def _first_error(exc: ValidationError) -> tuple[str, str | None, str]:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err.get("loc", ())]
    name = ".".join(loc) if loc else None
    kind = err.get("type", "")
    msg = err.get("msg", "invalid value")
    if kind == "extra_forbidden":
        msg = ("is kept by the server and cannot be sent" if name in SERVER_KEPT
               else "is not a field of this request")
    elif kind == "missing":
        msg = "is required"
    if isinstance(err.get("ctx"), dict) and "error" in err["ctx"]:
        msg = str(err["ctx"]["error"])
    return kind, name, msg


def validation_error(exc: ValidationError, where: str = "body") -> APIError:
    kind, name, msg = _first_error(exc)
    if kind in ("json_invalid", "json_type"):
        return bad_request(f"the request body is not valid JSON: {msg}")
    if kind in ("model_type", "dict_type") and not name:
        return bad_request(f"the request {where} must be a JSON object")
    text = f"{name}: {msg}" if name else msg
    return APIError(422, "invalid_value", text, name)


def body_optional(model: type[BaseModel]) -> bool:
    """A body whose every field is optional may be left out whole."""
    return not any(f.is_required() for f in model.model_fields.values())


def parse_body(model: type[BaseModel]) -> BaseModel:
    if body_optional(model) and not request.mimetype and not read_body(cache=True).strip():
        return model()              # no body at all: every field takes its default
    if not request.mimetype or not (request.mimetype == "application/json" or request.mimetype.endswith("+json")):
        raise APIError(415, "unsupported_media_type", "send the body as application/json")
    raw = read_body(cache=True)
    if not raw.strip():
        raise bad_request("the request body is empty; expected a JSON object")
    try:
        # Strict: a JSON string or boolean is not an integer ("3", true), nor "yes" a boolean.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from None


CSV_TYPES = ("text/csv", "application/csv", "text/plain")


def read_csv_body() -> bytes:
    if request.mimetype not in CSV_TYPES:
        raise APIError(415, "unsupported_media_type", "send the file as text/csv")
    data = read_body(cache=False)
    if not data.strip():
        raise bad_request("the request body is empty; expected a CSV file with a header row")
    return data


_INTEGER = re.compile(r"-?[0-9]+")


def _integer_field(info) -> bool:
    return info.annotation is int or (getattr(info.annotation, "__args__", None) or ()) == (int, type(None))


def parse_query(model: type[BaseModel]) -> BaseModel:
    args = {k: request.args.get(k) for k in request.args.keys() if k in model.model_fields}
    for name, value in args.items():
        # An integer is written as one: not 5.0, +5, " 5 " or 5_0, which a lax parse would take.
        if _integer_field(model.model_fields[name]) and not _INTEGER.fullmatch(value):
            raise APIError(422, "invalid_value", f"{name}: expected an integer written in digits, got {value!r}", name)
    try:
        return model.model_validate(args)
    except ValidationError as exc:
        _, name, msg = _first_error(exc)
        raise APIError(422, "invalid_value", f"{name}: {msg}" if name else msg, name) from None
