"""Privacy: what the service logs holds none of the personal data it serves.

Personal here (SECURITY.md): household, worker and referral ids, where a household lives, a worker's
disability, a token holder's name, notes on referrals, tokens. The session-wide guard
(tests/privacy_guard.py, installed by conftest.py) checks every log record of the whole test run at
its end; this test drives a volunteer's and a recruiter's day on a generated world at DEBUG level,
with the failures an operator would see (a crash in a view, a locked database, a refused model), and
checks its own log on the spot.
"""

from __future__ import annotations

import logging
import sqlite3

import pytest

from conftest import make_api
from privacy_guard import GUARD


@pytest.fixture
def world_api(tmp_path, prior_model_dir, small_world):
    api = make_api(f"sqlite:///{tmp_path / 'privacy.db'}", tmp_path, prior_model_dir, world=small_world,
                   LOG_LEVEL="DEBUG")
    yield api
    api.app.extensions["matcher"].dispose()


def _volunteer_token(api, county):
    from matcher.store import create_token, make_engine
    engine = make_engine(api.app.config["DATABASE_URL"])
    try:
        return create_token(engine, "volunteer", "志愿者王小明", county=county)
    finally:
        engine.dispose()


def test_a_days_traffic_logs_no_personal_data(world_api, small_world, tmp_path, monkeypatch):
    api = world_api
    first_line = len(GUARD.capture.lines)
    county = small_world.households["county_code"].iloc[0]
    api.tokens["vol"] = _volunteer_token(api, county)
    ids = small_world.households.loc[small_world.households["county_code"] == county, "household_id"].tolist()[:25]

    # A volunteer's rounds: who is uncovered, each household, its plan, its members' matches; referrals.
    assert api.get("/api/v1/me", as_="vol").status_code == 200
    assert api.get("/api/v1/households?uncovered=true&per_page=100", as_="vol").status_code == 200
    referred = []
    for household_id in ids:
        detail = api.get(f"/api/v1/households/{household_id}", as_="vol").get_json()
        plan = api.get(f"/api/v1/households/{household_id}/matches?k=5", as_="vol").get_json()
        for member in plan["members"]:
            api.get(f"/api/v1/workers/{member['worker_id']}/matches?k=3", as_="vol")
            if member["matches"] and len(referred) < 8:
                resp = api.post("/api/v1/referrals", as_="vol",
                                json={"worker_id": member["worker_id"], "job_id": member["matches"][0]["job_id"]})
                if resp.status_code == 201:
                    referred.append(resp.get_json()["referral_id"])
        assert detail["household_id"] == household_id
    assert referred
    for i, referral_id in enumerate(referred):
        body = {"outcome": "hired"} if i % 2 == 0 else \
            {"outcome": "declined", "reason": "family_care", "note": f"照顾老人，电话1380013{i:04d}，惠家庄东头"}
        api.patch(f"/api/v1/referrals/{referral_id}", as_="vol", json=body)
        api.get(f"/api/v1/referrals/{referral_id}", as_="vol")
    # Refused requests quote ids back to the client (never to the log).
    api.post("/api/v1/referrals", as_="vol", json={"worker_id": "W-NOBODY", "job_id": "J-NOTHING"})
    api.post("/api/v1/referrals", as_="vol", json={"worker_id": small_world.workers["worker_id"].iloc[-1],
                                                   "job_id": "J-NOTHING"})
    api.post("/api/v1/import/workers", data=("worker_id,household_id,age,sex,disability,disability_grade,"
                                             "labour_capacity,wants,skills,education,max_commute_km,home_only,"
                                             "will_migrate,graduate,employed\n"
                                             f"WNEW,{ids[0]},41,F,physical,9,full,job,,junior,,false,false,false,"
                                             "false\n").encode(), content_type="text/csv")

    # A recruiter's: post a vacancy, look at its candidates, change and close it.
    job = api.post("/api/v1/jobs", as_="recruiter", json={
        "employer": "岚山区巧手编织车间", "title": "柳编", "kind": "workshop_home", "lat": 35.1, "lon": 119.3,
        "county_code": county, "slots": 3, "monthly_wage": 2000}).get_json()
    api.get(f"/api/v1/jobs/{job['job_id']}/candidates?k=20", as_="recruiter")
    api.patch(f"/api/v1/jobs/{job['job_id']}", as_="recruiter", json={"slots": 4})
    api.post(f"/api/v1/jobs/{job['job_id']}/close", as_="recruiter")

    # What an operator sees when things go wrong: a crash inside a view ...
    from matcher.api import matching

    def broken(household_id, k, order="score"):
        raise KeyError(household_id)

    monkeypatch.setattr(matching, "household_matches", broken)
    assert api.get(f"/api/v1/households/{ids[1]}/matches", as_="vol").status_code == 500
    monkeypatch.undo()
    # ... a database locked past its timeout ...
    import matcher.store.db as db
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 100)
    api.app.extensions["matcher"].dispose()
    lock = sqlite3.connect(tmp_path / "privacy.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    assert api.get(f"/api/v1/households/{ids[2]}/matches", as_="vol").status_code == 503
    lock.execute("ROLLBACK")
    lock.close()
    # ... a model that is refused.
    assert api.post("/api/v1/model/reload", as_="admin", json={"path": "nowhere.json"}).status_code == 422

    log = "\n".join(GUARD.capture.lines[first_line:])
    assert "matcher.api.access INFO GET /api/v1/households/<household_id>/matches 200" in log
    assert "unhandled KeyError" in log and "database unavailable" in log
    served = set(GUARD.values)
    # The guard saw what was served: ids, a household's coordinates, disabilities, the notes, the name.
    assert set(ids) <= served and set(referred) <= served
    what = set(GUARD.values.values())
    assert {"household_id", "worker_id", "referral_id", "note", "a household's coordinate", "a disability",
            "a token holder's name", "a bearer token"} <= what
    assert GUARD.leaks([("this test's log", log)]) == []


def test_the_guard_finds_personal_data_as_whole_words_only():
    from privacy_guard import Guard
    guard = Guard()
    for value, what in (("H-A", "household_id"), ("35.50472", "a household's coordinate"), ("physical", "a disability"),
                        ("W-A1", "worker_id")):
        guard._add(value, what)
    text = "\n".join(["GET /api/v1/households/<household_id>/matches 200 35.5ms token=3",
                      "H-AB H-A1 xH-A 135.504721 35.504721 physical_demand W-A10",
                      "a leak: H-A at 35.50472 (physical) W-A1."])
    leaks = guard.leaks([("log", text)])
    assert [leak.split(" in log")[0] for leak in leaks] == [
        "household_id 'H-A'", "a household's coordinate '35.50472'", "a disability 'physical'", "worker_id 'W-A1'"]


def test_logging_records_are_captured_from_every_logger():
    before = len(GUARD.capture.lines)
    for name in ("matcher.api", "werkzeug", "gunicorn.error", "sqlalchemy.engine", "some.library"):
        logging.getLogger(name).warning("probe %s", name)
    assert len(GUARD.capture.lines) - before == 5


def test_werkzeugs_own_server_does_not_log_request_paths(api):
    """Found by the session guard: the browser tests' server logged `GET /api/v1/households/<id>...`."""
    import threading
    import urllib.request

    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    first_line = len(GUARD.capture.lines)
    try:
        req = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/api/v1/households/H-A/matches",
                                     headers={"Authorization": f"Bearer {api.tokens['volunteer']}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200
    finally:
        server.shutdown()
    log = "\n".join(GUARD.capture.lines[first_line:])
    assert "/api/v1/households/<household_id>/matches 200" in log
    assert "H-A" not in log


# -- names and phones (SPEC section 2) ---------------------------------------------------------------

@pytest.fixture
def named_api(tmp_path, prior_model_dir):
    from test_api_scope import scope_world
    api = make_api(f"sqlite:///{tmp_path / 'names.db'}", tmp_path, prior_model_dir, world=scope_world(),
                   LOG_LEVEL="DEBUG")
    yield api
    api.app.extensions["matcher"].dispose()


NAMES = ("王建国", "刘桂兰", "李秀英", "13800001111", "0633-8221234")


def test_names_and_phones_reach_the_volunteer_in_scope_and_admins_but_no_log(named_api, caplog):
    api = named_api
    caplog.set_level(logging.DEBUG)
    detail = api.get("/api/v1/households/H-MINE", as_="volunteer").get_json()
    assert (detail["head_name"], detail["phone"]) == ("王建国", "13800001111")
    assert {m["worker_id"]: m["name"] for m in detail["members_detail"]} == {"W-MINE": "王建国", "W-MINE2": "刘桂兰"}
    found = api.get("/api/v1/households?q=桂兰", as_="volunteer").get_json()
    assert [h["household_id"] for h in found["items"]] == ["H-MINE"]
    assert api.get("/api/v1/households/H-NEXT", as_="admin").get_json()["phone"] == "0633-8221234"
    assert api.get("/api/v1/households/H-NEXT", as_="volunteer_other").status_code == 404
    bad = api.post("/api/v1/households", json={"household_id": "H-BAD", "county_code": "371102",
                                                 "town_code": "371102107", "lat": 35.5, "lon": 119.27,
                                                 "phone": "138000011112", "head_name": "孙丽"})
    assert bad.status_code == 422 and "138000011112" not in bad.get_data(as_text=True)
    for value in NAMES:
        assert value not in caplog.text
    assert {"a person's head_name", "a person's phone", "a person's name"} <= set(GUARD.values.values())
    assert GUARD.leaks([("this test's log", caplog.text)]) == []


def test_a_recruiter_never_sees_a_name_or_a_phone(named_api):
    api = named_api
    job = api.post("/api/v1/jobs", as_="recruiter", json={
        "employer": "陈疃服装厂", "title": "缝纫工", "kind": "enterprise", "lat": 35.5, "lon": 119.27, "slots": 3,
        "monthly_wage": 2800, "skills": ["缝纫"]}).get_json()
    answers = [api.get(f"/api/v1/jobs/{job['job_id']}/candidates", as_="recruiter"),
               api.get("/api/v1/jobs", as_="recruiter"), api.get(f"/api/v1/jobs/{job['job_id']}", as_="recruiter"),
               api.get("/api/v1/me", as_="recruiter")]
    assert answers[0].get_json()["candidates"], "the recruiter should see the seamstresses, by age band only"
    for resp in answers:
        text = resp.get_data(as_text=True)
        assert resp.status_code == 200 and not [v for v in NAMES if v in text]
    for path in ("/api/v1/households", "/api/v1/households/H-MINE", "/api/v1/me/households",
                 "/api/v1/households?q=王建国", "/api/v1/workers/W-MINE/matches"):
        assert api.get(path, as_="recruiter").status_code == 403


def test_the_guard_collects_names_and_phones_from_answers():
    from privacy_guard import Guard
    guard = Guard()
    guard._walk({"items": [{"household_id": "H-X1", "head_name": "王五", "phone": "13912345678",
                            "members_detail": [{"worker_id": "W-X1", "name": "赵六"}]}],
                 "county_name": "东港区", "name": "vol-1"})
    assert {v: w for v, w in guard.values.items() if w.startswith("a person")} == {
        "王五": "a person's head_name", "13912345678": "a person's phone", "赵六": "a person's name"}
    leaks = guard.leaks([("log", "served 王五 at 13912345678\n东港区王五村 is a place")])
    assert [leak.split(" in log")[0] for leak in leaks] == ["a person's head_name '王五'",
                                                           "a person's phone '13912345678'"]


def test_db_export_pseudonymise_leaves_names_and_phones_out(named_api, tmp_path):
    from matcher.store import export_world, make_engine
    engine = make_engine(named_api.app.config["DATABASE_URL"])
    export_world(engine, tmp_path / "full")
    export_world(engine, tmp_path / "pseudo", pseudonymise=True)
    engine.dispose()
    full = (tmp_path / "full" / "households.csv").read_text(encoding="utf-8")
    assert "head_name" in full.splitlines()[0] and "王建国" in full and "13800001111" in full
    assert "刘桂兰" in (tmp_path / "full" / "workers.csv").read_text(encoding="utf-8")
    for name in ("households", "workers", "jobs", "referrals"):
        text = (tmp_path / "pseudo" / f"{name}.csv").read_text(encoding="utf-8")
        assert not [v for v in NAMES if v in text]
    assert (tmp_path / "pseudo" / "households.csv").read_text(encoding="utf-8").splitlines()[0] == \
        "household_id,county_code,town_code,village_code,lat,lon"
    assert (tmp_path / "pseudo" / "workers.csv").read_text(encoding="utf-8").splitlines()[0].endswith(",employed")
