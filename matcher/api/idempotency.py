"""``Idempotency-Key`` on every POST (SPEC section 5): a phone on a bad network retries safely.

A repeat of a POST with the same key and the same request (method, path and body) within 24 hours
answers what the first answered (status, body, ``Location``) and writes nothing; the same key with
another request is a 409 ``idempotency_mismatch``. Keys are per principal (a token or a person), so
one caller can never read another's answers. Only successful answers (2xx) are remembered: a request
refused (4xx) or failed leaves its key free, so the retry of a corrected request goes through.
Signing in (the one POST without a principal) is not remembered: its answer is a new session.

The answers live in the store (:mod:`matcher.store.idempotency`), so every process shares them.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable

from flask import Response, g, request

from matcher.api.parsing import read_body
from matcher.api.errors import APIError

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x20-\x7e]{1,64}")
REPLAYED = "Idempotent-Replayed"
KEPT_HEADERS = ("Location", "Content-Type")


def key_of() -> str | None:
    """The request's key (None when it sends none); a 422 naming the header when it is malformed."""
    if HEADER not in request.headers:
        return None
    key = request.headers.get(HEADER, "")
    if not _KEY.fullmatch(key) or not key.strip():
        raise APIError(422, "invalid_value", f"{HEADER}: expected 1-64 printable ASCII characters", HEADER)
    return key


def _digest() -> str:
    h = hashlib.sha256()
    h.update(request.method.encode() + b"\n" + request.path.encode("utf-8", "surrogateescape") + b"\n")
    h.update(read_body(cache=True))
    return h.hexdigest()


def once(key: str, respond: Callable[[], Response]) -> Response:
    """``respond()``, or the first answer given under ``key``."""
    from matcher.api.runtime import runtime
    from matcher.store import idempotency as store
    engine = runtime().engine
    principal = g.token.key
    state, answer = store.reserve(engine, principal, key, _digest())
    if state == "mismatch":
        raise APIError(409, "idempotency_mismatch", f"this {HEADER} was used with another request in the last "
                                                    "24 hours; use a new key for a new request", HEADER)
    if state == "busy":
        raise APIError(409, "idempotency_in_progress", f"a request with this {HEADER} is still being answered; "
                                                       "retry in a moment", HEADER, headers={"Retry-After": "1"})
    if state == "replay":
        resp = Response(answer["body"], status=answer["status"])
        for name, value in answer["headers"].items():
            resp.headers[name] = value
        resp.headers[REPLAYED] = "true"
        return resp
    try:
        resp = respond()
    except BaseException:
        store.release(engine, principal, key)
        raise
    if 200 <= resp.status_code < 300:
        store.complete(engine, principal, key, resp.status_code,
                       {h: resp.headers[h] for h in KEPT_HEADERS if h in resp.headers}, resp.get_data(as_text=True))
    else:
        store.release(engine, principal, key)
    return resp
