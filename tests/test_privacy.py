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

    def broken(household_id, k):
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
