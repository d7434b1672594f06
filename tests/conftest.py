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


def stored(world, path) -> str:
    """A SQLite store at ``path`` holding ``world``; its URL."""
    from matcher.store import import_world, init_db, make_engine
    url = f"sqlite:///{path}"
    init_db(url)
    engine = make_engine(url)
    import_world(engine, world)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory):
    """A generated world of 1,500 households (about 2,300 workers) with its referral history."""
    from matcher.generate import generate_world
    d = tmp_path_factory.mktemp("small_world")
    generate_world(d, households=1500, seed=7)
    return d


@pytest.fixture(scope="session")
def tiny_world_dir(tmp_path_factory):
    """A generated world of 400 households: quick to read and to import (a transaction of some 10k rows).
    Read only: the notebooks run on it and the crash tests import it again and again."""
    from matcher.generate import generate_world
    d = tmp_path_factory.mktemp("tiny_world")
    generate_world(d, households=400, seed=3)
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


@pytest.fixture(scope="session")
def track_model_dir(small_world, tmp_path_factory):
    """A model trained on the small world with its track record (matcher/history.py), saved with its manifest."""
    from matcher import model as m
    from matcher.policy import load_policy
    d = tmp_path_factory.mktemp("track_models")
    fitted, metrics = m.fit(small_world, load_policy(), track_record=True)
    m.save(fitted, d, metrics=metrics, data_sha256=m.data_hash(small_world))
    return d


# -- the HTTP service (tests/test_api_*.py) ------------------------------------------------------

API_COUNTY, OTHER_COUNTY = "371102", "371121"
OTHER_TOWN, OTHER_VILLAGE = "371121102", "371121102201"


@pytest.fixture(scope="session")
def prior_model_dir(tmp_path_factory):
    """A real artifact + manifest holding the documented prior scorer (fast to make)."""
    from matcher import model as m
    d = tmp_path_factory.mktemp("prior_models")
    m.save(m.prior_model(), d, metrics={}, data_sha256="0" * 64)
    return d


def api_world():
    """Two households in Donggang (371102) and one in another county (about 40 km away), jobs near the first two."""
    import factories as f
    h1 = f.household(household_id="H-A")
    h2 = f.household(household_id="H-B")
    h3 = f.household(household_id="H-OUT", county_code=OTHER_COUNTY, town_code=OTHER_TOWN,
                     village_code=OTHER_VILLAGE, lat=35.75, lon=118.95)
    workers = [
        f.worker("H-A", worker_id="W-A1", skills="缝纫", age=35),
        f.worker("H-A", worker_id="W-A2", age=52, sex="M", graduate=False),
        f.worker("H-B", worker_id="W-B1", age=23, education="college", graduate=True),
        f.worker("H-OUT", worker_id="W-OUT1", age=30),
    ]
    jobs = [
        f.job(job_id="J-SEW", skills="缝纫", slots=3, title="缝纫工"),
        f.job(job_id="J-PACK", kind="enterprise", employer="日照食品厂", title="包装工", slots=2, monthly_wage=3200),
        f.job(job_id="J-CLEAN", kind="public_welfare", employer="陈疃镇", title="保洁员", slots=1, monthly_wage=800,
              min_age=40, max_age=65),
    ]
    return f.world([h1, h2, h3], workers, jobs)


def post_job_near_other_county(api) -> str:
    """A workshop beside H-OUT (api_world's household in the other county), so W-OUT1 has an eligible job."""
    resp = api.post("/api/v1/jobs", as_="admin", json={
        "employer": "莒县扶贫车间", "title": "分拣工", "kind": "workshop_factory", "lat": 35.751, "lon": 118.951,
        "county_code": OTHER_COUNTY, "town_code": OTHER_TOWN, "village_code": OTHER_VILLAGE, "slots": 3,
        "monthly_wage": 2600})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["job_id"]


class Api:
    """A test client with a token per role; ``api.get(path, as_="volunteer")``."""

    def __init__(self, app, tokens):
        self.app, self.client, self.tokens = app, app.test_client(), tokens

    def headers(self, as_, extra=None):
        h = {} if as_ is None else {"Authorization": f"Bearer {self.tokens.get(as_, as_)}"}
        h.update(extra or {})
        return h

    def get(self, path, as_="admin", **kw):
        return self.client.get(path, headers=self.headers(as_, kw.pop("headers", None)), **kw)

    def post(self, path, as_="admin", **kw):
        return self.client.post(path, headers=self.headers(as_, kw.pop("headers", None)), **kw)

    def patch(self, path, as_="admin", **kw):
        return self.client.patch(path, headers=self.headers(as_, kw.pop("headers", None)), **kw)


def make_api(db_url, tmp_path, models_dir, world=None, **config):
    """Initialise a database, import a world, make tokens, and build an app on it."""
    from matcher.api import create_app
    from matcher.store import create_token, import_world, init_db, make_engine
    init_db(db_url)
    engine = make_engine(db_url)
    import_world(engine, world if world is not None else api_world())
    tokens = {
        "admin": create_token(engine, "admin", "admin-1"),
        "volunteer": create_token(engine, "volunteer", "vol-donggang", county=API_COUNTY),
        "volunteer_other": create_token(engine, "volunteer", "vol-other", county=OTHER_COUNTY),
        "recruiter": create_token(engine, "recruiter", "rec-1"),
        "recruiter_other": create_token(engine, "recruiter", "rec-2"),
        "evaluator": create_token(engine, "evaluator", "eval-1"),
    }
    engine.dispose()
    test_config = {"TESTING": True, "DATABASE_URL": db_url, "MODELS_DIR": str(models_dir), "MODEL_PATH": None,
                   "INSTANCE_DIR": str(tmp_path / "instance"), "REDIS_URL": None, "RATE_LIMIT_PER_MINUTE": 10_000,
                   "AUDIT_FLUSH_SECONDS": 0}
    test_config.update(config)
    app = create_app(test_config)
    return Api(app, tokens)


@pytest.fixture
def api(tmp_path, prior_model_dir):
    """The service on a fresh SQLite database holding api_world(), with the prior artifact loaded."""
    a = make_api(f"sqlite:///{tmp_path / 'api.db'}", tmp_path, prior_model_dir)
    yield a
    a.app.extensions["matcher"].dispose()


# -- privacy: nothing the service logs may hold the personal data it served ------------------------
# tests/privacy_guard.py keeps every log record of the session and collects the personal data that
# API answers carried; at the end the run fails if any of it is in a log. See SECURITY.md.

_WORKER_LEAKS = pytest.StashKey[list]()


def pytest_configure(config):
    from privacy_guard import GUARD
    GUARD.install()


def pytest_sessionfinish(session, exitstatus):
    from privacy_guard import GUARD
    leaks = GUARD.leaks()
    GUARD.uninstall()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:          # a pytest-xdist worker: the controller reports
        workeroutput["privacy_leaks"] = leaks
        return
    leaks += session.config.stash.get(_WORKER_LEAKS, [])
    if not leaks:
        return
    lines = [f"FAILED privacy: {len(leaks)} piece(s) of personal data served by the API are in the logs:"]
    lines += [f"  {leak}" for leak in leaks[:50]]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "privacy guard", red=True)
        for line in lines:
            reporter.write_line(line, red=True)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    leaks = getattr(node, "workeroutput", {}).get("privacy_leaks", [])
    node.config.stash.setdefault(_WORKER_LEAKS, []).extend(leaks)


@pytest.fixture
def redis_url(tmp_path):
    """A throwaway redis-server on a free port (skipped when the binary is missing)."""
    import shutil
    import socket
    import subprocess
    import time
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
