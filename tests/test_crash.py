"""Crashes: a process killed with SIGKILL at a random moment leaves the store consistent, and
gunicorn stopped with SIGTERM finishes the requests it has started.

- ``matcher db import`` killed at a random moment (most kills land inside its one transaction):
  the database is either untouched or holds the whole world, ``PRAGMA integrity_check`` is ok,
  and a world whose import was acknowledged (exit code 0) is all there. 20 out of 20 trials.
- A burst of hires through the API killed at a random moment: every acknowledged hire is in the
  store, every refused one is not, ``filled`` is the count of hired referrals, no job is over-filled,
  nobody is hired twice. 20 out of 20 trials.

The killed processes are forked from a multiprocessing fork server that has imported matcher
already, so a trial costs the work, not an interpreter start. The child runs the same code as the
console script (``matcher.cli.main``) and as a gunicorn worker (the Flask app).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
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

import factories as f
from conftest import api_world

TRIALS = 20
TABLES = ("households", "workers", "jobs", "referrals")


@pytest.fixture(scope="module")
def ctx():
    """A fork server with matcher, pandas and SQLAlchemy imported once."""
    c = multiprocessing.get_context("forkserver")
    api = [f"matcher.api.{m}" for m in ("allocations", "health", "households_list", "imports", "jobs", "modelctl",
                                        "openapi", "pages", "people", "referrals", "stats")]
    c.set_forkserver_preload(["matcher.cli", "matcher.api", *api, "matcher.model", "matcher.ranking",
                              "matcher.store", "matcher.schema", "test_crash"])
    return c


def sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def integrity(path: str) -> str:
    with sqlite3.connect(path) as db:
        ok = db.execute("PRAGMA integrity_check").fetchone()[0]
        bad_refs = db.execute("PRAGMA foreign_key_check").fetchall()
    return ok if not bad_refs else f"foreign keys: {bad_refs[:3]}"


def table_counts(url: str) -> dict[str, int]:
    from matcher.store import make_engine
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES}
    finally:
        engine.dispose()


# -- matcher db import -------------------------------------------------------------------------------

def _import_child(url: str, world_dir: str, report) -> None:
    """Run `matcher db import WORLD` as the console script does; report when its transaction starts and ends."""
    from contextlib import contextmanager

    import matcher.store.io as io
    from matcher.cli import main
    os.environ["MATCHER_DATABASE_URL"] = url
    inner = io.write_connection

    @contextmanager
    def timed(engine):
        report.send(("begin", time.monotonic()))
        with inner(engine) as conn:
            yield conn
        report.send(("committed", time.monotonic()))

    io.write_connection = timed
    rc = main(["db", "import", world_dir])
    report.send(("exit", rc))


def _start_import(ctx, url, world_dir):
    ours, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_import_child, args=(url, str(world_dir), theirs), daemon=True)
    started = time.monotonic()
    proc.start()
    theirs.close()
    return proc, ours, started


def _kill(proc) -> None:
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:      # it had finished already: then it must have done everything
        pass
    proc.join(30)


def _drain(conn) -> list:
    out = []
    try:
        while conn.poll(0.5):
            out.append(conn.recv())
    except (EOFError, OSError):
        pass
    return out


def _world_rows(world_dir: Path) -> dict[str, int]:
    return {t: sum(1 for _ in open(world_dir / f"{t}.csv", encoding="utf-8")) - 1 for t in TABLES}


def _empty_store(url):
    from matcher.store import init_db
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm"):
            Path(sqlite_path(url) + suffix).unlink(missing_ok=True)
    init_db(url)


def _reset_postgres(url):
    from matcher.store import make_engine
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE referrals, workers, jobs, households CASCADE"))
    engine.dispose()


def _wait_for(conn, what: str, timeout: float = 60.0) -> list:
    """Messages up to and including the first ``what`` (or up to the child's end)."""
    seen, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if not conn.poll(0.01):
                continue
            seen.append(conn.recv())
        except (EOFError, OSError):
            break
        if seen[-1][0] == what:
            break
    return seen


def _kill_imports(ctx, world_dir, fresh_store, url_for_trial, check_file):
    """Time one import, then kill TRIALS imports: three in four inside the transaction, the rest before it."""
    expected = _world_rows(world_dir)
    for _ in range(2):           # the first run also starts the fork server: time the second
        url = url_for_trial(-1)
        fresh_store(url)
        proc, report, started = _start_import(ctx, url, world_dir)
        proc.join(120)
        events = dict(_drain(report))
        assert events.get("exit") == 0 and table_counts(url) == expected
    begin, span = events["begin"] - started, events["committed"] - events["begin"]
    rng = random.Random(int(os.environ.get("MATCHER_CRASH_SEED", "0")) or None)
    outcomes = []
    for trial in range(TRIALS):
        url = url_for_trial(trial)
        fresh_store(url)
        proc, report, started = _start_import(ctx, url, world_dir)
        if trial % 4 == 3:       # some time before the transaction (reading and checking the files)
            time.sleep(rng.uniform(0, begin))
            said = []
        else:                    # some time inside it, or just after its commit
            said = _wait_for(report, "begin")
            time.sleep(rng.uniform(0, 1.1 * span))
        _kill(proc)
        said = dict(said + _drain(report))
        counts = table_counts(url)
        if check_file:
            assert integrity(sqlite_path(url)) == "ok", f"trial {trial}"
        if said.get("exit") == 0 or "committed" in said:
            assert counts == expected, f"trial {trial}: acknowledged, yet {counts}"
        else:
            assert counts in (expected, dict.fromkeys(TABLES, 0)), f"trial {trial}: half an import: {counts}"
        outcomes.append(("all" if counts == expected else "none")
                        + ("/killed in transaction" if "begin" in said and "committed" not in said else ""))
        if trial % 5 == 4:
            # The store takes the same import afterwards, as if nothing had happened.
            proc, report, _ = _start_import(ctx, url, world_dir)
            proc.join(120)
            assert dict(_drain(report)).get("exit") == 0 and table_counts(url) == expected
    # Most kills must have hit the transaction, or the test proves little.
    assert sum(o.endswith("in transaction") for o in outcomes) >= TRIALS // 3, outcomes
    return outcomes


@pytest.mark.slow
def test_a_killed_import_leaves_nothing_or_everything_on_sqlite(ctx, tiny_world_dir, tmp_path):
    outcomes = _kill_imports(ctx, tiny_world_dir, _empty_store,
                             lambda trial: f"sqlite:///{tmp_path / f'import-{trial}.db'}", check_file=True)
    print("import kills:", outcomes)
    assert len(outcomes) == TRIALS


@pytest.mark.slow
@pytest.mark.postgres
def test_a_killed_import_leaves_nothing_or_everything_on_postgresql(ctx, tiny_world_dir, pg_url):
    def fresh(url):
        _empty_store(url)
        _reset_postgres(url)
    outcomes = _kill_imports(ctx, tiny_world_dir, fresh, lambda trial: pg_url, check_file=False)
    assert len(outcomes) == TRIALS


# -- a burst of hires ----------------------------------------------------------------------------

JOBS, SLOTS, WORKERS = 5, 2, 24


def _hiring_world():
    homes = [f.household(household_id=f"HC{i:02d}") for i in range(WORKERS // 2)]
    workers = [f.worker(f"HC{i // 2:02d}", worker_id=f"WC{i:02d}") for i in range(WORKERS)]
    jobs = [f.job(job_id=f"JC{j}", slots=SLOTS) for j in range(JOBS)]
    return f.world(homes, workers, jobs)


def _prepare_hires(url):
    """The world, one or two pending referrals per worker (more candidates than slots), a volunteer token."""
    import datetime as dt

    from matcher.store import create_token, import_world, make_engine, queries
    _empty_store(url)
    engine = make_engine(url)
    import_world(engine, _hiring_world())
    rng = random.Random(7)
    refs = []
    for i in range(WORKERS):
        for j in rng.sample(range(JOBS), 1 + (i % 3 == 0)):
            rid = f"RC{i:02d}-{j}"
            queries.insert_referral(engine, rid, f"WC{i:02d}", f"JC{j}", dt.date(2026, 3, 1), "setup")
            refs.append(rid)
    token = create_token(engine, "volunteer", "crash-volunteer", county="371102")
    engine.dispose()
    return refs, token


def _undo_hires(url):
    """Back to every referral pending, every job empty, nobody employed."""
    from matcher.store import make_engine
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE referrals SET outcome = NULL, reason = NULL, retained_6m = NULL"))
        conn.execute(sa.text("UPDATE jobs SET filled = 0"))
        conn.execute(sa.text("UPDATE workers SET employed = false"))
    engine.dispose()


def _hire_child(config: dict, token: str, refs: list, report) -> None:
    """Hire every referral from 3 threads through the API; report each answer once it is in hand."""
    from matcher.api import create_app
    app = create_app(config)
    todo = list(refs)
    lock = threading.Lock()

    def work():
        client = app.test_client()
        while True:
            with lock:
                if not todo:
                    return
                rid = todo.pop()
            resp = client.patch(f"/api/v1/referrals/{rid}", json={"outcome": "hired"},
                                headers={"Authorization": f"Bearer {token}"})
            with lock:
                report.send((rid, resp.status_code))

    threads = [threading.Thread(target=work) for _ in range(3)]
    report.send(("ready", time.monotonic()))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report.send(("done", time.monotonic()))


HIRE_CHECKS = {
    "overfilled": "SELECT job_id FROM jobs WHERE filled > slots OR filled <> "
                  "(SELECT count(*) FROM referrals r WHERE r.job_id = jobs.job_id AND r.outcome = 'hired')",
    "hired_twice": "SELECT worker_id FROM referrals WHERE outcome = 'hired' GROUP BY worker_id HAVING count(*) > 1",
    "not_employed": "SELECT r.worker_id FROM referrals r JOIN workers w ON w.worker_id = r.worker_id "
                    "WHERE r.outcome = 'hired' AND NOT w.employed",
    "employed_unhired": "SELECT worker_id FROM workers w WHERE employed AND NOT EXISTS "
                        "(SELECT 1 FROM referrals r WHERE r.worker_id = w.worker_id AND r.outcome = 'hired')",
}


def _check_hires(url, answers):
    """Every rule holds; every 200 is a stored hire, every 409 left its referral pending. Returns the hires."""
    from matcher.store import make_engine
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            broken = {name: [r[0] for r in conn.execute(sa.text(q))] for name, q in HIRE_CHECKS.items()}
            outcome = dict(conn.execute(sa.text("SELECT referral_id, outcome FROM referrals")).all())
    finally:
        engine.dispose()
    assert broken == dict.fromkeys(HIRE_CHECKS, [])
    for rid, status in answers:
        if status == 200:
            assert outcome[rid] == "hired", rid          # acknowledged: never lost
        else:
            assert status == 409 and outcome[rid] is None, (rid, status)
    return sum(1 for o in outcome.values() if o == "hired")


def _kill_hires(ctx, url, prior_model_dir, tmp_path, check_file):
    config = {"DATABASE_URL": url, "MODELS_DIR": str(prior_model_dir), "MODEL_PATH": None,
              "INSTANCE_DIR": str(tmp_path / "instance"), "LOAD_MODEL": False, "REDIS_URL": None,
              "RATE_LIMIT_PER_MINUTE": 0, "LOG_LEVEL": "WARNING"}
    refs, token = _prepare_hires(url)

    def start():
        ours, theirs = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_hire_child, args=(config, token, refs, theirs), daemon=True)
        proc.start()
        theirs.close()
        return proc, ours

    _undo_hires(url)             # one whole burst first: every slot taken, nobody twice
    proc, report = start()
    proc.join(120)
    answers = _drain(report)
    assert [a[0] for a in answers][-1] == "done"
    assert _check_hires(url, answers[1:-1]) == JOBS * SLOTS
    rng = random.Random(int(os.environ.get("MATCHER_CRASH_SEED", "0")) or None)
    acknowledged = []
    for trial in range(TRIALS):
        _undo_hires(url)
        proc, report = start()
        # A random moment of the burst: after a random number of answers, and a little more.
        said = _wait_for(report, "ready")
        said += [report.recv() for _ in range(rng.randrange(0, len(refs) // 2))]
        time.sleep(rng.uniform(0, 0.02))
        _kill(proc)
        answers = [a for a in said + _drain(report) if a[0] not in ("ready", "done")]
        if check_file:
            assert integrity(sqlite_path(url)) == "ok", f"trial {trial}"
        hired = _check_hires(url, answers)
        assert hired >= sum(1 for _, status in answers if status == 200)
        acknowledged.append(len(answers))
    assert sum(n < len(refs) for n in acknowledged) >= TRIALS // 2, acknowledged    # killed mid-burst
    return acknowledged


@pytest.mark.slow
def test_a_killed_burst_of_hires_loses_no_acknowledged_hire_on_sqlite(ctx, tmp_path, prior_model_dir):
    _kill_hires(ctx, f"sqlite:///{tmp_path / 'hires.db'}", prior_model_dir, tmp_path, check_file=True)


@pytest.mark.slow
@pytest.mark.postgres
def test_a_killed_burst_of_hires_loses_no_acknowledged_hire_on_postgresql(ctx, tmp_path, prior_model_dir,
                                                                          pg_url):
    _kill_hires(ctx, pg_url, prior_model_dir, tmp_path, check_file=False)


# -- SIGTERM: gunicorn finishes what it started ----------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port, path, token=None, timeout=5):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    resp = conn.getresponse()
    return resp.status, resp.read()


@contextmanager
def run_service(tmp_path: Path, models_dir: Path, **env):
    """`matcher serve --workers 2` on a loopback port over api_world(); yields (process, port, tokens, log path).

    ``env`` adds MATCHER_* variables (e.g. MATCHER_REDIS_URL); the log is the service's whole output.
    """
    from matcher.store import create_token, import_world, init_db, make_engine
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    init_db(db)
    engine = make_engine(db)
    import_world(engine, api_world())
    tokens = {"admin": create_token(engine, "admin", "admin"),
              "volunteer": create_token(engine, "volunteer", "vol", county="371102")}
    engine.dispose()
    port = _free_port()
    environ = dict(os.environ, MATCHER_DATABASE_URL=db, MATCHER_MODELS_DIR=str(models_dir),
                   MATCHER_INSTANCE=str(tmp_path / "instance"), MATCHER_LOG_LEVEL="INFO")
    for name in ("MATCHER_MODEL", "MATCHER_REDIS_URL", "MATCHER_RATE_LIMIT"):
        environ.pop(name, None)
    environ.update(env)
    log_path = tmp_path / "serve.log"
    log = open(log_path, "w+")
    from privacy_guard import GUARD
    GUARD.watch_file(log_path)      # its log is checked for personal data at the end of the session
    proc = subprocess.Popen([sys.executable, "-m", "matcher", "serve", "--port", str(port), "--workers", "2"],
                            env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(240):
            try:
                if _get(port, "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.25)
        else:
            pytest.fail("the service did not become ready")
        assert proc.poll() is None, log_path.read_text()[-2000:]
        yield proc, port, tokens, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


@pytest.fixture
def served(tmp_path, prior_model_dir):
    with run_service(tmp_path, prior_model_dir) as service:
        yield service


@pytest.mark.slow
def test_sigterm_lets_gunicorn_finish_a_request_in_flight(served):
    proc, port, tokens, log = served
    body = json.dumps({"job_id": "J-TERM", "employer": "岚山区车间", "title": "包装", "kind": "enterprise",
                       "lat": 35.5, "lon": 119.27, "slots": 2, "monthly_wage": 3000}, ensure_ascii=False).encode()
    # A slow client: the headers and half the body now, the rest after the master has been told to stop.
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {tokens['admin']}\r\nContent-Length: {len(body)}\r\n"
                   "Connection: close\r\n\r\n".encode() + body[:len(body) // 2])
    time.sleep(1.0)   # the worker has taken the request and waits for the rest of the body
    os.kill(proc.pid, signal.SIGTERM)
    time.sleep(1.5)   # the master has passed the signal on; the listening socket is closed
    with pytest.raises(OSError):
        _get(port, "/healthz", timeout=2)
    assert proc.poll() is None, "gunicorn stopped before finishing the request in flight"
    sock.sendall(body[len(body) // 2:])
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 201"), answer[:300]
    assert json.loads(payload)["job_id"] == "J-TERM"
    assert proc.wait(timeout=40) == 0
    from matcher.store import make_engine, queries
    engine = make_engine(f"sqlite:///{log.parent / 'serve.db'}")
    assert queries.get_job(engine, "J-TERM")["employer"] == "岚山区车间"     # acknowledged, and stored
    engine.dispose()


@pytest.mark.slow
def test_gunicorn_refuses_an_oversized_chunked_body(served):
    """Through a real server (which marks its input as terminated) a chunked body past 1 MiB is a 413."""
    _, port, tokens, _ = served
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"POST /api/v1/referrals HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                 + f"Authorization: Bearer {tokens['volunteer']}\r\nTransfer-Encoding: chunked\r\n"
                   "Connection: close\r\n\r\n".encode())
    chunk = b" " * 65536
    try:
        for _ in range(20):          # 1.25 MiB of whitespace
            sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass                          # the server may answer and close before taking it all
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b'"payload_too_large"' in answer
