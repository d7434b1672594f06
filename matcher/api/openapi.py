"""Endpoints declared once, with pydantic v2 request and response models, and the OpenAPI 3.0
document built from those declarations (served at ``/openapi.json``; interactive docs at
``/docs`` from the swagger-ui files shipped by the ``swagger-ui-bundle`` package, no CDN).

A view declared with :func:`endpoint` gets its role check, content-type check, parsed body
and query, and its answer validated against the response model, so the document and the
behaviour cannot drift apart.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from flask import Blueprint, Response, current_app, g, jsonify, request, send_from_directory
from pydantic import BaseModel

from matcher import __version__
from matcher.api import idempotency
from matcher.api.auth import denied
from matcher.api.errors import APIError, HTTP_CODES
from matcher.api.parsing import body_optional, parse_body, parse_query, read_csv_body
from matcher.api.schemas import ErrorBody

ROLES = ("volunteer", "recruiter", "evaluator", "admin")


@dataclass
class Reply:
    """What a view returns when it needs a status or headers besides the body."""

    body: Any
    status: int | None = None
    headers: dict = field(default_factory=dict)


@dataclass
class Operation:
    blueprint: str
    rule: str
    method: str
    summary: str
    description: str
    roles: tuple[str, ...] | None        # None: no token needed
    body: type[BaseModel] | None
    csv: bool
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    tag: str
    path_params: dict[str, str]
    response_headers: dict[str, str] = field(default_factory=dict)
    csv_response: bool = False          # also answers text/csv (format=csv)


OPERATIONS: list[Operation] = []


def _dump(model: type[BaseModel] | None, body: Any):
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json")
    if model is None or not current_app.config.get("VALIDATE_RESPONSES"):
        return body
    return model.model_validate(body).model_dump(mode="json")


def endpoint(bp: Blueprint, rule: str, method: str = "GET", *, summary: str, description: str = "",
             roles: tuple[str, ...] | None = ROLES, body: type[BaseModel] | None = None, csv: bool = False,
             query: type[BaseModel] | None = None, response: type[BaseModel] | None = None, status: int = 200,
             errors: tuple[int, ...] = (), tag: str | None = None, path_params: dict[str, str] | None = None,
             response_headers: dict[str, str] | None = None, csv_response: bool = False) -> Callable:
    """Register a view on ``bp`` and describe it for the OpenAPI document."""
    op = Operation(bp.name, rule, method, summary, description, roles, body, csv, query, response, status,
                   tuple(errors), tag or bp.name, path_params or {}, response_headers or {}, csv_response)
    OPERATIONS.append(op)

    def deco(fn):
        @functools.wraps(fn)
        def view(**path):
            if op.roles is not None and g.token.role not in op.roles:
                denied(None, None, 403)
                raise APIError(403, "forbidden", f"a {g.token.role} token may not do this; "
                                                 f"it needs one of: {', '.join(op.roles)}")

            def respond() -> Response:
                kwargs = {}
                if op.body is not None:
                    kwargs["body"] = parse_body(op.body)
                if op.csv:
                    kwargs["data"] = read_csv_body()
                if op.query is not None:
                    kwargs["query"] = parse_query(op.query)
                out = fn(**path, **kwargs)
                if isinstance(out, Response):
                    return out
                reply = out if isinstance(out, Reply) else Reply(out)
                resp = jsonify(_dump(op.response, reply.body))
                resp.status_code = reply.status or op.status
                for k, v in reply.headers.items():
                    resp.headers[k] = v
                return resp

            if op.method == "POST" and op.roles is not None:
                key = idempotency.key_of()
                if key is not None:
                    return idempotency.once(key, respond)
            return respond()

        view.operation = op
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view

    return deco


# -- the document ----------------------------------------------------------------------------

STANDARD_ERRORS = {
    400: "Malformed request (not JSON, not an object)",
    401: "Missing, unknown, expired or revoked token or session (signing in: wrong login or password)",
    403: "The caller's role may not do this, or a write made with the session cookie lacks X-CSRF-Token",
    404: "No such record, or outside the token's scope",
    405: "Method not allowed",
    409: "Conflict (the job is full or closed, the record exists, the outcome is recorded)",
    413: "Body too large",
    415: "Wrong content type",
    422: "A field's value is not acceptable; `field` names it",
    429: "Too many requests; see Retry-After",
    501: "Not implemented",
    503: "No model loaded, or the database is down",
}


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z_]+:)?([a-zA-Z_]+)>", r"{\1}", rule)


def openapi30(node):
    """Pydantic's JSON Schema (2020-12, as OpenAPI 3.1 has it) in the OpenAPI 3.0 dialect.

    The interactive docs (swagger-ui 4, the version the swagger-ui-bundle package ships) read
    3.0 only. ``anyOf [X, null]`` becomes X with ``nullable``, ``const`` an ``enum``, numeric
    ``exclusiveMinimum``/``exclusiveMaximum`` their 3.0 boolean form; a null ``default`` on a schema
    that is not nullable is left out.
    """
    if isinstance(node, list):
        return [openapi30(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: openapi30(v) for k, v in node.items() if k not in ("examples", "$schema")}
    options = node.get("anyOf")
    if options and any(o == {"type": "null"} for o in options):
        rest = [o for o in options if o != {"type": "null"}]
        del node["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            node = {**rest[0], **node}
        elif len(rest) == 1:
            node["allOf"] = rest
        else:
            node["anyOf"] = rest
        node["nullable"] = True
        if "enum" in node and None not in node["enum"]:
            node["enum"] = node["enum"] + [None]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), (int, float)) and not isinstance(node.get(bound), bool):
            node[plain] = node.pop(bound)
            node[bound] = True
    if "default" in node and node["default"] is None and not node.get("nullable"):
        # a field that may be left out but not sent as null (JobPatch's): "absent" needs no default,
        # and a null default on a non-nullable schema is invalid OpenAPI
        del node["default"]
    if "$ref" in node and len(node) > 1:
        ref = node.pop("$ref")
        node["allOf"] = [{"$ref": ref}] + node.get("allOf", [])
    return node


class _Schemas:
    def __init__(self):
        self.components: dict[str, dict] = {}

    def ref(self, model: type[BaseModel], mode: str = "validation") -> dict:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)
        for name, sub in schema.pop("$defs", {}).items():
            self.components.setdefault(name, openapi30(sub))
        name = model.__name__
        self.components.setdefault(name, openapi30(schema))
        return {"$ref": f"#/components/schemas/{name}"}


def _query_parameters(model: type[BaseModel]) -> list[dict]:
    schema = openapi30(model.model_json_schema(mode="validation"))
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        if prop.pop("nullable", False):   # an absent query parameter, not a null one
            if prop.get("default", 0) is None:
                del prop["default"]
            if "enum" in prop:
                prop["enum"] = [e for e in prop["enum"] if e is not None]
        description = prop.pop("description", None)
        prop.pop("title", None)
        p = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if description:
            p["description"] = description
        params.append(p)
    return params


def build_document(app) -> dict:
    schemas = _Schemas()
    error_ref = schemas.ref(ErrorBody)
    paths: dict[str, dict] = {}
    ops = []
    for url_rule in app.url_map.iter_rules():
        op = getattr(app.view_functions.get(url_rule.endpoint), "operation", None)
        if op is not None:
            ops.append((url_rule.rule, op))
    ops.sort(key=lambda t: (t[0], t[1].method))
    for full_rule, op in ops:
        path = paths.setdefault(_openapi_path(full_rule), {})
        item: dict[str, Any] = {"operationId": f"{op.blueprint}_{op.method.lower()}_"
                                               f"{_openapi_path(full_rule).strip('/').replace('/', '_')}"
                                               .replace("{", "").replace("}", ""),
                                "summary": op.summary, "tags": [op.tag]}
        if op.description:
            item["description"] = op.description
        if op.roles is None:
            item["security"] = []
        else:
            item["description"] = (item.get("description", "") + f"\n\nRoles: {', '.join(op.roles)}.").strip()
        ints = set(re.findall(r"<int:([a-zA-Z_]+)>", op.rule))
        params = [{"name": n, "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 0} if n in ints else {"type": "string", "maxLength": 64},
                   "description": d} for n, d in op.path_params.items()]
        if op.query is not None:
            params += _query_parameters(op.query)
        if params:
            item["parameters"] = params
        if op.method == "POST" and op.roles is not None:
            params.append({"name": idempotency.HEADER, "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[ -~]+$"},
                           "description": "a repeat with the same key and request within 24 hours answers what the "
                                          "first answered (2xx answers only) and writes nothing; the same key with "
                                          "another request is a 409 idempotency_mismatch. Keys are per token or "
                                          "person"})
            item["parameters"] = params
        if op.body is not None:
            item["requestBody"] = {"required": not body_optional(op.body),
                                   "content": {"application/json": {"schema": schemas.ref(op.body)}}}
        if op.csv:
            item["requestBody"] = {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
        ok: dict[str, Any] = {"description": op.summary}
        if op.response is not None:
            ok["content"] = {"application/json": {"schema": schemas.ref(op.response, mode="serialization")}}
            if op.csv_response:
                ok["content"]["text/csv"] = {"schema": {"type": "string"}}
        if op.response_headers:
            ok["headers"] = {h: {"description": d, "schema": {"type": "string"}} for h, d in op.response_headers.items()}
        responses: dict[str, Any] = {str(op.status): ok}
        codes = set(op.errors) | {405, 500}
        if op.roles is not None:
            codes |= {401, 429, 503}   # 503: the database cannot be reached
            if set(op.roles) != set(ROLES) or op.method != "GET":   # a cookie write without X-CSRF-Token
                codes.add(403)
        if op.body is not None:
            codes |= {400, 413, 415, 422}
        if op.method == "POST" and op.roles is not None:
            codes |= {409, 422}          # Idempotency-Key: another request under it, or a malformed key
        if op.csv:
            codes |= {400, 413, 415, 422}
        if op.query is not None:
            codes.add(422)
        if op.path_params:
            codes.add(404)
        for code in sorted(codes):
            desc = STANDARD_ERRORS.get(code) or HTTP_CODES.get(code, "error")
            if code == 500:
                desc = "Unexpected server error (a bug; no details are given)"
            resp = {"description": desc, "content": {"application/json": {"schema": error_ref}}}
            if code in (429, 503):
                resp["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
            responses[str(code)] = resp
        item["responses"] = responses
        path[op.method.lower()] = item
    return {
        "openapi": "3.0.3",
        "info": {"title": "matcher", "version": __version__,
                 "description": "Job matching for employment poverty alleviation (Rizhao). Every request under "
                                "/api/v1 (but signing in) needs `Authorization: Bearer TOKEN` or the session "
                                "cookie of POST /api/v1/session; errors are "
                                "`{\"error\": {\"code\", \"message\", \"field\"}}`."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas.components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                           "session": {"type": "apiKey", "in": "cookie", "name": "matcher_session",
                                                       "description": "the cookie POST /api/v1/session sets; "
                                                                      "writes also need X-CSRF-Token"}}},
        "security": [{"bearer": []}, {"session": []}],
    }


bp = Blueprint("docs", __name__)

# swagger-ui styles its elements inline and draws its icons as data: images; nothing else is allowed
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@bp.after_request
def _docs_headers(resp):
    resp.headers["Content-Security-Policy"] = DOCS_CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp


@bp.get("/openapi.json")
def openapi_json():
    doc = current_app.extensions.get("matcher.openapi")
    if doc is None:
        doc = current_app.extensions["matcher.openapi"] = json.dumps(build_document(current_app), ensure_ascii=False)
    return Response(doc, mimetype="application/json")


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>matcher API</title>
<link rel="stylesheet" href="{static}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body></html>
"""

DOCS_INIT = """window.onload = function () {
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis], layout: "BaseLayout", persistAuthorization: true});
};
"""


def _swagger_dir():
    from swagger_ui_bundle import swagger_ui_path
    return str(swagger_ui_path)


@bp.get("/docs")
def docs():
    return Response(DOCS_PAGE.format(static="/docs/static"), mimetype="text/html")


@bp.get("/docs/init.js")
def docs_init():
    return Response(DOCS_INIT, mimetype="application/javascript")


@bp.get("/docs/static/<path:filename>")
def docs_static(filename):
    return send_from_directory(_swagger_dir(), filename, max_age=3600)
