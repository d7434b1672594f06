"""Faults: the database locked past its timeout or unreachable, the disk full during an import, the model
file missing or corrupt. Each is a 503 with the error JSON (or a one-line CLI error), nothing is
half-written, and the service recovers by itself once the fault is gone.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import make_api

JOB = {"employer": "东港区车间", "title": "分拣", "kind": "enterprise", "lat": 35.5, "lon": 119.27, "slots": 2,
       "monthly_wage": 2800}


def error_of(resp):
    body = resp.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
    assert "Traceback" not in resp.get_data(as_text=True)
    return body["error"]


def unavailable(resp, code="database_unavailable"):
    assert resp.status_code == 503, resp.get_data(as_text=True)[:300]
    assert resp.headers["Retry-After"]
    return error_of(resp)["code"] == code


def counts(url) -> dict:
    from matcher.store import counts as store_counts, make_engine
    engine = make_engine(url)
    try:
        return store_counts(engine)
    finally:
        engine.dispose()


# -- SQLite locked past its timeout ---------------------------------------------------------------

def test_a_write_waiting_past_the_busy_timeout_is_503_and_the_service_recovers(tmp_path, prior_model_dir,
                                                                                 monkeypatch):
    import matcher.store.db as db
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 300)
    api = make_api(f"sqlite:///{tmp_path / 'locked.db'}", tmp_path, prior_model_dir)
    assert api.get("/api/v1/jobs").status_code == 200
    before = counts(api.app.config["DATABASE_URL"])
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")            # another process holds the write lock
    try:
        started = time.monotonic()
        resp = api.post("/api/v1/jobs", as_="recruiter", json=JOB)
        assert unavailable(resp)
        assert time.monotonic() - started < 5       # the busy timeout, not forever
        assert unavailable(api.patch("/api/v1/jobs/J-SEW", json={"slots": 4}))
        # Reads go on beside the writer (WAL), readiness too.
        assert api.get("/api/v1/jobs").status_code == 200
        assert api.get("/readyz", as_=None).status_code == 200
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert counts(api.app.config["DATABASE_URL"]) == before    # nothing of the refused writes
    resp = api.post("/api/v1/jobs", as_="recruiter", json=JOB)
    assert resp.status_code == 201                              # recovered by itself
    assert api.get("/api/v1/jobs/J-SEW").get_json()["slots"] == 3
    api.app.extensions["matcher"].dispose()


# -- PostgreSQL unreachable -----------------------------------------------------------------------

class Proxy:
    """A TCP relay to PostgreSQL that can be cut (connections refused) or hang (accepted, never answered)."""

    def __init__(self, target=("127.0.0.1", 5432)):
        self.target = target
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.mode = "relay"
        self._server = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self, mode="relay"):
        self.mode = mode
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", self.port))
        srv.listen(64)
        self._server = srv
        threading.Thread(target=self._accept, args=(srv,), daemon=True).start()

    def stop(self):
        """Refuse new connections and break every open one (the server is gone)."""
        if self._server is not None:
            try:
                self._server.shutdown(socket.SHUT_RDWR)     # wakes the accepting thread: the port is free
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()

    def _accept(self, srv):
        while True:
            try:
                client, _ = srv.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(client)
            if self.mode == "hang":
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def pg_proxy(pg_url):
    proxy = Proxy()
    proxy.start()
    proxied = sa.engine.make_url(pg_url).set(host="127.0.0.1", port=proxy.port)
    yield proxy, proxied.render_as_string(hide_password=False)
    proxy.stop()


@pytest.mark.postgres
def test_postgresql_gone_is_503_and_the_service_recovers_when_it_returns(pg_proxy, tmp_path, prior_model_dir,
                                                                          monkeypatch):
    import matcher.store.db as db
    monkeypatch.setattr(db, "CONNECT_TIMEOUT_S", 2)
    proxy, url = pg_proxy
    api = make_api(url, tmp_path, prior_model_dir)
    try:
        assert api.get("/api/v1/households/H-A/matches", as_="volunteer").status_code == 200
        proxy.stop()                                   # the server goes away, pooled connections die
        for path, as_ in (("/readyz", None), ("/api/v1/jobs", "volunteer"),
                          ("/api/v1/households/H-A/matches", "volunteer")):
            started = time.monotonic()
            assert unavailable(api.get(path, as_=as_)), path
            assert time.monotonic() - started < 10
        assert unavailable(api.post("/api/v1/jobs", as_="recruiter", json=JOB))
        proxy.start()                                  # it comes back
        assert api.get("/readyz", as_=None).status_code == 200
        assert api.get("/api/v1/households/H-A/matches", as_="volunteer").status_code == 200
        assert api.post("/api/v1/jobs", as_="recruiter", json=dict(JOB, job_id="J-BACK")).status_code == 201
    finally:
        api.app.extensions["matcher"].dispose()


@pytest.mark.postgres
def test_a_postgresql_that_accepts_but_never_answers_is_503_after_the_connect_timeout(pg_proxy, tmp_path,
                                                                                      prior_model_dir,
                                                                                      monkeypatch):
    """Without a connect timeout such a server held every request for as long as TCP lasts."""
    import matcher.store.db as db
    monkeypatch.setattr(db, "CONNECT_TIMEOUT_S", 1)
    proxy, url = pg_proxy
    api = make_api(url, tmp_path, prior_model_dir)
    try:
        proxy.stop()
        proxy.start(mode="hang")
        answers = []

        def ask():
            answers.append(api.get("/readyz", as_=None))
            answers.append(api.get("/api/v1/jobs", as_="volunteer"))

        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        asking.join(10)
        assert not asking.is_alive(), "the requests hang on a database that never answers"
        assert all(unavailable(a) for a in answers)
        proxy.stop()
        proxy.start()
        assert api.get("/api/v1/jobs", as_="volunteer").status_code == 200
    finally:
        api.app.extensions["matcher"].dispose()


def _connect_params(url) -> dict:
    """What a new connection of make_engine(url) would be opened with (nothing is opened)."""
    from matcher.store import make_engine
    engine = make_engine(url)
    captured = {}

    @sa.event.listens_for(engine, "do_connect")
    def grab(dialect, conn_rec, cargs, cparams):
        captured.update(cparams)
        raise ConnectionAbortedError("captured")

    with pytest.raises(Exception):
        engine.connect()
    engine.dispose()
    return captured


def test_postgresql_engines_get_a_connect_timeout_unless_the_url_has_one():
    from matcher.store.db import CONNECT_TIMEOUT_S
    assert _connect_params("postgresql://nobody@127.0.0.1:9/x")["connect_timeout"] == CONNECT_TIMEOUT_S
    assert str(_connect_params("postgresql://nobody@127.0.0.1:9/x?connect_timeout=2")["connect_timeout"]) == "2"


@pytest.mark.postgres
def test_terminated_backends_are_replaced_without_an_error(pg_url, tmp_path, prior_model_dir):
    api = make_api(pg_url, tmp_path, prior_model_dir)
    try:
        assert api.get("/api/v1/households/H-A/matches", as_="volunteer").status_code == 200
        name = sa.engine.make_url(pg_url).database
        admin = sa.create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.execute(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                          "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name}).scalar()
        admin.dispose()
        assert killed >= 1
        assert api.get("/api/v1/households/H-A/matches", as_="volunteer").status_code == 200
        assert api.post("/api/v1/jobs", as_="recruiter", json=JOB).status_code == 201
    finally:
        api.app.extensions["matcher"].dispose()


# -- disk full during an import -------------------------------------------------------------------

@contextmanager
def tiny_disk(path: Path, size="600k"):
    """A tmpfs of ``size`` at ``path`` (root only); skipped where mounting is not allowed."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def test_a_full_disk_during_import_writes_nothing_and_says_so_in_one_line(tmp_path, small_world_dir):
    """A real full disk: the SQLite file on a 600 kB tmpfs, a world of some 6,000 rows to import."""
    import factories as f
    from matcher.store import init_db, make_engine, import_world
    with tiny_disk(tmp_path / "disk") as disk:
        url = f"sqlite:///{disk / 'matcher.db'}"
        init_db(url)
        engine = make_engine(url)
        import_world(engine, f.world([f.household(household_id="H-FIRST")], [], []))
        engine.dispose()
        before = counts(url)
        env = dict(os.environ, MATCHER_DATABASE_URL=url)
        done = subprocess.run([sys.executable, "-m", "matcher", "db", "import", str(small_world_dir)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode != 0
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "full" in lines[0] and "nothing of it was written" in lines[0]
        assert counts(url) == before
        with sqlite3.connect(disk / "matcher.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_full_disk_during_an_api_import_is_503_and_writes_nothing(tmp_path, prior_model_dir):
    with tiny_disk(tmp_path / "disk") as disk:
        api = make_api(f"sqlite:///{disk / 'api.db'}", tmp_path, prior_model_dir)
        url = api.app.config["DATABASE_URL"]
        before = counts(url)
        rows = "".join(f"HX{i:05d},371102,371102107,371102107201,35.50472,119.26694\n" for i in range(20000))
        resp = api.post("/api/v1/import/households", data=("household_id,county_code,town_code,village_code,lat,lon\n"
                                                           + rows).encode(), content_type="text/csv")
        assert unavailable(resp)
        assert "nothing of it was written" in error_of(resp)["message"]
        assert counts(url) == before
        api.app.extensions["matcher"].dispose()


def test_no_space_left_midway_through_an_import_leaves_the_store_as_it_was(db_url, small_world, monkeypatch):
    """The write fails after the first rows went in (ENOSPC injected): the transaction takes them back."""
    import matcher.store.io as io
    from matcher.store import import_world, init_db, make_engine
    init_db(db_url)
    engine = make_engine(db_url)
    before = counts(db_url)
    inner = io.write_connection
    written = []

    class Filling:
        def __init__(self, conn):
            self._conn = conn

        def execute(self, stmt, *args, **kw):
            if getattr(stmt, "is_insert", False):
                if len(written) == 2:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written.append(stmt.table.name)
            return self._conn.execute(stmt, *args, **kw)

        def __getattr__(self, name):
            return getattr(self._conn, name)

    @contextmanager
    def filling(eng):
        with inner(eng) as conn:
            yield Filling(conn)

    monkeypatch.setattr(io, "write_connection", filling)
    with pytest.raises(OSError) as exc:
        import_world(engine, small_world)
    assert exc.value.errno == errno.ENOSPC
    assert written == ["households", "workers"]         # rows went in before the disk filled
    assert counts(db_url) == before
    monkeypatch.setattr(io, "write_connection", inner)
    result = import_world(engine, small_world)          # and the same import works once there is room
    assert result.inserted["households"] == len(small_world.households)
    engine.dispose()


# -- the model file missing or corrupt ------------------------------------------------------------

def _copy_models(src: Path, dst: Path) -> tuple[Path, Path]:
    shutil.copytree(src, dst)
    (manifest,) = sorted(dst.glob("*.json"))
    return manifest, dst / json.loads(manifest.read_text())["artifact"]


def _rewrite(manifest: Path, **changes):
    data = json.loads(manifest.read_text())
    data.update(changes)
    manifest.write_text(json.dumps(data))


def _garbage_with_its_hash(manifest, artifact):
    artifact.write_bytes(b"not a pickle at all")
    _rewrite(manifest, artifact_sha256=hashlib.sha256(b"not a pickle at all").hexdigest())


BREAKAGES = {
    "artifact deleted": (lambda m, a: a.unlink(), "does not exist"),
    "artifact truncated": (lambda m, a: a.write_bytes(a.read_bytes()[:100]), "SHA-256"),
    "artifact unreadable as a pickle": (_garbage_with_its_hash, "could not be loaded"),
    "manifest not JSON": (lambda m, a: m.write_text("{half a manifest"), "not valid JSON"),
    "manifest empty": (lambda m, a: m.write_text(""), "not valid JSON"),
    "manifest a JSON list": (lambda m, a: m.write_text("[1, 2]"), "manifest"),
    "manifest not UTF-8": (lambda m, a: m.write_bytes(b"\xff\xfe{}"), "manifest"),
    "manifest a folder": (lambda m, a: (m.unlink(), m.mkdir()), "manifest"),
    "other library versions": (lambda m, a: _rewrite(m, libraries={"scikit-learn": "0.1"}), "built with"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_missing_or_corrupt_model_leaves_the_service_up_but_not_ready_saying_why(breakage, tmp_path,
                                                                                    prior_model_dir):
    manifest, artifact = _copy_models(prior_model_dir, tmp_path / "models")
    breaks, why = BREAKAGES[breakage]
    breaks(manifest, artifact)
    api = make_api(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, tmp_path / "models", MODEL_PATH=str(manifest))
    try:
        assert api.get("/healthz", as_=None).status_code == 200          # it started
        ready = api.get("/readyz", as_=None)
        assert unavailable(ready, "model_unavailable")
        assert why in error_of(ready)["message"], error_of(ready)["message"]
        assert unavailable(api.get("/api/v1/households/H-A/matches", as_="volunteer"), "model_unavailable")
        assert api.get("/api/v1/jobs", as_="volunteer").status_code == 200   # what needs no model still works
    finally:
        api.app.extensions["matcher"].dispose()


def test_a_model_path_that_does_not_exist_is_not_ready(tmp_path, prior_model_dir):
    api = make_api(f"sqlite:///{tmp_path / 'm.db'}", tmp_path, prior_model_dir,
                   MODEL_PATH=str(tmp_path / "nowhere" / "model.json"))
    ready = api.get("/readyz", as_=None)
    assert unavailable(ready, "model_unavailable")
    assert "does not exist" in error_of(ready)["message"]
    # An evaluator repairs it without a restart.
    assert api.post("/api/v1/model/reload", as_="evaluator", json={}).status_code == 200
    assert api.get("/readyz", as_=None).status_code == 200


# -- a stream of changes ---------------------------------------------------------------------------

def test_a_stream_of_posts_keeps_one_score_table_up_to_date(tmp_path, prior_model_dir):
    """Every pair is scored once, in the background; each post then rescores only the pairs of its job.

    A whole scoring per change (a second of CPU each on the default world) starved the requests under a
    stream of posts and hires (bench/load.md).
    """
    from matcher.ranking import Engine
    api = make_api(f"sqlite:///{tmp_path / 'stream.db'}", tmp_path, prior_model_dir, PRECOMPUTE_SCORES=True)
    holder = api.app.extensions["matcher"].snapshots
    for i in range(12):
        assert api.post("/api/v1/jobs", as_="recruiter", json=dict(JOB, job_id=f"J-STREAM{i}")).status_code == 201
        got = api.get("/api/v1/households/H-A/matches", as_="volunteer").get_json()
        snap = holder.peek()
        assert f"J-STREAM{i}" in snap.job_rows and got["household_id"] == "H-A"
    deadline = time.monotonic() + 20
    while holder.peek().table is None and time.monotonic() < deadline:
        time.sleep(0.05)
    snap = holder.peek()
    assert snap.table is not None                      # scored once, then kept up to date
    on_demand = Engine(snap.W, snap.J, snap.model, snap.policy)
    assert snap.ranker.household_matches("H-A", 10) == on_demand.household_matches("H-A", 10)
    assert api.post("/api/v1/jobs", as_="recruiter", json=dict(JOB, job_id="J-STREAM-LAST")).status_code == 201
    api.get("/api/v1/households/H-A/matches", as_="volunteer")
    after = holder.peek()
    assert after.table is not None and after.revision > snap.revision    # no whole scoring for a post
    assert after.ranker.household_matches("H-A", 10) == \
        Engine(after.W, after.J, after.model, after.policy).household_matches("H-A", 10)
    api.app.extensions["matcher"].dispose()
