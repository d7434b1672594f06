"""Tokens, roles, scope, the error JSON of every status, limits, the audit log and the application log."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from conftest import make_api


def error_of(resp):
    body = resp.get_json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "field"}, body
    return body["error"]


# -- tokens ------------------------------------------------------------------------------------

def test_health_and_readiness_need_no_token(api):
    assert api.get("/healthz", as_=None).get_json() == {"status": "ok"}
    ready = api.get("/readyz", as_=None)
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "database": "ok", "model": "loaded"}     # no version to anyone
    assert api.get("/api/v1/model", as_="volunteer").get_json()["model_version"].endswith("prior-00000000")


def test_api_without_token_is_401_with_error_json(api):
    resp = api.get("/api/v1/jobs", as_=None)
    assert resp.status_code == 401
    assert error_of(resp)["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_and_malformed_tokens_are_401(api):
    assert api.get("/api/v1/jobs", as_="not-a-token").status_code == 401
    resp = api.client.get("/api/v1/jobs", headers={"Authorization": "Basic abc"})
    assert resp.status_code == 401
    resp = api.client.get("/api/v1/jobs", headers={"Authorization": "Bearer " + "x" * 5000})
    assert resp.status_code == 401


def test_revoked_and_expired_tokens_are_401(api):
    from matcher.store import create_token, make_engine, revoke_token
    engine = make_engine(api.app.config["DATABASE_URL"])
    old = create_token(engine, "admin", "old-admin", expires_at=dt.datetime(2000, 1, 1))
    assert api.get("/api/v1/jobs", as_=old).status_code == 401
    assert api.get("/api/v1/jobs", as_="evaluator").status_code == 200
    revoke_token(engine, "eval-1")
    assert api.get("/api/v1/jobs", as_="evaluator").status_code == 401
    engine.dispose()


# -- roles and scope ---------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,role", [
    ("get", "/api/v1/households/H-A/matches", "recruiter"),
    ("get", "/api/v1/workers/W-A1/matches", "evaluator"),
    ("post", "/api/v1/jobs", "volunteer"),
    ("post", "/api/v1/jobs", "evaluator"),
    ("get", "/api/v1/jobs/J-SEW", "volunteer"),
    ("get", "/api/v1/stats", "volunteer"),
    ("get", "/api/v1/stats", "recruiter"),
    ("post", "/api/v1/model/reload", "volunteer"),
    ("post", "/api/v1/model/reload", "recruiter"),
    ("post", "/api/v1/households", "volunteer"),
    ("post", "/api/v1/workers", "recruiter"),
    ("post", "/api/v1/import/jobs", "recruiter"),
    ("post", "/api/v1/referrals", "recruiter"),
    ("post", "/api/v1/allocations", "volunteer"),
    ("get", "/api/v1/allocations/1", "recruiter"),
])
def test_a_role_outside_the_table_is_403(api, method, path, role):
    resp = getattr(api, method)(path, as_=role, json={})
    assert resp.status_code == 403, resp.get_json()
    assert error_of(resp)["code"] == "forbidden"


@pytest.mark.parametrize("path", ["/api/v1/households/H-OUT/matches", "/api/v1/workers/W-OUT1/matches"])
def test_volunteer_gets_404_for_people_of_another_county(api, path):
    resp = api.get(path, as_="volunteer")
    assert resp.status_code == 404
    assert error_of(resp)["code"] == "not_found"
    assert api.get(path, as_="volunteer_other").status_code == 200
    assert api.get(path, as_="admin").status_code == 200


def test_out_of_scope_looks_exactly_like_missing(api):
    outside = api.get("/api/v1/households/H-OUT/matches", as_="volunteer").get_json()
    missing = api.get("/api/v1/households/NOPE/matches", as_="volunteer").get_json()
    assert outside == missing


def test_recruiter_cannot_see_another_recruiters_job(api):
    job = api.post("/api/v1/jobs", as_="recruiter", json={
        "employer": "甲厂", "title": "分拣", "kind": "enterprise", "lat": 35.5, "lon": 119.27,
        "slots": 2, "monthly_wage": 2800}).get_json()
    path = f"/api/v1/jobs/{job['job_id']}"
    assert api.get(path, as_="recruiter").status_code == 200
    assert api.get(path, as_="recruiter_other").status_code == 404
    assert api.patch(path, as_="recruiter_other", json={"title": "x"}).status_code == 404
    assert api.post(path + "/close", as_="recruiter_other").status_code == 404
    assert api.get(path + "/candidates", as_="recruiter_other").status_code == 404
    assert api.get(path, as_="admin").status_code == 200


# -- errors ------------------------------------------------------------------------------------

def test_unknown_route_and_wrong_method_are_error_json(api):
    resp = api.get("/api/v1/nothing-here")
    assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    resp = api.client.delete("/healthz")
    assert resp.status_code == 405 and error_of(resp)["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]


def test_malformed_json_is_400(api):
    resp = api.post("/api/v1/referrals", as_="volunteer", data="{not json", content_type="application/json")
    assert resp.status_code == 400
    assert error_of(resp)["code"] == "bad_request"
    resp = api.post("/api/v1/referrals", as_="volunteer", data="[1, 2]", content_type="application/json")
    assert resp.status_code == 400


def test_wrong_content_type_is_415(api):
    resp = api.post("/api/v1/referrals", as_="volunteer", data="worker_id=W-A1", content_type="text/plain")
    assert resp.status_code == 415
    assert error_of(resp)["code"] == "unsupported_media_type"
    resp = api.post("/api/v1/import/households", data=b"{}", content_type="application/json")
    assert resp.status_code == 415


def test_bodies_beyond_the_limits_are_413(tmp_path, prior_model_dir):
    api = make_api(f"sqlite:///{tmp_path / 'small.db'}", tmp_path, prior_model_dir,
                   MAX_JSON_BYTES=1000, MAX_CSV_BYTES=2000)
    big = {"employer": "x" * 190, "title": "y", "kind": "enterprise", "lat": 35.5, "lon": 119.2, "slots": 1,
           "monthly_wage": 2500, "skills": ["a" * 40] * 30}
    resp = api.post("/api/v1/jobs", as_="recruiter", json=big)
    assert resp.status_code == 413
    assert error_of(resp)["code"] == "payload_too_large"
    csv = "household_id,county_code,town_code,village_code,lat,lon\n" + "H,371102,371102107,,35.5,119.2\n" * 100
    resp = api.post("/api/v1/import/households", data=csv.encode(), content_type="text/csv")
    assert resp.status_code == 413
    # The CSV limit is separate from the JSON one: a 1.5 kB CSV is fine.
    small = "household_id,county_code,town_code,village_code,lat,lon\n" + \
        "".join(f"HX{i},371102,371102107,,35.5,119.2\n" for i in range(40))
    assert 1000 < len(small) < 2000
    assert api.post("/api/v1/import/households", data=small.encode(), content_type="text/csv").status_code == 200


def test_default_limits_are_one_and_fifty_mebibytes(api):
    assert api.app.config["MAX_JSON_BYTES"] == 1 << 20
    assert api.app.config["MAX_CSV_BYTES"] == 50 << 20
    resp = api.post("/api/v1/referrals", as_="volunteer", data=b"{" + b" " * (1 << 20) + b"}",
                    content_type="application/json")
    assert resp.status_code == 413


@pytest.mark.parametrize("text", ["bad\x00title", "bell\x07", "esc\x1b[0m", "del\x7f"])
def test_control_characters_in_text_are_422_naming_the_field(api, text):
    resp = api.post("/api/v1/jobs", as_="recruiter", json={
        "employer": "厂", "title": text, "kind": "enterprise", "lat": 35.5, "lon": 119.2, "slots": 1,
        "monthly_wage": 2000})
    assert resp.status_code == 422
    err = error_of(resp)
    assert err["code"] == "invalid_value" and err["field"] == "title"


def test_tab_and_newline_are_allowed_in_text(api):
    resp = api.post("/api/v1/jobs", as_="recruiter", json={
        "employer": "厂", "title": "缝纫\t工\n夜班", "kind": "enterprise", "lat": 35.5, "lon": 119.2, "slots": 1,
        "monthly_wage": 2000})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["title"] == "缝纫\t工\n夜班"


def test_k_defaults_to_ten_is_capped_at_100_and_below_one_is_422(api):
    ok = api.get("/api/v1/workers/W-A1/matches?k=1000", as_="volunteer")
    assert ok.status_code == 200
    for bad in ("0", "-3", "ten", "1.5"):
        resp = api.get(f"/api/v1/workers/W-A1/matches?k={bad}", as_="volunteer")
        assert resp.status_code == 422, bad
        assert error_of(resp)["field"] == "k"
    one = api.get("/api/v1/workers/W-A1/matches?k=1", as_="volunteer").get_json()
    assert len(one["matches"]) == 1


def test_page_size_is_capped(api):
    page = api.get("/api/v1/jobs?per_page=5000").get_json()
    assert page["per_page"] == 100
    assert api.get("/api/v1/jobs?page=0").status_code == 422


def _fresh_minute():
    """The limiter counts per clock minute: start well inside one, so the test cannot straddle two."""
    import time
    into = time.time() % 60
    if into > 50:
        time.sleep(60 - into + 0.1)


def test_rate_limit_answers_429_with_retry_after(tmp_path, prior_model_dir):
    _fresh_minute()
    api = make_api(f"sqlite:///{tmp_path / 'rl.db'}", tmp_path, prior_model_dir, RATE_LIMIT_PER_MINUTE=3)
    codes = [api.get("/api/v1/jobs", as_="volunteer").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    resp = api.get("/api/v1/jobs", as_="volunteer")
    assert error_of(resp)["code"] == "rate_limited"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Per token: another token is not affected.
    assert api.get("/api/v1/jobs", as_="evaluator").status_code == 200


def test_memory_limiter_opens_a_new_window_each_minute():
    from matcher.api.auth import MemoryLimiter
    lim = MemoryLimiter(2)
    assert [lim.hit("t", now=60.0), lim.hit("t", now=61.0)] == [None, None]
    assert lim.hit("t", now=100.0) == 20
    assert lim.hit("t", now=120.0) is None


def test_no_model_means_503_for_matches_and_readiness(tmp_path):
    empty = tmp_path / "no-models"
    empty.mkdir()
    api = make_api(f"sqlite:///{tmp_path / 'nm.db'}", tmp_path, empty)
    ready = api.get("/readyz", as_=None)
    assert ready.status_code == 503 and error_of(ready)["code"] == "model_unavailable"
    resp = api.get("/api/v1/households/H-A/matches", as_="volunteer")
    assert resp.status_code == 503
    err = error_of(resp)
    assert err["code"] == "model_unavailable" and "no model is loaded" in err["message"]
    assert resp.headers["Retry-After"]
    assert api.get("/api/v1/model").status_code == 503
    # Everything that needs no model still works.
    assert api.get("/api/v1/jobs", as_="volunteer").status_code == 200


def test_database_down_is_503_not_500(tmp_path, prior_model_dir):
    from matcher.api import create_app
    app = create_app({"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1",
                      "MODELS_DIR": str(prior_model_dir), "MODEL_PATH": None,
                      "INSTANCE_DIR": str(tmp_path / "i")})
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and error_of(ready)["code"] == "database_unavailable"
    resp = client.get("/api/v1/jobs", headers={"Authorization": "Bearer whatever"})
    assert resp.status_code == 503 and error_of(resp)["code"] == "database_unavailable"


def test_an_unexpected_error_is_a_500_without_a_stack_trace(api):
    def boom():
        worker = "W-" + "A1"     # built here, so that the traceback's source line does not quote it
        raise RuntimeError("secret detail " + worker)
    api.app.add_url_rule("/boom", "boom", boom)
    resp = api.client.get("/boom")
    assert resp.status_code == 500
    err = error_of(resp)
    assert err["code"] == "internal_error"
    text = resp.get_data(as_text=True)
    assert "Traceback" not in text and "secret" not in text and "RuntimeError" not in text


# -- audit and logs ----------------------------------------------------------------------------

def _audit(api):
    from matcher.store import make_engine, queries
    engine = make_engine(api.app.config["DATABASE_URL"])
    try:
        return queries.audit_entries(engine)
    finally:
        engine.dispose()


def test_every_read_of_a_persons_data_is_audited(api):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    assert api.get("/api/v1/households/H-A/matches", as_="volunteer").status_code == 200
    assert api.get("/api/v1/workers/W-B1/matches", as_="admin").status_code == 200
    entries = _audit(api)
    got = {(e["actor"], e["role"], e["action"], e["resource_type"], e["resource_id"]) for e in entries}
    assert ("vol-donggang", "volunteer", "household.matches", "household", "H-A") in got
    assert ("admin-1", "admin", "worker.matches", "worker", "W-B1") in got
    assert all(e["at"] >= before for e in entries)


def test_a_refused_read_is_not_audited_as_a_read(api):
    api.get("/api/v1/households/H-OUT/matches", as_="volunteer")
    entries = [(e["action"], e["status"]) for e in _audit(api) if e["resource_id"] == "H-OUT"]
    assert entries == [("people.household_matches.denied", 404)]      # an attempt outside scope, not a read


def test_application_log_holds_no_personal_data(api, caplog):
    caplog.set_level(logging.DEBUG, logger="matcher")
    api.get("/api/v1/households/H-A/matches", as_="volunteer")
    api.get("/api/v1/workers/W-OUT1/matches", as_="volunteer")
    api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-SEW"})
    text = caplog.text
    assert "/api/v1/households/<household_id>/matches 200" in text
    for secret in ("H-A", "W-A1", "W-OUT1", "vol-donggang", api.tokens["volunteer"]):
        assert secret not in text


def test_batched_audit_entries_keep_their_time_and_are_all_written(tmp_path, prior_model_dir):
    api = make_api(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, prior_model_dir, AUDIT_FLUSH_SECONDS=30)
    start = dt.datetime.now(dt.timezone.utc)
    for _ in range(3):
        assert api.get("/api/v1/households/H-A/matches", as_="volunteer").status_code == 200
    assert _audit(api) == []          # not yet: the batch waits for its flush
    api.app.extensions["matcher"].audit.flush()
    entries = _audit(api)
    assert [e["action"] for e in entries] == ["household.matches"] * 3
    assert all(start - dt.timedelta(seconds=1) <= e["at"] <= start + dt.timedelta(seconds=10) for e in entries)


def test_redis_limiter_falls_back_to_the_machines_file_when_redis_is_down(tmp_path):
    from matcher.api.auth import FileLimiter, RedisLimiter
    lim = RedisLimiter("redis://127.0.0.1:9/0", per_minute=2, fallback=FileLimiter(tmp_path / "rl.sqlite", 2))
    assert [lim.hit("t", now=60.0), lim.hit("t", now=61.0)] == [None, None]
    assert lim.hit("t", now=62.0) == 58


def test_the_file_limiter_is_one_window_for_every_process_of_the_machine(tmp_path):
    """Two limiters on one file stand for two worker processes: they count together, per key and minute."""
    from matcher.api.auth import FileLimiter
    a, b = FileLimiter(tmp_path / "rl.sqlite", 3), FileLimiter(tmp_path / "rl.sqlite", 3)
    assert [a.hit("t", now=60.0), b.hit("t", now=61.0), a.hit("t", now=62.0)] == [None, None, None]
    assert b.hit("t", now=63.0) == 57 and a.hit("t", now=64.0) == 56
    assert b.hit("other", now=64.0) is None              # another token counts apart
    assert a.hit("t", now=120.0) is None                 # a new minute, a new window


def test_with_redis_the_limit_is_shared_by_every_process(tmp_path, prior_model_dir, redis_url):
    from conftest import Api
    from matcher.api import create_app
    _fresh_minute()
    api = make_api(f"sqlite:///{tmp_path / 'r.db'}", tmp_path, prior_model_dir, RATE_LIMIT_PER_MINUTE=4,
                   REDIS_URL=redis_url)
    other = Api(create_app(dict(api.app.config)), api.tokens)   # another worker process
    codes = [a.get("/api/v1/jobs", as_="volunteer").status_code for a in (api, other, api, other, api)]
    assert codes == [200, 200, 200, 200, 429]
    assert other.get("/api/v1/jobs", as_="volunteer").status_code == 429
