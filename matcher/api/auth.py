"""Who is asking: bearer tokens, roles, scope, the rate limit and the audit log.

Every request under ``/api/`` needs ``Authorization: Bearer TOKEN``; only the token's
SHA-256 is stored (:mod:`matcher.store.tokens`). Volunteers are scoped to a county: a
record outside it is answered 404, as if it did not exist. Reads of a household's or a
worker's data are written to the audit log (who, what, when; ids only).
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from pathlib import Path

from flask import Flask, current_app, g, request

from matcher.api.errors import APIError, not_found

log = logging.getLogger("matcher.api")


def _retry_after(window: int, now: float) -> int:
    return max(1, math.ceil((window + 1) * 60 - now))


class MemoryLimiter:
    """A fixed one-minute window per key, in this process (a Redis outage's last resort)."""

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
            return _retry_after(window, now)
        return None


class FileLimiter:
    """The same window shared by every process of this machine, in a small SQLite file of the instance folder.

    The embedded default (gunicorn's workers on one machine, no Redis) then holds one limit for the
    service, not one per process. Each request is one short write (WAL, no fsync: a counter lost in a
    power cut costs nothing); old windows are pruned now and then. Neither Flask-Limiter nor its
    ``limits`` storages offer a file or SQLite store, hence this class. Several machines share a limit
    through Redis (``MATCHER_REDIS_URL``).
    """

    PRUNE_EVERY = 1000

    def __init__(self, path: str | Path, per_minute: int):
        self.path, self.per_minute = Path(path), per_minute
        self._local = threading.local()
        self._hits = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, window INTEGER NOT NULL, "
                         "n INTEGER NOT NULL, PRIMARY KEY (key, window)) WITHOUT ROWID")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        return conn

    def _conn(self) -> sqlite3.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():      # a connection is never carried across a fork
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    def hit(self, key: str, now: float | None = None) -> int | None:
        now = time.time() if now is None else now
        window = int(now // 60)
        conn = self._conn()
        n = conn.execute("INSERT INTO hits (key, window, n) VALUES (?, ?, 1) ON CONFLICT (key, window) "
                         "DO UPDATE SET n = n + 1 RETURNING n", (key, window)).fetchone()[0]
        self._hits += 1
        if self._hits % self.PRUNE_EVERY == 0:
            conn.execute("DELETE FROM hits WHERE window < ?", (window - 1,))
        if n > self.per_minute:
            return _retry_after(window, now)
        return None


class RedisLimiter:
    """The same window shared by every process of every machine through Redis; on a Redis failure,
    ``fallback`` (the machine's file limiter) counts instead."""

    def __init__(self, url: str, per_minute: int, fallback=None):
        import redis
        self.per_minute = per_minute
        self.client = redis.Redis.from_url(url, socket_timeout=0.2, socket_connect_timeout=0.2)
        self.fallback = fallback or MemoryLimiter(per_minute)

    def hit(self, key: str, now: float | None = None) -> int | None:
        now = time.time() if now is None else now
        window = int(now // 60)
        rkey = f"matcher:rate:{key}:{window}"
        try:
            pipe = self.client.pipeline()
            pipe.incr(rkey)
            pipe.expire(rkey, 61)
            n = int(pipe.execute()[0])
        except Exception as exc:  # noqa: BLE001 - any Redis failure: limit on this machine instead
            log.warning("rate limiter: Redis unavailable (%s); limiting on this machine", type(exc).__name__)
            return self.fallback.hit(key, now)
        if n > self.per_minute:
            return _retry_after(window, now)
        return None


RATE_FILE = "ratelimit.sqlite"


def make_limiter(app: Flask):
    """Redis when configured (every machine), else the instance folder's file (every process of this one)."""
    per_minute = int(app.config["RATE_LIMIT_PER_MINUTE"])
    if per_minute <= 0:
        return None
    local = FileLimiter(Path(app.config["INSTANCE_DIR"]) / RATE_FILE, per_minute)
    if app.config.get("REDIS_URL"):
        return RedisLimiter(app.config["REDIS_URL"], per_minute, fallback=local)
    return local


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
