"""Engines and transactions for SQLite (the default, no server) and PostgreSQL.

SQLite is set up so that a committed write survives a crash (WAL, synchronous=FULL), foreign
keys are enforced, and transactions really are transactions: pysqlite's own BEGIN handling is
switched off and SQLAlchemy emits BEGIN itself, so DDL and reads sit inside the transaction too.
Write transactions on SQLite start with BEGIN IMMEDIATE so two writers queue on busy_timeout
instead of failing halfway.
"""

from __future__ import annotations

import os
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from matcher.errors import MatcherError

BUSY_TIMEOUT_MS = 5000
# How long a new PostgreSQL connection may take (a URL's own ?connect_timeout= wins). Without it a
# server that accepts the connection but never answers holds the request for as long as TCP lasts.
CONNECT_TIMEOUT_S = 5
_WRITE = "matcher_write"

_engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()


class StoreUnavailable(MatcherError):
    """The database could not do what was asked (disk full, locked past its timeout, gone): nothing was written."""

    status = 503
    code = "database_unavailable"


def normalise_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver we ship."""
    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    u = sa.engine.make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    return u


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, fit for messages and logs."""
    return normalise_url(url).render_as_string(hide_password=True)


def make_engine(url: str | URL, **kw) -> Engine:
    """An engine for ``url`` with the pragmas and pool settings the service relies on.

    Engines made here are disposed (without closing the parent's connections) in a forked
    child, so one made before gunicorn forks is still safe; see :func:`dispose_after_fork`.
    """
    u = normalise_url(url)
    kw.setdefault("pool_pre_ping", True)
    if u.get_backend_name() == "sqlite":
        db = u.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(u, **kw)
        _sqlite_events(engine)
    else:
        if u.get_backend_name() == "postgresql" and "connect_timeout" not in u.query:
            kw["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **kw.get("connect_args", {})}
        engine = sa.create_engine(u, **kw)
    _engines.add(engine)
    return engine


def _sqlite_events(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = FULL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection):
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one write transaction: committed on success, rolled back on error."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


_sessionmakers: "weakref.WeakKeyDictionary[Engine, sessionmaker]" = weakref.WeakKeyDictionary()


@contextmanager
def session_scope(engine: Engine, *, write: bool = True) -> Iterator[Session]:
    """An ORM session in one transaction: committed on success, rolled back on any error."""
    factory = _sessionmakers.get(engine)
    if factory is None:
        factory = _sessionmakers[engine] = sessionmaker(engine, expire_on_commit=False)
    opts = {_WRITE: True} if write else {}
    with factory() as session:
        session.connection(execution_options=opts)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def dispose_after_fork(engine: Engine | None = None) -> None:
    """Drop pooled connections inherited from a parent process, without closing the parent's.

    Runs automatically in every forked child (``os.register_at_fork``) for engines made by
    :func:`make_engine`; call it yourself from a gunicorn ``post_fork`` hook for other engines.
    """
    for eng in [engine] if engine is not None else list(_engines):
        eng.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=dispose_after_fork)
