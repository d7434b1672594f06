"""Schema migrations, run in code: no alembic.ini is needed at runtime."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Engine

from matcher.errors import MatcherError
from matcher.store.db import make_engine, safe_url, write_connection

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant will do: it only keeps two processes from migrating one PostgreSQL database at once.
_PG_LOCK_KEY = 7_302_115_042


class SchemaNotReady(MatcherError):
    """The database has no tables yet, or an older schema than this code expects."""

    status = 503
    code = "database_unavailable"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None when it was never initialised."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _engine(target: str | URL | Engine) -> tuple[Engine, bool]:
    if isinstance(target, Engine):
        return target, False
    return make_engine(target), True


def init_db(target: str | URL | Engine) -> str:
    """``alembic upgrade head``: create or bring up to date every table. Harmless to repeat.

    Everything runs in one transaction (both backends have transactional DDL), so a failed
    migration leaves the schema as it was. Returns the head revision.
    """
    engine, own = _engine(target)
    try:
        cfg = alembic_config()
        with write_connection(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return head_revision()
    finally:
        if own:
            engine.dispose()


def check_schema(engine: Engine) -> None:
    """Raise :class:`SchemaNotReady` unless the database is at the head revision."""
    current, head = current_revision(engine), head_revision()
    if current is None:
        raise SchemaNotReady(f"the database at {safe_url(engine.url)} has no tables yet; "
                             "run `matcher db init` (or `matcher db import DIR`) first")
    if current != head:
        raise SchemaNotReady(f"the database at {safe_url(engine.url)} is at schema revision {current}, "
                             f"this code needs {head}; run `matcher db init` to upgrade it")
