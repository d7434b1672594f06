"""Abuse: the rate limit per token (shared by gunicorn's workers through Redis), tokens that expire or
are revoked while in use, and every attempt outside a token's scope or role written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import make_api
from test_crash import _get, run_service


def _audit(api):
    from matcher.store import make_engine, queries
    engine = make_engine(api.app.config["DATABASE_URL"])
    try:
        return queries.audit_entries(engine, limit=1000)
    finally:
        engine.dispose()


# -- attempts outside scope and role are audited ---------------------------------------------------

def _other_county_referral(api) -> str:
    from conftest import post_job_near_other_county
    job_id = post_job_near_other_county(api)
    resp = api.post("/api/v1/referrals", as_="admin", json={"worker_id": "W-OUT1", "job_id": job_id})
    return resp.get_json()["referral_id"]


def _rec1_job(api) -> str:
    resp = api.post("/api/v1/jobs", as_="recruiter", json={"employer": "甲厂", "title": "分拣", "kind": "enterprise",
                                                            "lat": 35.5, "lon": 119.27, "slots": 2,
                                                            "monthly_wage": 2800})
    return resp.get_json()["job_id"]


OUT_OF_SCOPE = [
    # (who, method, path (with {ref} or {job}), body, resource type, resource id (or {ref}/{job}))
    ("volunteer", "GET", "/api/v1/households/H-OUT/matches", None, "household", "H-OUT"),
    ("volunteer", "GET", "/api/v1/workers/W-OUT1/matches", None, "worker", "W-OUT1"),
    ("volunteer", "GET", "/api/v1/households/H-OUT", None, "household", "H-OUT"),
    ("volunteer", "POST", "/api/v1/referrals", {"worker_id": "W-OUT1", "job_id": "J-SEW"}, "worker", "W-OUT1"),
    ("volunteer", "GET", "/api/v1/referrals/{ref}", None, "referral", "{ref}"),
    ("volunteer", "PATCH", "/api/v1/referrals/{ref}", {"outcome": "hired"}, "referral", "{ref}"),
    ("recruiter_other", "GET", "/api/v1/jobs/{job}", None, "job", "{job}"),
    ("recruiter_other", "PATCH", "/api/v1/jobs/{job}", {"slots": 9}, "job", "{job}"),
    ("recruiter_other", "POST", "/api/v1/jobs/{job}/close", None, "job", "{job}"),
    ("recruiter_other", "GET", "/api/v1/jobs/{job}/candidates", None, "job", "{job}"),
]


@pytest.mark.parametrize("who,method,path,body,rtype,rid", OUT_OF_SCOPE,
                         ids=[f"{w} {m} {p}" for w, m, p, *_ in OUT_OF_SCOPE])
def test_an_attempt_outside_scope_is_a_404_and_is_audited(api, who, method, path, body, rtype, rid):
    ids = {"ref": _other_county_referral(api), "job": _rec1_job(api)}
    path, rid = path.format(**ids), rid.format(**ids)
    resp = api.client.open(path, method=method, json=body, headers=api.headers(who))
    assert resp.status_code == 404
    assert resp.get_json()["error"]["code"] == "not_found"
    denied = [e for e in _audit(api) if e["action"].endswith(".denied")]
    actor = {"volunteer": "vol-donggang", "recruiter_other": "rec-2"}[who]
    assert [(e["actor"], e["role"], e["resource_type"], e["resource_id"], e["status"]) for e in denied] == \
        [(actor, who.split("_")[0], rtype, rid, 404)]
    # Nothing was done on the refused request's behalf.
    assert api.get(f"/api/v1/jobs/{ids['job']}", as_="admin").get_json()["slots"] == 2
    assert api.get(f"/api/v1/referrals/{ids['ref']}", as_="admin").get_json()["outcome"] is None


def test_a_missing_record_is_not_logged_as_an_attempt_on_anyone(api):
    assert api.get("/api/v1/households/NOBODY/matches", as_="volunteer").status_code == 404
    assert api.get("/api/v1/jobs/J-NONE", as_="recruiter").status_code == 404
    assert [e for e in _audit(api) if e["action"].endswith(".denied")] == []


def test_a_role_outside_the_table_is_a_403_and_is_audited(api):
    assert api.get("/api/v1/stats", as_="volunteer").status_code == 403
    assert api.post("/api/v1/model/reload", as_="recruiter", json={}).status_code == 403
    denied = {(e["actor"], e["role"], e["action"], e["status"]) for e in _audit(api)}
    assert ("vol-donggang", "volunteer", "stats.get_stats.denied", 403) in denied
    assert ("rec-1", "recruiter", "model.reload_model.denied", 403) in denied


# -- tokens that stop working while in use -------------------------------------------------------

def test_a_token_that_expires_while_in_use_is_refused_from_then_on(api):
    from matcher.store import create_token, make_engine
    engine = make_engine(api.app.config["DATABASE_URL"])
    token = create_token(engine, "volunteer", "short-lived", county="371102",
                         expires_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1.5))
    engine.dispose()
    assert api.get("/api/v1/households/H-A/matches", as_=token).status_code == 200
    time.sleep(1.6)
    resp = api.get("/api/v1/households/H-A/matches", as_=token)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthorized"


def test_a_revoked_token_is_refused_at_once_by_every_process(tmp_path, prior_model_dir):
    """Tokens are checked against the store on every request: no process keeps a revoked one alive."""
    from conftest import Api
    from matcher.api import create_app
    from matcher.store import make_engine, revoke_token
    api = make_api(f"sqlite:///{tmp_path / 'revoke.db'}", tmp_path, prior_model_dir)
    other = Api(create_app(dict(api.app.config)), api.tokens)       # another worker process
    for a in (api, other):
        assert a.get("/api/v1/jobs", as_="volunteer").status_code == 200
    engine = make_engine(api.app.config["DATABASE_URL"])
    revoke_token(engine, "vol-donggang")
    engine.dispose()
    for a in (api, other):
        assert a.get("/api/v1/jobs", as_="volunteer").status_code == 401
    assert api.get("/api/v1/jobs", as_="volunteer_other").status_code == 200


# -- the rate limit across gunicorn's workers ----------------------------------------------------

def _inside_one_minute(needed: float = 5.0):
    """The limit counts per clock minute: start where the next `needed` seconds stay inside one."""
    into = time.time() % 60
    if into > 60 - needed:
        time.sleep(60 - into + 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("shared_by", ["redis", "instance file"])
def test_gunicorn_workers_share_one_limit_per_token(tmp_path, prior_model_dir, request, shared_by):
    """With Redis, through Redis; on the embedded default (SQLite, no Redis), through the instance folder."""
    limit = 12
    extra = {"MATCHER_REDIS_URL": request.getfixturevalue("redis_url")} if shared_by == "redis" else {}
    with run_service(tmp_path, prior_model_dir, MATCHER_RATE_LIMIT=str(limit), **extra) as (proc, port, tokens, log):
        _inside_one_minute(needed=20)
        answers, pids = [], set()
        # A new connection each time, until both worker processes have answered some (the access log
        # names the process of each request); with a limit per process each would allow `limit` of its own.
        while len(answers) < 3 * limit or (len(pids) < 2 and len(answers) < 400):
            answers.append(_get(port, "/api/v1/jobs", tokens["volunteer"])[0])
            pids = set(re.findall(r"\[(\d+)\] GET /api/v1/jobs (?:200|429)", log.read_text()))
        assert len(pids) == 2, "one worker process answered every request"
        assert answers.count(200) == limit, answers
        assert answers[limit:] == [429] * (len(answers) - limit)
        assert _get(port, "/api/v1/jobs", tokens["admin"])[0] == 200     # per token: another is not affected


@pytest.mark.slow
def test_a_token_revoked_with_the_cli_is_refused_by_the_running_service(tmp_path, prior_model_dir):
    with run_service(tmp_path, prior_model_dir) as (proc, port, tokens, log):
        assert all(_get(port, "/api/v1/jobs", tokens["volunteer"])[0] == 200 for _ in range(4))
        env = dict(os.environ, MATCHER_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}")
        subprocess.run([sys.executable, "-m", "matcher", "token", "revoke", "vol"], env=env, check=True,
                       capture_output=True)
        assert [_get(port, "/api/v1/jobs", tokens["volunteer"])[0] for _ in range(6)] == [401] * 6
        assert _get(port, "/api/v1/jobs", tokens["admin"])[0] == 200


@pytest.mark.slow
def test_requests_gunicorn_refuses_itself_get_the_error_json(tmp_path, prior_model_dir):
    """A request line or headers too large never reach Flask: gunicorn answers them, and still as JSON."""
    import json
    import socket

    def raw(port, request: bytes):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(request)
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:]), body

    with run_service(tmp_path, prior_model_dir) as (proc, port, tokens, log):
        cases = [(b"GET /api/v1/jobs?q=" + b"x" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
                 (b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n", 431,
                  "headers_too_large"),
                 (b"GET /api/v1/jobs HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) +
                  b"\r\n", 431, "headers_too_large"),
                 (b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request")]
        for request, status, code in cases:
            got, headers, body = raw(port, request)
            assert got == status, body
            assert headers["Content-Type"] == "application/json"
            err = json.loads(body)["error"]
            assert err["code"] == code and err["message"] and err["field"] is None
        assert "x" * 100 not in log.read_text()                   # the refused line is not logged
        assert _get(port, "/api/v1/jobs", tokens["volunteer"])[0] == 200
