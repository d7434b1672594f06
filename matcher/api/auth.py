"""Who is asking: bearer tokens, roles, scope, the rate limit and the audit log.

Every request under ``/api/`` needs ``Authorization: Bearer TOKEN``; only the token's
SHA-256 is stored (:mod:`matcher.store.tokens`). Volunteers are scoped to a county: a
record outside it is answered 404, as if it did not exist. Reads of a household's or a
worker's data are written to the audit log (who, what, when; ids only).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict

from flask import Flask, current_app, g, request

from matcher.api.errors import APIError, not_found

log = logging.getLogger("matcher.api")


class MemoryLimiter:
    """A fixed one-minute window per key, in this process."""

    def __init__(self, per_minute: int, max_keys: int = 100_000):
        self.per_minute, self.max_keys = per_minute, max_keys
        self._lock = threading.Lock()
        self._windows: OrderedDict[str, tuple[int, int]] = OrderedDict()

    def hit(self, key: str, now: float | None = None) -> int | None:
        """Count one request; None when allowed, else the seconds to wait."""
        now = time.time() if now is None else now
        window = int(now // 60)
        with self._lock:
            w, n = self._windows.get(key, (window, 0))
            if w != window:
                w, n = window, 0
            n += 1
            self._windows[key] = (w, n)
            self._windows.move_to_end(key)
            while len(self._windows) > self.max_keys:
                self._windows.popitem(last=False)
        if n > self.per_minute:
            return max(1, math.ceil((window + 1) * 60 - now))
        return None


class RedisLimiter:
    """The same window shared by every worker process through Redis; falls back to memory if Redis fails."""

    def __init__(self, url: str, per_minute: int):
        import redis
        self.per_minute = per_minute
        self.client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self.fallback = MemoryLimiter(per_minute)

    def hit(self, key: str, now: float | None = None) -> int | None:
        now = time.time() if now is None else now
        window = int(now // 60)
        rkey = f"matcher:rate:{key}:{window}"
        try:
            pipe = self.client.pipeline()
            pipe.incr(rkey)
            pipe.expire(rkey, 61)
            n = int(pipe.execute()[0])
        except Exception as exc:  # noqa: BLE001 - any Redis failure: limit in this process instead
            log.warning("rate limiter: Redis unavailable (%s); limiting per process", type(exc).__name__)
            return self.fallback.hit(key, now)
        if n > self.per_minute:
            return max(1, math.ceil((window + 1) * 60 - now))
        return None


def make_limiter(app: Flask):
    per_minute = int(app.config["RATE_LIMIT_PER_MINUTE"])
    if per_minute <= 0:
        return None
    if app.config.get("REDIS_URL"):
        try:
            return RedisLimiter(app.config["REDIS_URL"], per_minute)
        except ImportError:
            log.warning("MATCHER_REDIS_URL is set but the redis package is missing; limiting per process")
    return MemoryLimiter(per_minute)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _too_large(limit: int) -> APIError:
    return APIError(413, "payload_too_large", f"the request body is larger than {limit} bytes")


def _check_size(limit: int) -> None:
    """Refuse a declared length beyond ``limit`` before reading anything, and cap what is read.

    A body with no Content-Length (chunked) is read at most ``limit + 1`` bytes: werkzeug stops
    quietly at its maximum, so one byte more is how :func:`read_body` tells a body that is too
    large from one that is exactly the limit, instead of taking the first ``limit`` bytes for the
    whole body.
    """
    g.body_limit = limit
    request.max_content_length = limit + 1
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)


def read_body(cache: bool = True) -> bytes:
    """The request body, never more than this endpoint's limit (else a 413)."""
    data = request.get_data(cache=cache)
    limit = g.get("body_limit")
    if limit is not None and len(data) > limit:
        raise _too_large(limit)
    return data


def init_app(app: Flask) -> None:
    app.extensions["matcher.limiter"] = make_limiter(app)

    @app.before_request
    def _authenticate():
        from matcher.api.openapi import operation_for
        from matcher.api.runtime import runtime
        op = operation_for(request.endpoint)
        cfg = current_app.config
        _check_size(int(cfg["MAX_CSV_BYTES"]) if op is not None and op.csv else int(cfg["MAX_JSON_BYTES"]))
        if not request.path.startswith("/api/"):
            return None
        token = _bearer()
        rt = runtime()
        info = None
        if token:
            from matcher.store import verify_token
            info = verify_token(rt.engine, token)
        if info is None:
            raise APIError(401, "unauthorized", "missing, unknown, expired or revoked token; send "
                                                "`Authorization: Bearer TOKEN`",
                           headers={"WWW-Authenticate": 'Bearer realm="matcher"'})
        g.token = info
        limiter = current_app.extensions.get("matcher.limiter")
        if limiter is not None:
            wait = limiter.hit(f"t{info.id}")
            if wait is not None:
                raise APIError(429, "rate_limited", f"more than {cfg['RATE_LIMIT_PER_MINUTE']} requests a "
                                                    f"minute with this token; retry in {wait} s",
                               headers={"Retry-After": str(wait)})
        rt.models.sync()
        return None


# -- scope ---------------------------------------------------------------------------------------

def in_scope(county_code: str | None) -> bool:
    """Volunteers see their county only; every other role that reaches a view sees everything."""
    tok = g.token
    return tok.role != "volunteer" or (county_code is not None and county_code == tok.county_code)


def require_scope(county_code: str | None, what: str, resource_id: str | None = None) -> None:
    """A 404 for a record outside the token's county, as if it did not exist; the attempt is audited."""
    if not in_scope(county_code):
        denied(what, resource_id, 404)
        raise not_found(what)


def denied(resource_type: str | None, resource_id: str | None, status: int) -> None:
    """Audit an attempt outside the token's scope (404) or role (403): who, which endpoint, which record."""
    audit(f"{request.endpoint}.denied", resource_type, resource_id, status)


def owns(job_owner: str | None) -> bool:
    tok = g.token
    return tok.role == "admin" or (tok.role == "recruiter" and job_owner == tok.name)


def audit(action: str, resource_type: str | None, resource_id: str | None, status: int = 200) -> None:
    """Record who read or changed whose data; ids only, never the data itself."""
    from matcher.api.runtime import runtime
    tok = getattr(g, "token", None)
    runtime().audit.record(actor=tok.name if tok else None, role=tok.role if tok else None, action=action,
                           resource_type=resource_type, resource_id=resource_id, status=status)
