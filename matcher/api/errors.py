"""Every error the API answers is ``{"error": {"code", "message", "field"}}``.

One exception type (:class:`APIError`) for errors raised by views, domain errors
(:class:`matcher.errors.MatcherError`) mapped by their own ``status``/``code``/``field``,
HTTP errors raised by Flask and Werkzeug (404, 405, 413, ...) mapped by status, and a last
handler that turns anything unexpected into a 500 without a stack trace. Database
connection failures are a 503: the request was fine, the service is not.
"""

from __future__ import annotations

import logging
import traceback

import sqlalchemy as sa
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from matcher.errors import MatcherError

log = logging.getLogger("matcher.api")

# Werkzeug's HTTP statuses, as the codes clients switch on.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "invalid_value",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    503: "service_unavailable",
}
HTTP_MESSAGES = {
    404: "no such resource",
    405: "method not allowed on this resource",
    413: "request body too large",
    415: "unsupported content type",
}


class APIError(Exception):
    """An error a view answers with; ``field`` names the body field or query parameter at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}


def bad_request(message: str, field: str | None = None) -> APIError:
    return APIError(400, "bad_request", message, field)


def invalid(message: str, field: str | None = None) -> APIError:
    return APIError(422, "invalid_value", message, field)


def not_found(what: str = "resource") -> APIError:
    return APIError(404, "not_found", f"no such {what}")


def conflict(message: str, field: str | None = None) -> APIError:
    return APIError(409, "conflict", message, field)


def unavailable(code: str, message: str) -> APIError:
    return APIError(503, code, message, headers={"Retry-After": "5"})


def error_body(code: str, message: str, field: str | None = None) -> bytes:
    """The error JSON as bytes, for answers written outside Flask (gunicorn's own refusals)."""
    import json
    return json.dumps({"error": {"code": code, "message": message, "field": field}}, ensure_ascii=False).encode()


def error_response(status: int, code: str, message: str, field: str | None = None, headers: dict | None = None):
    resp = jsonify({"error": {"code": code, "message": message, "field": field}})
    resp.status_code = status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError))


def init_app(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(exc: APIError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.errorhandler(MatcherError)
    def _domain_error(exc: MatcherError):
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return error_response(exc.status, exc.code, exc.message, exc.field, headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = HTTP_CODES.get(status, "http_error")
        message = HTTP_MESSAGES.get(status) or (exc.description or exc.name or code).split("\n")[0]
        headers = {}
        if status == 405 and getattr(exc, "valid_methods", None):
            headers["Allow"] = ", ".join(exc.valid_methods)
        return error_response(status, code, message, None, headers)

    @app.errorhandler(sa.exc.SQLAlchemyError)
    def _database_error(exc: sa.exc.SQLAlchemyError):
        if _is_connection_error(exc):
            log.error("database unavailable: %s", type(getattr(exc, "orig", exc)).__name__)
            return error_response(503, "database_unavailable", "the database cannot be reached; try again later",
                                  None, {"Retry-After": "5"})
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return _http_error(exc)
        # The traceback shows where, not what: no exception message (it may quote personal data).
        frames = "".join(traceback.format_tb(exc.__traceback__))
        log.error("unhandled %s\n%s", type(exc).__name__, frames)
        return error_response(500, "internal_error", "internal error; it has been logged")
