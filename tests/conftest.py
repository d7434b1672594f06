import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

PG_ADMIN_URL = os.environ.get("MATCHER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> str | None:
    try:
        import sqlalchemy as sa
        eng = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means unreachable
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


@pytest.fixture(scope="session")
def pg_server():
    """The PostgreSQL admin URL; skipped when unreachable, but a failure in CI."""
    why = _pg_reachable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable in CI at {PG_ADMIN_URL}: {why}")
        pytest.skip(f"PostgreSQL unreachable: {why}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa
    name = f"matcher_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_server.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'matcher.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Run a store test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'matcher.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory):
    """A generated world of 1,500 households (about 2,300 workers) with its referral history."""
    from matcher.generate import generate_world
    d = tmp_path_factory.mktemp("small_world")
    generate_world(d, households=1500, seed=7)
    return d


@pytest.fixture(scope="session")
def small_world(small_world_dir):
    from matcher.schema import load_world
    return load_world(small_world_dir)


@pytest.fixture(scope="session")
def trained_model_dir(small_world, tmp_path_factory):
    """A model trained on the small world, saved with its manifest."""
    from matcher import model as m
    from matcher.policy import load_policy
    d = tmp_path_factory.mktemp("models")
    fitted, metrics = m.fit(small_world, load_policy())
    m.save(fitted, d, metrics=metrics, data_sha256=m.data_hash(small_world))
    return d
