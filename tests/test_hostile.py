"""Hostile input at every endpoint and CSV import: each gets its status and the error JSON of SPEC
section 5 (``{"error": {"code", "message", "field"}}``), never a 500, never a trace.

The tables below are checked against the application's own routes, so an endpoint added later
without a row here fails ``test_every_endpoint_is_in_the_tables``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from conftest import make_api

JSON_LIMIT, CSV_LIMIT = 1 << 16, 1 << 18

# Every operation with a JSON body: (method, path, role, a valid body).
JOB = {"employer": "日照市岚山区扶贫车间", "title": "缝纫工", "kind": "enterprise", "lat": 35.5, "lon": 119.27,
       "slots": 2, "monthly_wage": 2800}
WORKER = {"worker_id": "W-NEW", "household_id": "H-A", "age": 30, "sex": "F"}
HOUSEHOLD = {"household_id": "H-NEW", "county_code": "371102", "town_code": "371102107", "lat": 35.5, "lon": 119.27}
JSON_BODIES = [
    ("POST", "/api/v1/jobs", "recruiter", JOB),
    ("PATCH", "/api/v1/jobs/J-SEW", "admin", {"title": "缝纫工（熟练）"}),
    ("POST", "/api/v1/households", "admin", HOUSEHOLD),
    ("POST", "/api/v1/workers", "admin", WORKER),
    ("POST", "/api/v1/referrals", "volunteer", {"worker_id": "W-A2", "job_id": "J-PACK"}),
    ("PATCH", "/api/v1/referrals/{referral_id}", "volunteer", {"outcome": "declined", "reason": "wage"}),
    ("POST", "/api/v1/model/reload", "evaluator", {}),
    ("POST", "/api/v1/allocations", "evaluator", {"note": "月度计划"}),
    ("POST", "/api/v1/sites", "evaluator", {"kind": "workshop_factory", "slots": 3, "n": 2}),
    ("POST", "/api/v1/session", None, {"login": "nobody.here", "password": "not-the-password"}),
    ("POST", "/api/v1/session/password", "admin", {"current_password": "x" * 10, "new_password": "y" * 10}),
    ("POST", "/api/v1/households/{household_id}/visits", "volunteer",
     {"visited_on": dt.date.today().isoformat(), "services": [{"worker_id": "W-A1", "kind": "guidance"}]}),
]
CSV_BODIES = [("POST", f"/api/v1/import/{t}", "admin") for t in ("households", "workers", "jobs")]
# Every operation with an id in its path: (method, path with {id}, role).
PATH_IDS = [
    ("GET", "/api/v1/jobs/{id}", "admin"),
    ("PATCH", "/api/v1/jobs/{id}", "admin"),
    ("POST", "/api/v1/jobs/{id}/close", "admin"),
    ("POST", "/api/v1/jobs/{id}/reopen", "admin"),
    ("GET", "/api/v1/households/{id}/visits", "volunteer"),
    ("GET", "/api/v1/jobs/{id}/candidates", "admin"),
    ("GET", "/api/v1/workers/{id}/matches", "volunteer"),
    ("GET", "/api/v1/households/{id}/matches", "volunteer"),
    ("GET", "/api/v1/households/{id}", "volunteer"),
    ("GET", "/api/v1/referrals/{id}", "volunteer"),
    ("PATCH", "/api/v1/referrals/{id}", "volunteer"),
    ("GET", "/api/v1/allocations/{id}", "admin"),
]
# The rest: no body, no id.
PLAIN = [
    ("GET", "/healthz", None), ("GET", "/readyz", None), ("GET", "/openapi.json", None), ("GET", "/docs", None),
    ("GET", "/api/v1/jobs", "volunteer"), ("GET", "/api/v1/model", "volunteer"), ("GET", "/api/v1/stats", "admin"),
    ("GET", "/api/v1/me", "volunteer"), ("GET", "/api/v1/households", "volunteer"),
    ("GET", "/api/v1/job-places", "volunteer"), ("GET", "/api/v1/me/households", "volunteer"),
    ("DELETE", "/api/v1/session", "volunteer"), ("GET", "/api/v1/divisions", "volunteer"),
    ("GET", "/api/v1/referrals", "volunteer"), ("GET", "/api/v1/referrals/reasons", "recruiter"),
    ("GET", "/api/v1/service-standard", "volunteer"),
]
REQUIRED_PARAMETER = {"/api/v1/job-places": "ids", "/api/v1/referrals": "status"}

HOSTILE_IDS = ["%00", "a%00b", "x" * 5000, "..%2F..%2Fetc%2Fpasswd", "%ff%fe", "%ED%A0%80", "' OR '1'='1",
               "%F0%9F%98%80", "H-A%0d%0aSet-Cookie:x", "%E6%97%A5%E7%85%A7", "-1", "99999999999999999999999"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hapi(request, tmp_path_factory, prior_model_dir):
    """One service per store for the module (small body limits, so 413 is cheap to reach), with a referral."""
    import uuid

    import sqlalchemy as sa
    tmp = tmp_path_factory.mktemp("hostile")
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'hostile.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = f"matcher_h_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = server.rsplit("/", 1)[0] + "/" + name
    a = make_api(url, tmp, prior_model_dir, MAX_JSON_BYTES=JSON_LIMIT, MAX_CSV_BYTES=CSV_LIMIT)
    resp = a.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-SEW"})
    a.referral_id = resp.get_json()["referral_id"]
    yield a
    a.app.extensions["matcher"].dispose()
    if admin is not None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def well_formed(resp, status=None, code=None, field=...):
    """The response is JSON, not a 500, carries no trace; an error is exactly SPEC's error object."""
    text = resp.get_data(as_text=True)
    assert resp.status_code < 500 or resp.status_code == 503, (resp.status_code, text[:300])
    for trace in ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "pydantic_core"):
        assert trace not in text, text[:300]
    if status is not None:
        assert resp.status_code == status, (resp.status_code, text[:300])
    if resp.status_code >= 400:
        assert resp.mimetype == "application/json", resp.mimetype
        body = resp.get_json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        if code is not None:
            assert body["error"]["code"] == code, body
        if field is not ...:
            assert body["error"]["field"] == field, body
        return body["error"]
    return resp.get_json() if resp.mimetype == "application/json" else None


def send(api, method, path, role, **kw):
    return api.client.open(path, method=method, headers=api.headers(role, kw.pop("headers", None)), **kw)


def _path(api, path):
    return path.format(referral_id=api.referral_id, household_id="H-A")


# -- coverage ------------------------------------------------------------------------------------

def _templated(path: str) -> str:
    return re.sub(r"/(J-SEW|\{[a-z_]+\})", "/<>", path)


def test_every_endpoint_is_in_the_tables(hapi):
    covered = {(m, _templated(p)) for m, p, *_ in JSON_BODIES + CSV_BODIES + PATH_IDS + PLAIN}
    routes = set()
    for rule in hapi.app.url_map.iter_rules():
        view = hapi.app.view_functions[rule.endpoint]
        if getattr(view, "operation", None) is None:
            continue
        path = re.sub(r"<[^>]+>", "<>", rule.rule)
        routes |= {(m, path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes - covered == set()


# -- bodies that are not what they claim ---------------------------------------------------------

NOT_JSON = [
    ("malformed", b"{not json", 400, "bad_request"),
    ("truncated", b'{"worker_id": "W-A1", ', 400, "bad_request"),
    ("empty", b"", 400, "bad_request"),
    ("whitespace", b"  \n\t ", 400, "bad_request"),
    ("an array", b"[1, 2]", 400, "bad_request"),
    ("a string", b'"hello"', 400, "bad_request"),
    ("null", b"null", 400, "bad_request"),
    ("a number", b"1e999", 400, "bad_request"),
    ("not UTF-8", b'{"note": "\xff\xfe"}', 400, "bad_request"),
    ("a lone surrogate", b'{"note": "\\ud800"}', 400, "bad_request"),
    ("nested arrays", b"[" * 30_000 + b"]" * 30_000, 400, "bad_request"),
    ("nested objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, 400, "bad_request"),
    ("a BOM", b'\xef\xbb\xbf{"note": "x"}', 400, "bad_request"),
]


@pytest.mark.parametrize("method,path,role,good", JSON_BODIES, ids=lambda v: v if isinstance(v, str) else None)
@pytest.mark.parametrize("what,data,status,code", NOT_JSON, ids=[c[0] for c in NOT_JSON])
def test_bodies_that_are_not_a_json_object_are_400(hapi, method, path, role, good, what, data, status, code):
    resp = send(hapi, method, _path(hapi, path), role, data=data, content_type="application/json")
    well_formed(resp, status, code, None)


@pytest.mark.parametrize("method,path,role,good", JSON_BODIES, ids=lambda v: v if isinstance(v, str) else None)
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "text/csv", "application/xml"])
def test_json_sent_as_another_type_is_415(hapi, method, path, role, good, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    resp = send(hapi, method, _path(hapi, path), role, data=json.dumps(good).encode(), headers=headers)
    well_formed(resp, 415, "unsupported_media_type", None)


@pytest.mark.parametrize("method,path,role,good", JSON_BODIES, ids=lambda v: v if isinstance(v, str) else None)
def test_a_field_the_request_does_not_have_is_422_and_nothing_is_applied(hapi, method, path, role, good):
    for extra in ({"role": "admin"}, {"filled": 0}, {"owner": "admin-1"}, {"is_admin": True}, {"__proto__": {}}):
        resp = send(hapi, method, _path(hapi, path), role, json=dict(good, **extra))
        well_formed(resp, 422, "invalid_value", next(iter(extra)))
    assert send(hapi, "GET", "/api/v1/me", "volunteer").get_json()["role"] == "volunteer"


@pytest.mark.parametrize("method,path,role,good", JSON_BODIES, ids=lambda v: v if isinstance(v, str) else None)
def test_an_oversized_json_body_is_413(hapi, method, path, role, good):
    body = dict(good, note="缝" * JSON_LIMIT)
    resp = send(hapi, method, _path(hapi, path), role, json=body)
    well_formed(resp, 413, "payload_too_large", None)


@pytest.mark.parametrize("method,path,role", CSV_BODIES)
def test_csv_imports_refuse_wrong_types_and_oversized_files(hapi, method, path, role):
    well_formed(send(hapi, method, path, role, data=b'{"a": 1}', content_type="application/json"),
                415, "unsupported_media_type")
    well_formed(send(hapi, method, path, role, data=b"a,b\n1,2\n", content_type="multipart/form-data; boundary=x"),
                415, "unsupported_media_type")
    well_formed(send(hapi, method, path, role, data=b"", content_type="text/csv"), 400, "bad_request")
    well_formed(send(hapi, method, path, role, data=b"x" * (CSV_LIMIT + 1), content_type="text/csv"),
                413, "payload_too_large")


# -- the limit is checked before the body is read ------------------------------------------------

class Endless(io.RawIOBase):
    """A request body that never ends; counts what the server read of it."""

    def __init__(self):
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, b):
        b[:] = b"7" * len(b)
        self.read_bytes += len(b)
        return len(b)


def _raw_request(api, path, content_type, declared_length):
    body = Endless()
    env = EnvironBuilder(path=path, method="POST", headers={**api.headers("admin"), "Content-Type": content_type}) \
        .get_environ()
    env["wsgi.input"] = io.BufferedReader(body, buffer_size=8192)
    if declared_length is None:           # chunked: the server marks the stream as terminated
        env.pop("CONTENT_LENGTH", None)
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
        env["wsgi.input_terminated"] = True
    else:
        env["CONTENT_LENGTH"] = str(declared_length)
    app_iter, status, headers = run_wsgi_app(api.app, env)
    data = b"".join(app_iter)
    return int(status.split()[0]), json.loads(data), body.read_bytes


@pytest.mark.parametrize("path,content_type,limit", [("/api/v1/jobs", "application/json", JSON_LIMIT),
                                                     ("/api/v1/import/jobs", "text/csv", CSV_LIMIT)])
def test_a_huge_declared_length_is_413_without_reading_the_body(hapi, path, content_type, limit):
    status, body, read = _raw_request(hapi, path, content_type, 10 ** 12)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert read == 0


@pytest.mark.parametrize("path,content_type,limit", [("/api/v1/jobs", "application/json", JSON_LIMIT),
                                                     ("/api/v1/import/jobs", "text/csv", CSV_LIMIT)])
def test_an_endless_chunked_body_is_413_after_reading_at_most_the_limit(hapi, path, content_type, limit):
    """Without Content-Length werkzeug stops at its maximum quietly; a body cut there must not be taken
    for the whole one (a CSV cut mid-row could import a wrong number)."""
    status, body, read = _raw_request(hapi, path, content_type, None)
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert read <= limit + 8192


def test_a_chunked_body_of_exactly_the_limit_is_read_whole(hapi):
    body = json.dumps(dict(JOB, title="工")).encode()
    body = body[:-1] + b" " * (JSON_LIMIT - len(body)) + b"}"
    assert len(body) == JSON_LIMIT
    env = EnvironBuilder(path="/api/v1/jobs", method="POST",
                         headers={**hapi.headers("recruiter"), "Content-Type": "application/json"}).get_environ()
    env["wsgi.input"] = io.BytesIO(body)
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input_terminated"] = True
    app_iter, status, _ = run_wsgi_app(hapi.app, env)
    out = json.loads(b"".join(app_iter))
    assert status.startswith("201"), out
    assert out["title"] == "工"


# -- values --------------------------------------------------------------------------------------

NAN, INF = float("nan"), float("inf")
BAD_FIELDS = [
    # (method, path, role, body, field)
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots="3"), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=True), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=2.5), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=10 ** 30), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=2 ** 63), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=0), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=-1), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=None), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, slots=[2]), "slots"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, monthly_wage=NAN), "monthly_wage"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, monthly_wage=INF), "monthly_wage"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, monthly_wage=-INF), "monthly_wage"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, monthly_wage=10 ** 400), "monthly_wage"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, monthly_wage="2800"), "monthly_wage"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, lat=90.0001), "lat"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, lat=NAN), "lat"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, lon=-180.5), "lon"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, lon=INF), "lon"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, min_age=-1), "min_age"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, max_age=121), "max_age"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, min_age=False), "min_age"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, min_age=50, max_age=30), "min_age"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, title=""), "title"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, title="工" * 201), "title"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, title="a\x00b"), "title"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, employer="厂\x1b[31m"), "employer"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, employer=["厂"]), "employer"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, kind="spaceship"), "kind"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, skills="缝纫"), "skills"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, skills=["缝纫;焊接"]), "skills.0"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, skills=[1]), "skills.0"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, skills=["x"] * 51), "skills"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, requires=["flying"]), "requires.0"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, county_code=371102), "county_code"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, county_code="37110X"), "county_code"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, posted_on="2026-13-01"), "posted_on"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, posted_on="9999-01-01"), "posted_on"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, posted_on=20260101), "posted_on"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, job_id="../etc"), "job_id"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, job_id="J" * 65), "job_id"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, job_id=7), "job_id"),
    ("POST", "/api/v1/jobs", "recruiter", dict(JOB, status="open"), "status"),
    ("PATCH", "/api/v1/jobs/J-SEW", "admin", {"filled": 3}, "filled"),
    ("PATCH", "/api/v1/jobs/J-SEW", "admin", {"status": "closed"}, "status"),
    ("PATCH", "/api/v1/jobs/J-SEW", "admin", {"slots": "1"}, "slots"),
    ("PATCH", "/api/v1/jobs/J-SEW", "admin", {"lat": 1e309}, "lat"),
    ("POST", "/api/v1/households", "admin", dict(HOUSEHOLD, lat=-91), "lat"),
    ("POST", "/api/v1/households", "admin", dict(HOUSEHOLD, lon="119.27"), "lon"),
    ("POST", "/api/v1/households", "admin", dict(HOUSEHOLD, county_code="37110"), "county_code"),
    ("POST", "/api/v1/households", "admin", dict(HOUSEHOLD, town_code="371121100"), "town_code"),
    ("POST", "/api/v1/households", "admin", dict(HOUSEHOLD, household_id=""), "household_id"),
    ("POST", "/api/v1/households", "admin", dict(HOUSEHOLD, household_id="H\u202eA"), "household_id"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, age=200), "age"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, age=-1), "age"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, age="30"), "age"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, age=True), "age"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, age=30.0), "age"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, age=10 ** 100), "age"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, sex="X"), "sex"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, disability="alien"), "disability"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, disability="physical", disability_grade=9), "disability_grade"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, disability="physical", disability_grade="2"),
     "disability_grade"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, employed="yes"), "employed"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, employed=1), "employed"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, graduate="true"), "graduate"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, max_commute_km=NAN), "max_commute_km"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, max_commute_km=-5), "max_commute_km"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, skills=["缝\x07纫"]), "skills.0"),
    ("POST", "/api/v1/workers", "admin", dict(WORKER, household_id="H-NOWHERE"), "household_id"),
    ("POST", "/api/v1/referrals", "volunteer", {"worker_id": 1, "job_id": "J-PACK"}, "worker_id"),
    ("POST", "/api/v1/referrals", "volunteer", {"worker_id": "W-A2", "job_id": None}, "job_id"),
    ("POST", "/api/v1/referrals", "volunteer", {"worker_id": "W-A2"}, "job_id"),
    ("POST", "/api/v1/referrals", "volunteer", {"worker_id": "W-A2", "job_id": "J-PACK", "outcome": "hired"},
     "outcome"),
    ("PATCH", "/api/v1/referrals/{referral_id}", "volunteer", {"outcome": "promoted"}, "outcome"),
    ("PATCH", "/api/v1/referrals/{referral_id}", "volunteer", {"outcome": "hired", "filled": 0}, "filled"),
    ("PATCH", "/api/v1/referrals/{referral_id}", "volunteer", {"outcome": "declined", "reason": "bribe"}, "reason"),
    ("PATCH", "/api/v1/referrals/{referral_id}", "volunteer", {"outcome": "declined"}, "reason"),
    ("PATCH", "/api/v1/referrals/{referral_id}", "volunteer",
     {"outcome": "declined", "reason": "other", "note": "x" * 501}, "note"),
    ("PATCH", "/api/v1/referrals/{referral_id}", "volunteer", {"outcome": "hired", "retained_6m": "yes"},
     "retained_6m"),
    ("POST", "/api/v1/model/reload", "evaluator", {"path": 7}, "path"),
    ("POST", "/api/v1/model/reload", "evaluator", {"path": "../../../etc/passwd"}, "path"),
    ("POST", "/api/v1/model/reload", "evaluator", {"path": "/etc/passwd"}, "path"),
    ("POST", "/api/v1/model/reload", "evaluator", {"path": "a\x00b"}, "path"),
    ("POST", "/api/v1/allocations", "evaluator", {"note": "x" * 201}, "note"),
    ("POST", "/api/v1/allocations", "evaluator", {"note": 5}, "note"),
]


def _json(body) -> bytes:
    # NaN and Infinity as JavaScript would send them (not valid JSON, but accepted by lenient parsers).
    return json.dumps(body, ensure_ascii=False, allow_nan=True).encode()


@pytest.mark.parametrize("method,path,role,body,field", BAD_FIELDS,
                         ids=[f"{m} {p} {f}" for m, p, _, _, f in BAD_FIELDS])
def test_a_bad_value_is_422_naming_its_field_and_nothing_changes(hapi, method, path, role, body, field):
    before = send(hapi, "GET", "/api/v1/stats", "admin").get_json()
    sew = send(hapi, "GET", "/api/v1/jobs/J-SEW", "admin").get_json()
    resp = send(hapi, method, _path(hapi, path), role, data=_json(body), content_type="application/json")
    err = well_formed(resp, 422, None, field)
    assert err["code"] in ("invalid_value", "model_refused")
    assert send(hapi, "GET", "/api/v1/stats", "admin").get_json() == before
    assert send(hapi, "GET", "/api/v1/jobs/J-SEW", "admin").get_json() == sew


def test_huge_numbers_in_json_are_refused_not_overflowed(hapi):
    def post(number: bytes):
        raw = b'{"employer": "x", "title": "y", "kind": "enterprise", "lat": 35.5, "lon": 119.2, ' \
              b'"monthly_wage": 2500, "slots": ' + number + b"}"
        return send(hapi, "POST", "/api/v1/jobs", "recruiter", data=raw, content_type="application/json")
    for number in (b"9" * 100, b"-" + b"9" * 100, b"18446744073709551617"):
        well_formed(post(number), 422, "invalid_value", "slots")
    # Beyond what the JSON parser holds: refused either as unreadable JSON (400) or as no integer (422).
    for number in (b"9" * 5000, b"1e99999", b"-1e99999"):
        err = well_formed(post(number))
        assert (err["code"], err["field"]) in (("bad_request", None), ("invalid_value", "slots")), err


# -- ids in paths and query parameters -----------------------------------------------------------

@pytest.mark.parametrize("method,path,role", PATH_IDS, ids=[f"{m} {p}" for m, p, _ in PATH_IDS])
def test_hostile_ids_in_paths_are_404(hapi, method, path, role):
    for bad in HOSTILE_IDS:
        kw = {"json": {"outcome": "declined", "reason": "wage"}} if method == "PATCH" and "referrals" in path else \
            {"json": {"title": "x"}} if method == "PATCH" else {}
        resp = send(hapi, method, path.format(id=bad), role, **kw)
        well_formed(resp, 404, "not_found")


QUERIES = [
    ("/api/v1/workers/W-A1/matches", "k", ["0", "-1", "1e3", "NaN", "", "%00", "true", "1.5", "１０"], "volunteer"),
    ("/api/v1/households/H-A/matches", "k", ["0", "-99999999999999999999", "inf", "0x10"], "volunteer"),
    ("/api/v1/jobs/J-SEW/candidates", "k", ["0", "abc"], "admin"),
    ("/api/v1/jobs", "page", ["0", "-1", "99999999999999999999", "x"], "volunteer"),
    ("/api/v1/jobs", "per_page", ["0", "-5", "ten"], "volunteer"),
    ("/api/v1/jobs", "county_code", ["%00", "3711021", "' OR 1=1"], "volunteer"),
    ("/api/v1/jobs", "kind", ["spaceship"], "volunteer"),
    ("/api/v1/jobs", "status", ["deleted"], "volunteer"),
    ("/api/v1/jobs", "mine", ["maybe"], "recruiter"),
    ("/api/v1/households", "page", ["0"], "volunteer"),
    ("/api/v1/households", "village_code", ["1"], "volunteer"),
    ("/api/v1/referrals?status=pending&x=1", "limit", ["0", "-1", "ten", "1.0"], "volunteer"),
    ("/api/v1/referrals?x=1", "status", ["done", "", "PENDING"], "volunteer"),
    ("/api/v1/service-standard?x=1", "year", ["1999", "20x6", "-2026"], "volunteer"),
    ("/api/v1/service-standard?x=1", "sort", ["name"], "volunteer"),
    ("/api/v1/service-standard?x=1", "format", ["xlsx"], "volunteer"),
    ("/api/v1/job-places", "ids", ["", ",".join(f"J{i}" for i in range(101)), "J" * 7000], "volunteer"),
    ("/api/v1/divisions", "county_code", ["%00", "3711021", "999999", "' OR 1=1"], "volunteer"),
]


@pytest.mark.parametrize("path,name,values,role", QUERIES, ids=[f"{p}?{n}" for p, n, _, _ in QUERIES])
def test_bad_query_parameters_are_422_naming_them(hapi, path, name, values, role):
    for value in values:
        resp = send(hapi, "GET", f"{path}{'&' if '?' in path else '?'}{name}={value}", role)
        well_formed(resp, 422, "invalid_value", name)


@pytest.mark.parametrize("path,key", [("/api/v1/workers/W-A2/matches", "matches"),
                                      ("/api/v1/jobs/J-SEW/candidates", "candidates")])
def test_a_huge_k_is_capped_at_100(hapi, path, key):
    for k in ("101", "1000000", "99999999999999999999999999999"):
        resp = send(hapi, "GET", f"{path}?k={k}", "admin")
        body = well_formed(resp, 200)
        assert len(body[key]) <= 100


def test_a_huge_page_size_is_capped_and_junk_parameters_are_ignored(hapi):
    body = well_formed(send(hapi, "GET", "/api/v1/jobs?per_page=99999999999999999999&utm=%00&role=admin",
                            "volunteer"), 200)
    assert body["per_page"] == 100


@pytest.mark.parametrize("method,path,role", PLAIN)
def test_plain_endpoints_shrug_off_junk(hapi, method, path, role):
    resp = send(hapi, method, path + "?%00=%ff&x=" + "y" * 5000, role, headers={"X-Forwarded-For": "' OR 1=1"})
    if path in REQUIRED_PARAMETER:
        well_formed(resp, 422, "invalid_value", REQUIRED_PARAMETER[path])
    else:
        well_formed(resp)
        assert resp.status_code in ((204,) if method == "DELETE" else (200, 503))


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer \x00", "Bearer " + "a" * 10_000, "bearer x y",
                                    "Basic YWRtaW46YWRtaW4=", "Bearer ' OR 1=1 --", "Bearer 令牌"])
def test_hostile_authorization_headers_are_401(hapi, header):
    resp = hapi.client.get("/api/v1/jobs", headers={"Authorization": header})
    well_formed(resp, 401, "unauthorized", None)


@pytest.mark.parametrize("cookie", ["", "\x00", "a" * 4000, "' OR 1=1 --", "令牌", "%00%ff", "a;b"])
def test_hostile_session_cookies_are_401(hapi, cookie):
    client = hapi.app.test_client()
    client.set_cookie("matcher_session", cookie)
    well_formed(client.get("/api/v1/me"), 401, "unauthorized", None)


def test_methods_a_route_does_not_have_are_405(hapi):
    for method, path in (("DELETE", "/api/v1/jobs/J-SEW"), ("PUT", "/api/v1/referrals"), ("TRACE", "/healthz")):
        well_formed(send(hapi, method, path, "admin"), 405, "method_not_allowed")


# -- CSV imports ---------------------------------------------------------------------------------

HH = "household_id,county_code,town_code,village_code,lat,lon\n"
WK = ("worker_id,household_id,age,sex,disability,disability_grade,labour_capacity,wants,skills,education,"
      "max_commute_km,home_only,will_migrate,graduate,employed\n")
JB = ("job_id,employer,title,kind,lat,lon,county_code,town_code,village_code,skills,min_age,max_age,"
      "physical_demand,requires,slots,filled,monthly_wage,posted_on,status\n")
BAD_CSV = [
    ("households", b"\x00\x01\x02\xff", None),
    ("households", (HH + "HC1,371102,371102107,,35.5,119.2\n").encode("utf-16"), None),
    ("households", (HH + "HC1,371102,371102107,,nan,119.2\n").encode(), "lat"),
    ("households", (HH + "HC1,371102,371102107,,inf,119.2\n").encode(), "lat"),
    ("households", (HH + "HC1,371102,371102107,,91,119.2\n").encode(), "lat"),
    ("households", (HH + "HC1,371102,371102107,,35.5," + "9" * 400 + "\n").encode(), "lon"),
    ("households", (HH + "H\x01,371102,371102107,,35.5,119.2\n").encode(), "household_id"),
    ("households", (HH + '"HC1,371102,371102107,,35.5,119.2\n').encode(), None),
    ("households", (HH + "HC1,371102,371102107,,35.5,119.2\nHC1,371102,371102107,,35.5,119.2\n").encode(),
     "household_id"),
    ("households", "household_id\nHC1\n".encode(), None),
    ("workers", (WK + "WC1,H-A,99999999999999999999999,F,none,,full,job,,junior,,false,false,false,false\n").encode(),
     "age"),
    ("workers", (WK + "WC1,H-A,-5,F,none,,full,job,,junior,,false,false,false,false\n").encode(), "age"),
    ("workers", (WK + "WC1,H-A,30,F,none,,full,job,,junior,,yes,false,false,false\n").encode(), "home_only"),
    ("workers", (WK + "WC1,H-A,30,F,alien,,full,job,,junior,,false,false,false,false\n").encode(), "disability"),
    ("workers", (WK + "WC1,H-NOWHERE,30,F,none,,full,job,,junior,,false,false,false,false\n").encode(),
     "household_id"),
    ("workers", (WK + "WC1,H-A,30,F,none,,full,job,,junior,1e400,false,false,false,false\n").encode(),
     "max_commute_km"),
    ("jobs", (JB + "JC1,e,t,enterprise,35.5,119.2,,,,,18,60,light,,99999999999999999999,0,2000,2026-01-01,open\n")
     .encode(), "slots"),
    ("jobs", (JB + "JC1,e,t,enterprise,35.5,119.2,,,,,18,60,light,,1,5,2000,2026-01-01,open\n").encode(), "filled"),
    ("jobs", (JB + "JC1,e,t,enterprise,35.5,119.2,,,,,18,60,light,,1,0,nan,2026-01-01,open\n").encode(),
     "monthly_wage"),
    ("jobs", (JB + "JC1,e,t,enterprise,35.5,119.2,,,,,18,60,light,,1,0,1,0001-01-01,open\n").encode(), None),
    ("jobs", (JB + "JC1,e,t,enterprise,35.5,119.2,,,,,18,60,light,,1,0,1,2026-01-01,deleted\n").encode(), "status"),
    ("jobs", (JB + "JC1,e\x07,t,enterprise,35.5,119.2,,,,,18,60,light,,1,0,1,2026-01-01,open\n").encode(),
     "employer"),
    ("jobs", (JB + "JC1," + "厂" * 5000 + ",t,enterprise,35.5,119.2,,,,,18,60,light,,1,0,1,2026-01-01,open\n")
     .encode(), "employer"),
]


@pytest.mark.parametrize("table,data,column", BAD_CSV, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(BAD_CSV)])
def test_a_bad_csv_is_refused_whole_naming_the_file(hapi, table, data, column):
    before = send(hapi, "GET", "/api/v1/stats", "admin").get_json()
    resp = send(hapi, "POST", f"/api/v1/import/{table}", "admin", data=data, content_type="text/csv")
    err = well_formed(resp, 422, "invalid_data")
    assert f"{table}.csv" in err["message"]
    if column is not None:
        assert err["field"] == column, err
    assert send(hapi, "GET", "/api/v1/stats", "admin").get_json() == before


def test_a_csv_whose_last_row_is_bad_imports_nothing(hapi):
    rows = "".join(f"HOK{i},371102,371102107,,35.5,119.2\n" for i in range(50)) + "HBAD,371102,371102107,,95,119.2\n"
    resp = send(hapi, "POST", "/api/v1/import/households", "admin", data=(HH + rows).encode(), content_type="text/csv")
    err = well_formed(resp, 422, "invalid_data", "lat")
    assert "row 52" in err["message"]
    assert send(hapi, "GET", "/api/v1/households/HOK0", "admin").status_code == 404


# -- text round-trips unchanged ------------------------------------------------------------------

CHINESE = "日照市岚山区\U00020000扶贫车间（居家式）·手工编织\t二班\n夜班 😀"


def test_chinese_and_long_text_round_trip_unchanged(hapi):
    title = ("农产品分拣包装" * 40)[:200]
    resp = send(hapi, "POST", "/api/v1/jobs", "recruiter",
                json=dict(JOB, employer=CHINESE, title=title, skills=["缝纫", "农产品分拣", "Ｅｘｃｅｌ"]))
    job = well_formed(resp, 201)
    got = send(hapi, "GET", f"/api/v1/jobs/{job['job_id']}", "recruiter")
    assert got.get_json()["employer"] == CHINESE and got.get_json()["title"] == title
    assert got.get_json()["skills"] == ["缝纫", "农产品分拣", "Ｅｘｃｅｌ"]
    assert "日照市岚山区".encode() in got.get_data()      # sent as UTF-8, not \u escapes
    listed = send(hapi, "GET", "/api/v1/jobs?mine=true&per_page=100", "recruiter").get_json()["items"]
    assert CHINESE in [j["employer"] for j in listed]


def test_chinese_in_a_csv_import_round_trips_unchanged(hapi):
    row = "JZH1,日照绿源食品有限公司,海产品初加工（女工优先）,enterprise,35.5,119.2,,,,缝纫;海产品加工,18,55,light,,3,0,3000,2026-02-01,open\n"
    resp = send(hapi, "POST", "/api/v1/import/jobs", "admin", data=(JB + row).encode(), content_type="text/csv")
    assert well_formed(resp, 200)["inserted"] == 1
    job = send(hapi, "GET", "/api/v1/jobs/JZH1", "admin").get_json()
    assert job["employer"] == "日照绿源食品有限公司" and job["title"] == "海产品初加工（女工优先）"
    assert job["skills"] == ["缝纫", "海产品加工"]


def test_a_workers_chinese_skills_round_trip_unchanged(hapi):
    resp = send(hapi, "POST", "/api/v1/workers", "admin",
                json=dict(WORKER, worker_id="W-ZH", skills=["柳编", "电子商务（网店）"]))
    assert well_formed(resp, 201)["skills"] == ["柳编", "电子商务（网店）"]
    members = send(hapi, "GET", "/api/v1/households/H-A", "volunteer").get_json()["members_detail"]
    assert [m["skills"] for m in members if m["worker_id"] == "W-ZH"] == [["柳编", "电子商务（网店）"]]
