"""People sign in (SPEC section 7): the session cookie, CSRF, revocation in every process, the throttle,
equal 401s, audit entries naming the user."""

from __future__ import annotations

import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest

from conftest import API_COUNTY, api_world, make_api

PASSWORD = "村里的密码-2026"


def _engine(api):
    from matcher.store import make_engine
    return make_engine(api.app.config["DATABASE_URL"])


def add_user(api, login="li.wei", role="volunteer", county=API_COUNTY, villages=(), password=PASSWORD,
             display_name="李伟"):
    from matcher.store.users import create_user
    engine = _engine(api)
    try:
        return create_user(engine, role=role, login=login, password=password, display_name=display_name,
                           county=county, villages=villages)
    finally:
        engine.dispose()


def sign_in(client, login="li.wei", password=PASSWORD, **kw):
    return client.post("/api/v1/session", json={"login": login, "password": password}, **kw)


def set_cookie(resp) -> str:
    (header,) = resp.headers.getlist("Set-Cookie")
    return header


@pytest.fixture
def person(api):
    add_user(api)
    return api


# -- signing in ------------------------------------------------------------------------------------

def test_sign_in_answers_the_user_and_a_csrf_token_and_sets_a_strict_httponly_cookie(person):
    client = person.app.test_client()
    resp = sign_in(client)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"display_name", "role", "county_code", "villages", "csrf_token"}
    assert (body["display_name"], body["role"], body["county_code"], body["villages"]) == \
        ("李伟", "volunteer", API_COUNTY, [])
    cookie = set_cookie(resp)
    assert cookie.startswith("matcher_session=")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age"} <= flags and "secure" not in flags
    assert "SameSite=Strict" in cookie and f"Max-Age={30 * 86400}" in cookie
    me = client.get("/api/v1/me").get_json()
    assert (me["name"], me["display_name"], me["csrf_token"]) == ("li.wei", "李伟", body["csrf_token"])
    assert client.get("/api/v1/households/H-A").status_code == 200


def test_the_login_is_not_case_sensitive(person):
    assert sign_in(person.app.test_client(), login="  Li.Wei ").status_code == 200


def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy_only(tmp_path, prior_model_dir):
    plain = make_api(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, prior_model_dir)
    add_user(plain)
    assert "Secure" in set_cookie(sign_in(plain.app.test_client(), base_url="https://localhost"))
    forwarded = {"X-Forwarded-Proto": "https"}
    assert "Secure" not in set_cookie(sign_in(plain.app.test_client(), headers=forwarded))
    trusting = make_api(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, prior_model_dir, TRUST_PROXY=True)
    add_user(trusting)
    assert "Secure" in set_cookie(sign_in(trusting.app.test_client(), headers=forwarded))
    assert "Secure" not in set_cookie(sign_in(trusting.app.test_client(), headers={"X-Forwarded-Proto": "http"}))


def test_trusting_the_proxy_is_a_setting_off_by_default():
    from matcher.config import load_settings
    assert load_settings({}).trust_proxy is False
    assert load_settings({"MATCHER_TRUST_PROXY": "true"}).trust_proxy is True
    with pytest.raises(ValueError, match="MATCHER_TRUST_PROXY"):
        load_settings({"MATCHER_TRUST_PROXY": "perhaps"})


def test_a_wrong_password_and_an_unknown_login_get_the_same_401(person):
    client = person.app.test_client()
    wrong = sign_in(client, password="not-the-password")
    unknown = sign_in(client, login="nobody.here", password="not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["message"] == "wrong login or password"
    assert "Set-Cookie" not in wrong.headers and "Set-Cookie" not in unknown.headers


def test_an_unknown_login_costs_one_password_verification_like_a_wrong_password(person, monkeypatch):
    from matcher.store import users
    calls = []
    real = users._verify
    monkeypatch.setattr(users, "_verify", lambda h, p: calls.append(h) or real(h, p))
    client = person.app.test_client()
    sign_in(client, password="not-the-password")
    sign_in(client, login="nobody.here", password="not-the-password")
    assert len(calls) == 2 and all(h.startswith("$argon2id$") for h in calls)


def test_a_wrong_password_and_an_unknown_login_take_the_same_time(person):
    client = person.app.test_client()

    def timed(login):
        started = time.perf_counter()
        assert sign_in(client, login=login, password="not-the-password").status_code == 401
        return time.perf_counter() - started

    known, unknown = [], []
    for i in range(4):   # 8 failures in all: under the throttle of either login
        known.append(timed("li.wei"))
        unknown.append(timed("nobody.here"))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.6 < ratio < 1.6, (known, unknown)


def test_a_disabled_user_cannot_sign_in_and_gets_the_same_401(person):
    from matcher.store.users import disable_user
    engine = _engine(person)
    disable_user(engine, "li.wei")
    engine.dispose()
    resp = sign_in(person.app.test_client())
    assert resp.status_code == 401 and resp.get_json()["error"]["message"] == "wrong login or password"


# -- CSRF --------------------------------------------------------------------------------------

def test_a_write_with_the_cookie_needs_the_csrf_header(person):
    client = person.app.test_client()
    csrf = sign_in(client).get_json()["csrf_token"]
    referral = {"worker_id": "W-A1", "job_id": "J-SEW"}
    missing = client.post("/api/v1/referrals", json=referral)
    assert missing.status_code == 403 and missing.get_json()["error"]["code"] == "csrf"
    wrong = client.post("/api/v1/referrals", json=referral, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    ok = client.post("/api/v1/referrals", json=referral, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.get_json()
    assert client.delete("/api/v1/session").status_code == 403      # signing out is a write too


def test_bearer_tokens_need_no_csrf_header(api):
    resp = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-SEW"})
    assert resp.status_code == 201


# -- ending sessions, in every process -------------------------------------------------------------

def _second_process(api, tmp_path, prior_model_dir):
    """Another app on the same store: what another worker process sees."""
    from matcher.api import create_app
    config = dict(api.app.config, INSTANCE_DIR=str(tmp_path / "other"))
    return create_app({k: v for k, v in config.items() if k.isupper()})


def _with_cookie(app, cookie_value, csrf=None):
    client = app.test_client()
    client.set_cookie("matcher_session", cookie_value)
    return client


def _cookie_value(client):
    return client.get_cookie("matcher_session").value


def test_signing_out_ends_the_session_at_once_in_another_process(person, tmp_path, prior_model_dir):
    other = _second_process(person, tmp_path, prior_model_dir)
    client = person.app.test_client()
    csrf = sign_in(client).get_json()["csrf_token"]
    elsewhere = _with_cookie(other, _cookie_value(client))
    assert elsewhere.get("/api/v1/me").status_code == 200
    out = client.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert "Max-Age=0" in set_cookie(out)
    resp = elsewhere.get("/api/v1/me")
    assert resp.status_code == 401 and "Max-Age=0" in set_cookie(resp)
    other.extensions["matcher"].dispose()


def test_disabling_a_user_ends_its_sessions_at_once(person, tmp_path, prior_model_dir):
    from matcher.store.users import disable_user
    other = _second_process(person, tmp_path, prior_model_dir)
    client = person.app.test_client()
    sign_in(client)
    elsewhere = _with_cookie(other, _cookie_value(client))
    assert elsewhere.get("/api/v1/households/H-A").status_code == 200
    engine = _engine(person)
    disable_user(engine, "li.wei")
    engine.dispose()
    assert client.get("/api/v1/households/H-A").status_code == 401
    assert elsewhere.get("/api/v1/households/H-A").status_code == 401
    other.extensions["matcher"].dispose()


def test_changing_the_password_ends_every_other_session_and_starts_a_new_one(person):
    phone, laptop = person.app.test_client(), person.app.test_client()
    csrf = sign_in(phone).get_json()["csrf_token"]
    sign_in(laptop)
    refused = phone.post("/api/v1/session/password", json={"current_password": "guess-guess-guess",
                                                           "new_password": "新的密码-足够长了-2026"},
                         headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "current_password"
    assert phone.get("/api/v1/me").status_code == 200          # a refused change signs nobody out
    short = phone.post("/api/v1/session/password", json={"current_password": PASSWORD, "new_password": "short"},
                       headers={"X-CSRF-Token": csrf})
    assert short.status_code == 422 and short.get_json()["error"]["field"] == "new_password"
    old_cookie = _cookie_value(phone)
    resp = phone.post("/api/v1/session/password", json={"current_password": PASSWORD,
                                                        "new_password": "新的密码-足够长了-2026"},
                      headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["csrf_token"] != csrf
    assert _cookie_value(phone) != old_cookie
    assert phone.get("/api/v1/me").status_code == 200
    assert laptop.get("/api/v1/me").status_code == 401
    assert _with_cookie(person.app, old_cookie).get("/api/v1/me").status_code == 401
    fresh = person.app.test_client()
    assert sign_in(fresh).status_code == 401
    assert sign_in(fresh, password="新的密码-足够长了-2026").status_code == 200


def test_a_token_has_no_password_to_change(api):
    resp = api.post("/api/v1/session/password", as_="admin", json={"current_password": "x" * 10,
                                                                  "new_password": "y" * 10})
    assert resp.status_code == 403


def test_a_session_lasts_thirty_days(person):
    from matcher.store.users import create_session, get_user, session_user
    engine = _engine(person)
    user = get_user(engine, "li.wei")
    now = dt.datetime.now(dt.timezone.utc)
    sid, expires = create_session(engine, user.id, now=now - dt.timedelta(days=29, hours=23))
    assert expires - (now - dt.timedelta(days=29, hours=23)) == dt.timedelta(days=30)
    assert session_user(engine, sid, now=now) is not None
    assert session_user(engine, sid, now=now + dt.timedelta(hours=2)) is None
    old, _ = create_session(engine, user.id, now=now - dt.timedelta(days=31))
    engine.dispose()
    assert _with_cookie(person.app, old).get("/api/v1/me").status_code == 401
    assert _with_cookie(person.app, sid).get("/api/v1/me").status_code == 200


def test_a_network_failure_is_not_a_sign_out_a_bad_cookie_is_401(person):
    assert _with_cookie(person.app, "made-up").get("/api/v1/me").status_code == 401
    assert _with_cookie(person.app, "x" * 4000).get("/api/v1/me").status_code == 401


# -- the throttle ------------------------------------------------------------------------------

def test_more_than_ten_failures_in_fifteen_minutes_is_429_for_that_login_in_every_process(
        person, tmp_path, prior_model_dir):
    other = _second_process(person, tmp_path, prior_model_dir)
    add_user(person, login="zhang.min", display_name="张敏")
    client = person.app.test_client()
    for i in range(10):
        assert sign_in(client, password=f"wrong-{i}-wrong").status_code == 401, i
    throttled = sign_in(client)          # the right password: not even checked
    assert throttled.status_code == 429
    assert throttled.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 15 * 60
    assert sign_in(other.test_client()).status_code == 429          # the count is in the store
    assert sign_in(client, login="zhang.min").status_code == 200     # other logins are not throttled
    other.extensions["matcher"].dispose()


def test_the_throttle_forgets_failures_older_than_fifteen_minutes(person):
    from matcher.store.users import Throttled, authenticate
    engine = _engine(person)
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20)
    for i in range(10):
        assert authenticate(engine, "li.wei", "wrong", now=start + dt.timedelta(seconds=i)) is None
    with pytest.raises(Throttled) as exc:
        authenticate(engine, "li.wei", PASSWORD, now=start + dt.timedelta(minutes=5))
    assert exc.value.retry_after == 601        # until the first failure is 15 minutes old
    assert authenticate(engine, "li.wei", PASSWORD, now=start + dt.timedelta(minutes=16)).login == "li.wei"
    engine.dispose()


def test_unknown_logins_are_throttled_too(person):
    client = person.app.test_client()
    for i in range(10):
        assert sign_in(client, login="guess.who", password=f"wrong-{i}-wrong").status_code == 401
    assert sign_in(client, login="guess.who", password="whatever-else").status_code == 429


# -- who is named ------------------------------------------------------------------------------

def test_every_audit_entry_of_a_session_names_the_user(person):
    from matcher.store import queries
    client = person.app.test_client()
    csrf = sign_in(client).get_json()["csrf_token"]
    client.get("/api/v1/households/H-A")
    client.post("/api/v1/referrals", json={"worker_id": "W-A1", "job_id": "J-SEW"}, headers={"X-CSRF-Token": csrf})
    client.get("/api/v1/households/H-OUT")
    sign_in(person.app.test_client(), password="wrong-wrong-wrong")
    engine = _engine(person)
    entries = queries.audit_entries(engine)
    engine.dispose()
    mine = [e for e in entries if e["action"] in ("session.create", "household.read", "referral.create",
                                                 "get_household.denied", "households_list.get_household.denied",
                                                 "session.failed")]
    assert {e["action"] for e in mine} >= {"session.create", "household.read", "referral.create", "session.failed"}
    assert all(e["actor"] == "li.wei" for e in mine), mine
    assert any(e["status"] == 404 and e["actor"] == "li.wei" for e in entries)


def test_a_recruiter_signed_in_owns_the_jobs_it_posts(api):
    add_user(api, login="chen.factory", role="recruiter", county=None, display_name="陈厂长")
    client = api.app.test_client()
    csrf = sign_in(client, login="chen.factory").get_json()["csrf_token"]
    resp = client.post("/api/v1/jobs", headers={"X-CSRF-Token": csrf}, json={
        "employer": "陈氏服装厂", "title": "缝纫工", "kind": "enterprise", "lat": 35.5, "lon": 119.27, "slots": 2,
        "monthly_wage": 2800})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["owner"] == "chen.factory"
    assert client.get(f"/api/v1/jobs/{resp.get_json()['job_id']}").status_code == 200


def test_the_session_endpoints_are_in_the_openapi_document(api):
    doc = api.client.get("/openapi.json").get_json()
    paths = doc["paths"]
    assert {"post", "delete"} <= set(paths["/api/v1/session"])
    assert paths["/api/v1/session"]["post"]["security"] == []
    assert {"200", "401", "429"} <= set(paths["/api/v1/session"]["post"]["responses"])
    assert "post" in paths["/api/v1/session/password"]
    assert "session" in doc["components"]["securitySchemes"]


# -- two gunicorn workers --------------------------------------------------------------------------

@pytest.mark.slow
def test_signing_out_is_seen_by_every_gunicorn_worker_within_a_second(tmp_path, prior_model_dir):
    import http.client
    import json
    import shutil

    from test_api_serve import _free_port

    from matcher.store import import_world, init_db, make_engine
    from matcher.store.users import create_user
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    init_db(db)
    engine = make_engine(db)
    import_world(engine, api_world())
    create_user(engine, role="volunteer", login="li.wei", password=PASSWORD, county=API_COUNTY)
    engine.dispose()
    models = tmp_path / "models"
    shutil.copytree(prior_model_dir, models)
    port = _free_port()
    env = dict(os.environ, MATCHER_DATABASE_URL=db, MATCHER_MODELS_DIR=str(models),
               MATCHER_INSTANCE=str(tmp_path / "instance"), MATCHER_LOG_LEVEL="WARNING")
    env.pop("MATCHER_MODEL", None)
    server = subprocess.Popen([sys.executable, "-m", "matcher", "serve", "--port", str(port), "--workers", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def call(method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)   # a new connection: any worker
        try:
            data = json.dumps(body).encode() if body is not None else None
            h = dict(headers or {})
            if data is not None:
                h["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            return r.status, r.getheader("Set-Cookie"), r.read()
        finally:
            conn.close()

    try:
        for _ in range(120):
            try:
                if call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.25)
        else:
            pytest.fail("the service did not start")
        status, cookie, body = call("POST", "/api/v1/session", {"login": "li.wei", "password": PASSWORD})
        assert status == 200
        csrf = json.loads(body)["csrf_token"]
        session = {"Cookie": cookie.split(";")[0]}
        for _ in range(40):   # both workers answer with this session
            status, _, _ = call("GET", "/api/v1/me", headers=session)
            assert status == 200
        status, _, _ = call("DELETE", "/api/v1/session", headers={**session, "X-CSRF-Token": csrf})
        assert status == 204
        statuses = [call("GET", "/api/v1/me", headers=session)[0] for _ in range(20)]
        assert statuses == [401] * 20      # the first answer after the sign-out already, from either worker
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
