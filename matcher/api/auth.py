"""Who is asking: bearer tokens, session cookies, roles, scope, the rate limit and the audit log.

Every request under ``/api/`` (but signing in) needs ``Authorization: Bearer TOKEN`` or the
session cookie of a signed-in person (:mod:`matcher.api.session`); the store keeps only the
SHA-256 of either. A write made with the cookie needs the session's ``X-CSRF-Token`` header.
Volunteers are scoped to a county, and a person's account may narrow that to villages: a
record outside the scope is answered 404, as if it did not exist. Reads of a household's or a
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
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, current_app, g, request

from matcher.api.errors import APIError, not_found
from matcher.api.parsing import check_size, operation_for

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


SESSION_COOKIE = "matcher_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Principal:
    """Who a request speaks for: a token (scripts) or a signed-in person.

    ``name`` is what jobs record as their ``owner`` and what the audit log names: the token's
    name, or the person's login. ``villages`` (people only) narrow a volunteer's county.
    """

    kind: str                     # "token" or "user"
    id: int
    name: str
    role: str
    county_code: str | None
    villages: tuple[str, ...] = ()
    display_name: str | None = None

    @property
    def key(self) -> str:
        """The rate limiter's and the access log's key: never a name."""
        return f"{self.kind[0]}{self.id}"


def _unauthorized(cookie_sent: bool) -> APIError:
    headers = {"WWW-Authenticate": 'Bearer realm="matcher"'}
    if cookie_sent:
        from matcher.api.session import clear_cookie_header
        headers["Set-Cookie"] = clear_cookie_header()
    return APIError(401, "unauthorized", "missing, unknown, expired or revoked token or session; send "
                                         "`Authorization: Bearer TOKEN` or sign in (POST /api/v1/session)",
                    headers=headers)


def _identify(engine) -> Principal | None:
    """The request's principal from its bearer token, else from its session cookie (checked in the store)."""
    token = _bearer()
    if token:
        from matcher.store import verify_token
        info = verify_token(engine, token)
        if info is None:
            return None
        return Principal("token", info.id, info.name, info.role, info.county_code)
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    from matcher.store.users import csrf_ok, session_user
    user = session_user(engine, session_id)
    if user is None:
        return None
    g.session_id = session_id
    if request.method not in SAFE_METHODS and not csrf_ok(session_id, request.headers.get(CSRF_HEADER)):
        raise APIError(403, "csrf", f"a change made with the session cookie needs the {CSRF_HEADER} header "
                                    "that signing in answered")
    return Principal("user", user.id, user.login, user.role, user.county_code, user.villages, user.display_name)


def init_app(app: Flask) -> None:
    app.extensions["matcher.limiter"] = make_limiter(app)

    @app.before_request
    def _authenticate():
        from matcher.api.runtime import runtime
        op = operation_for(request.endpoint)
        cfg = current_app.config
        check_size(int(cfg["MAX_CSV_BYTES"]) if op is not None and op.csv else int(cfg["MAX_JSON_BYTES"]))
        if not request.path.startswith("/api/"):
            return None
        if op is not None and op.roles is None:      # signing in
            g.token = None
            return None
        rt = runtime()
        info = _identify(rt.engine)
        if info is None:
            raise _unauthorized(SESSION_COOKIE in request.cookies)
        g.token = info
        limiter = current_app.extensions.get("matcher.limiter")
        if limiter is not None:
            wait = limiter.hit(info.key)
            if wait is not None:
                raise APIError(429, "rate_limited", f"more than {cfg['RATE_LIMIT_PER_MINUTE']} requests a "
                                                    f"minute with this token or session; retry in {wait} s",
                               headers={"Retry-After": str(wait)})
        rt.models.sync()
        return None


# -- scope ---------------------------------------------------------------------------------------

def in_scope(county_code: str | None, village_code: str | None = None) -> bool:
    """Volunteers see their county only, narrowed to their villages when they have some; every other
    role that reaches a view sees everything."""
    tok = g.token
    if tok.role != "volunteer":
        return True
    if county_code is None or county_code != tok.county_code:
        return False
    return not tok.villages or (village_code or None) in tok.villages


def scope_villages() -> tuple[str, ...] | None:
    """The villages a volunteer is narrowed to, or None when the whole county (or everything) is in scope."""
    tok = g.token
    return tok.villages if tok.role == "volunteer" and tok.villages else None


def require_scope(county_code: str | None, what: str, resource_id: str | None = None, *,
                  village_code: str | None = None) -> None:
    """A 404 for a record outside the caller's scope, as if it did not exist; the attempt is audited."""
    if not in_scope(county_code, village_code):
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
