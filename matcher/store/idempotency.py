"""Answers kept under an ``Idempotency-Key`` (SPEC section 5), in the store so every process shares them.

A key is first *reserved* (a row without a status) by the request that brings it, in one insert that
the unique (principal, key) constraint makes atomic across processes; the answer is stored on it when
the request succeeds (2xx), and the reservation is dropped otherwise, so a failed attempt can be
retried with the same key. Rows live 24 hours; old ones are purged now and then by the writes.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from matcher.store.db import write_connection
from matcher.store.models import Base, utcnow

keys = Base.metadata.tables["idempotency_keys"]
LIFETIME = dt.timedelta(hours=24)
# A reservation whose request never finished (its process died) is taken over after this long.
STALE = dt.timedelta(minutes=5)
PURGE_EVERY = 100
_calls = itertools.count(1)


def _purge(conn, now: dt.datetime) -> None:
    conn.execute(sa.delete(keys).where(keys.c.created_at < now - LIFETIME))


def reserve(engine: Engine, principal: str, key: str, digest: str) -> tuple[str, dict | None]:
    """Take ``key`` for a new request, or say why not. Returns ``("new", None)``, ``("replay", answer)``
    with the stored ``status``, ``headers`` and ``body``, ``("mismatch", None)`` (the key came with another
    request) or ``("busy", None)`` (the first request with it is still being answered)."""
    for _ in range(3):
        now = utcnow()
        with write_connection(engine) as conn:
            if next(_calls) % PURGE_EVERY == 0:
                _purge(conn, now)
            conn.execute(sa.delete(keys).where(
                keys.c.principal == principal, keys.c.key == key,
                sa.or_(keys.c.created_at < now - LIFETIME,
                       sa.and_(keys.c.status.is_(None), keys.c.created_at < now - STALE))))
        try:
            with write_connection(engine) as conn:
                conn.execute(keys.insert().values(principal=principal, key=key, request_sha256=digest, status=None,
                                                  headers="{}", body=None, created_at=now))
            return "new", None
        except sa.exc.IntegrityError:
            pass
        with engine.connect() as conn:
            row = conn.execute(sa.select(keys.c.request_sha256, keys.c.status, keys.c.headers, keys.c.body)
                               .where(keys.c.principal == principal, keys.c.key == key)).first()
        if row is None:
            continue                    # dropped meanwhile (a failed first attempt): try to take it again
        if row.request_sha256 != digest:
            return "mismatch", None
        if row.status is None:
            return "busy", None
        return "replay", {"status": int(row.status), "headers": json.loads(row.headers or "{}"), "body": row.body}
    return "busy", None


def complete(engine: Engine, principal: str, key: str, status: int, headers: dict, body: str) -> None:
    """Store the answer of a reserved key."""
    with write_connection(engine) as conn:
        conn.execute(sa.update(keys).where(keys.c.principal == principal, keys.c.key == key)
                     .values(status=status, headers=json.dumps(headers), body=body))


def release(engine: Engine, principal: str, key: str) -> None:
    """Drop a reservation whose request failed, so the key may be used again."""
    with write_connection(engine) as conn:
        conn.execute(sa.delete(keys).where(keys.c.principal == principal, keys.c.key == key,
                                           keys.c.status.is_(None)))


def count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(keys)).scalar_one())
