"""The working day through the API (SPEC section 7), on SQLite and PostgreSQL: referrals to finish (the
volunteer's and the recruiter's views), the recruiter's outcomes, reopening a job, welfare posts after
failed market referrals, visits and the 311 standard, and Idempotency-Key on every POST."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa

import factories as f
from conftest import make_api

PASSWORD = "一个足够长的密码-2026"
TODAY = dt.date.today()           # a past or present day whenever the tests run (bodies built at collection)
YEAR = TODAY.year


@pytest.fixture
def dapi(db_url, tmp_path, prior_model_dir):
    """api_world() on SQLite and on PostgreSQL, with a signed-in volunteer (display name 王志愿)."""
    a = make_api(db_url, tmp_path, prior_model_dir)
    from matcher.store import make_engine
    from matcher.store.users import create_user
    engine = make_engine(db_url)
    create_user(engine, role="volunteer", login="wang.vol", password=PASSWORD, county="371102", display_name="王志愿")
    engine.dispose()
    a.person = a.app.test_client()
    a.csrf = a.person.post("/api/v1/session", json={"login": "wang.vol", "password": PASSWORD}).get_json()["csrf_token"]
    yield a
    a.app.extensions["matcher"].dispose()


def as_person(api, method, path, json=None, headers=None):
    h = {"X-CSRF-Token": api.csrf} if method != "GET" else {}
    h.update(headers or {})
    return api.person.open(path, method=method, json=json, headers=h)


def refer(api, worker_id, job_id, as_="volunteer", **kw):
    return api.post("/api/v1/referrals", as_=as_, json={"worker_id": worker_id, "job_id": job_id}, **kw)


def outcome(api, referral_id, as_="volunteer", **body):
    return api.patch(f"/api/v1/referrals/{referral_id}", as_=as_, json=body)


def own_job(api, as_="recruiter", **kw) -> str:
    body = {"employer": "陈疃镇扶贫车间", "title": "包装工", "kind": "workshop_factory", "lat": 35.50472,
            "lon": 119.26694, "county_code": "371102", "town_code": "371102107", "village_code": "371102107201",
            "slots": 3, "monthly_wage": 2600, "skills": ["缝纫", "包装"]}
    body.update(kw)
    resp = api.post("/api/v1/jobs", as_=as_, json=body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["job_id"]


def count(api, table) -> int:
    from matcher.store import make_engine
    engine = make_engine(api.app.config["DATABASE_URL"])
    with engine.connect() as conn:
        n = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return int(n)


# -- referrals to finish -----------------------------------------------------------------------------------

def test_pending_referrals_of_the_volunteers_county_oldest_first_with_who_and_where(dapi):
    from conftest import post_job_near_other_county
    first = as_person(dapi, "POST", "/api/v1/referrals", {"worker_id": "W-A1", "job_id": "J-SEW"}).get_json()
    second = refer(dapi, "W-B1", "J-PACK").get_json()
    done = refer(dapi, "W-A2", "J-PACK").get_json()
    assert outcome(dapi, done["referral_id"], outcome="declined", reason="wage").status_code == 200
    other = refer(dapi, "W-OUT1", post_job_near_other_county(dapi), as_="volunteer_other").get_json()
    got = dapi.get("/api/v1/referrals?status=pending", as_="volunteer").get_json()
    assert got["total"] == 2
    assert [i["referral_id"] for i in got["items"]] == [first["referral_id"], second["referral_id"]]
    assert got["items"][0] == {"referral_id": first["referral_id"], "worker_id": "W-A1", "job_id": "J-SEW",
                               "referred_on": dt.date.today().isoformat(), "household_id": "H-A", "worker_name": None,
                               "job_title": "缝纫工", "employer": "陈疃镇扶贫车间", "kind": "workshop_factory"}
    everyone = dapi.get("/api/v1/referrals?status=pending", as_="admin").get_json()
    assert {i["referral_id"] for i in everyone["items"]} == {first["referral_id"], second["referral_id"],
                                                             other["referral_id"]}
    page = dapi.get("/api/v1/referrals?status=pending&limit=1&offset=1", as_="admin").get_json()
    assert page["total"] == 3 and len(page["items"]) == 1
    assert dapi.get("/api/v1/referrals?status=pending", as_="evaluator").status_code == 403
    for bad in ("", "?status=done"):
        resp = dapi.get(f"/api/v1/referrals{bad}", as_="volunteer")
        assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "status"


def test_a_recruiter_sees_referrals_to_its_own_jobs_without_anything_that_names_the_worker(dapi):
    job_id = own_job(dapi)
    ref = as_person(dapi, "POST", "/api/v1/referrals", {"worker_id": "W-A1", "job_id": job_id}).get_json()
    refer(dapi, "W-B1", "J-SEW")                       # not the recruiter's job
    got = dapi.get("/api/v1/referrals?status=pending", as_="recruiter").get_json()
    assert got == {"total": 1, "items": [{"referral_id": ref["referral_id"], "job_id": job_id, "job_title": "包装工",
                                          "referred_on": dt.date.today().isoformat(), "age": 35, "sex": "F",
                                          "skills_fit": ["缝纫"], "referred_by": "王志愿"}]}
    assert dapi.get("/api/v1/referrals?status=pending", as_="recruiter_other").get_json() == {"items": [], "total": 0}


def test_the_jobs_owner_records_hired_or_rejected_and_nothing_else(dapi):
    job_id = own_job(dapi)
    a1 = refer(dapi, "W-A1", job_id).get_json()["referral_id"]
    b1 = refer(dapi, "W-B1", job_id).get_json()["referral_id"]
    other = refer(dapi, "W-A2", "J-PACK").get_json()["referral_id"]
    resp = outcome(dapi, a1, as_="recruiter", outcome="declined", reason="wage")
    assert resp.status_code == 403 and resp.get_json()["error"]["field"] == "outcome"
    assert outcome(dapi, a1, as_="recruiter_other", outcome="hired").status_code == 404
    assert outcome(dapi, other, as_="recruiter", outcome="rejected", reason="skills").status_code == 404
    resp = outcome(dapi, b1, as_="recruiter", outcome="rejected", reason="wage")         # a reason of declined
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "reason"
    resp = outcome(dapi, a1, as_="recruiter", outcome="hired")
    assert resp.status_code == 200
    assert resp.get_json()["outcome"] == "hired" and resp.get_json()["worker_id"] is None
    assert outcome(dapi, b1, as_="recruiter", outcome="rejected", reason="position_filled").status_code == 200
    assert dapi.get(f"/api/v1/jobs/{job_id}", as_="recruiter").get_json()["filled"] == 1
    assert dapi.get("/api/v1/referrals?status=pending", as_="recruiter").get_json()["total"] == 0
    assert dapi.get(f"/api/v1/referrals/{a1}", as_="volunteer").get_json()["worker_id"] == "W-A1"


def test_a_closed_job_with_free_slots_reopens_and_a_full_or_open_one_is_409(dapi):
    job_id = own_job(dapi, slots=1)
    resp = dapi.post(f"/api/v1/jobs/{job_id}/reopen", as_="recruiter")
    assert resp.status_code == 409 and "open already" in resp.get_json()["error"]["message"]
    assert dapi.post(f"/api/v1/jobs/{job_id}/close", as_="recruiter").get_json()["status"] == "closed"
    assert dapi.post(f"/api/v1/jobs/{job_id}/reopen", as_="recruiter_other").status_code == 404
    resp = dapi.post(f"/api/v1/jobs/{job_id}/reopen", as_="recruiter")
    assert resp.status_code == 200 and resp.get_json()["status"] == "open" and resp.get_json()["job_id"] == job_id
    ref = refer(dapi, "W-A1", job_id).get_json()["referral_id"]
    assert outcome(dapi, ref, as_="recruiter", outcome="hired").status_code == 200
    dapi.post(f"/api/v1/jobs/{job_id}/close", as_="admin")
    resp = dapi.post(f"/api/v1/jobs/{job_id}/reopen", as_="admin")
    assert resp.status_code == 409 and "no free slot" in resp.get_json()["error"]["message"]
    assert dapi.get(f"/api/v1/jobs/{job_id}", as_="admin").get_json()["status"] == "closed"


# -- when the market has failed --------------------------------------------------------------------------

def test_two_failed_market_referrals_bring_the_village_welfare_post_at_once(dapi):
    """W-A2 (a man of 52) has viable market jobs; after two market referrals ended without a hire the
    service offers him the village's welfare post (J-CLEAN) beside them, in the very next answer."""
    before = dapi.get("/api/v1/workers/W-A2/matches", as_="volunteer").get_json()
    assert before["fallback"] == [] and before["fallback_reason"] is None and before["matches"]
    for job_id, result, reason in (("J-SEW", "declined", "distance"), ("J-PACK", "no_show", "unreachable")):
        ref = refer(dapi, "W-A2", job_id).get_json()["referral_id"]
        assert outcome(dapi, ref, outcome=result, reason=reason).status_code == 200
    after = dapi.get("/api/v1/workers/W-A2/matches", as_="volunteer").get_json()
    assert after["fallback_reason"] == "failed_referrals"
    assert [p["job_id"] for p in after["fallback"]] == ["J-CLEAN"]
    assert after["fallback"][0]["reasons"][0] == "近12个月2次推荐市场岗位未成功，可安排公益性岗位"
    assert [m["job_id"] for m in after["matches"]] == [m["job_id"] for m in before["matches"]]
    household = dapi.get("/api/v1/households/H-A/matches", as_="volunteer").get_json()
    member = next(m for m in household["members"] if m["worker_id"] == "W-A2")
    assert member["fallback_reason"] == "failed_referrals"


# -- visits and the 311 standard -------------------------------------------------------------------------

def visit(api, household_id, services, on=TODAY, as_="volunteer", note=None):
    return api.post(f"/api/v1/households/{household_id}/visits", as_=as_,
                    json={"visited_on": on.isoformat(), "note": note,
                          "services": [{"worker_id": w, "kind": k} for w, k in services]})


def test_a_visit_is_recorded_with_its_services_and_listed_newest_first(dapi):
    resp = as_person(dapi, "POST", "/api/v1/households/H-A/visits",
                     {"visited_on": dt.date(YEAR, 1, 2).isoformat(), "note": "户主在家",
                      "services": [{"worker_id": "W-A1", "kind": "guidance"},
                                   {"worker_id": "W-A1", "kind": "training_offer"}]})
    assert resp.status_code == 201
    first = resp.get_json()
    assert first["visit_id"] and first["household_id"] == "H-A" and first["recorded_by"] == "王志愿"
    assert (first["visited_on"], first["note"]) == (dt.date(YEAR, 1, 2).isoformat(), "户主在家")
    assert first["services"] == [{"worker_id": "W-A1", "kind": "guidance"},
                                 {"worker_id": "W-A1", "kind": "training_offer"}]
    second = visit(dapi, "H-A", [("W-A2", "job_offer")]).get_json()
    assert second["recorded_by"] is None                          # a script's token names no one
    listed = dapi.get("/api/v1/households/H-A/visits", as_="volunteer").get_json()["items"]
    assert [v["visit_id"] for v in listed] == [second["visit_id"], first["visit_id"]]
    assert listed[1] == first
    assert dapi.get("/api/v1/households/H-A/visits", as_="volunteer_other").status_code == 404
    assert dapi.get("/api/v1/households/H-A/visits", as_="recruiter").status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"visited_on": (TODAY + dt.timedelta(days=400)).isoformat()}, "visited_on"),
    ({"visited_on": "2014-12-31"}, "visited_on"),
    ({"visited_on": TODAY.isoformat(), "services": [{"worker_id": "W-B1", "kind": "guidance"}]}, "services"),
    ({"visited_on": TODAY.isoformat(), "services": [{"worker_id": "W-A1", "kind": "guidance"},
                                                    {"worker_id": "W-A1", "kind": "guidance"}]}, "services"),
    ({"visited_on": TODAY.isoformat(), "services": [{"worker_id": "W-A1", "kind": "lecture"}]}, "services.0.kind"),
    ({"visited_on": TODAY.isoformat(), "note": "x" * 501}, "note"),
])
def test_a_bad_visit_is_422_naming_the_field_and_writes_nothing(dapi, body, field):
    resp = dapi.post("/api/v1/households/H-A/visits", as_="volunteer", json=body)
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == field, resp.get_json()
    assert count(dapi, "visits") == 0 and count(dapi, "visit_services") == 0


def standard_world():
    """Two households in two villages of Donggang and one in another county; five workers of whom two are
    counted (W1, W2: able, wanting a job, not employed). Last year's referral and services do not count."""
    from conftest import OTHER_COUNTY, OTHER_TOWN, OTHER_VILLAGE
    homes = [f.household(household_id="H1"), f.household(household_id="H2", village_code="371102107202",
                                                         lat=35.503855, lon=119.235644),
             f.household(household_id="H3", county_code=OTHER_COUNTY, town_code=OTHER_TOWN,
                         village_code=OTHER_VILLAGE, lat=35.75, lon=118.95)]
    workers = [f.worker("H1", worker_id="W1"), f.worker("H1", worker_id="W3", employed=True),
               f.worker("H1", worker_id="W4", labour_capacity="none"), f.worker("H2", worker_id="W2", age=45),
               f.worker("H2", worker_id="W5", wants="business"), f.worker("H3", worker_id="W6")]
    jobs = [f.job(job_id="J1", slots=10)]
    this_year = [f.referral(w, "J1", outcome="declined", referred_on=dt.date(YEAR, m, 1).isoformat())
                 for w, m in (("W1", 1), ("W1", 2), ("W2", 3), ("W3", 3))]
    last_year = [f.referral("W1", "J1", outcome="declined", referred_on=dt.date(YEAR - 1, 12, 31).isoformat())]
    return f.world(homes, workers, jobs, this_year + last_year)


@pytest.fixture
def sapi(db_url, tmp_path, prior_model_dir):
    a = make_api(db_url, tmp_path, prior_model_dir, world=standard_world())
    # W1: one more referral today (3 job offers this year), guidance and a training offer at a visit.
    assert refer(a, "W1", "J1").status_code == 201
    assert visit(a, "H1", [("W1", "guidance"), ("W1", "training_offer")], on=dt.date(YEAR, 1, 1)).status_code == 201
    # W2: two job offers at two visits (with 1 referral: 3), guidance, but its training offer was last year.
    assert visit(a, "H2", [("W2", "job_offer"), ("W2", "guidance")], on=dt.date(YEAR, 1, 5)).status_code == 201
    assert visit(a, "H2", [("W2", "job_offer"), ("W5", "guidance")], on=dt.date(YEAR, 1, 6)).status_code == 201
    assert visit(a, "H2", [("W2", "training_offer")], on=dt.date(YEAR - 1, 12, 30)).status_code == 201
    yield a
    a.app.extensions["matcher"].dispose()


W1 = {"worker_id": "W1", "household_id": "H1", "village_code": "371102107201", "job_offers": 3, "guidance": 1,
      "training_offers": 1, "meets_311": True}
W2 = {"worker_id": "W2", "household_id": "H2", "village_code": "371102107202", "job_offers": 3, "guidance": 1,
      "training_offers": 0, "meets_311": False}
W6 = {"worker_id": "W6", "household_id": "H3", "village_code": "371121102201", "job_offers": 0, "guidance": 0,
      "training_offers": 0, "meets_311": False}


def test_the_311_counts_of_a_small_world_by_hand(sapi):
    got = sapi.get("/api/v1/service-standard?county_code=371102", as_="volunteer").get_json()
    assert got["year"] == YEAR and got["county_code"] == "371102"
    assert got["items"] == [W2, W1]                                 # least served first
    assert got["totals"] == {"people": 2, "meets_311": 1, "job_offers": 6, "guidance": 2, "training_offers": 1}
    assert sapi.get("/api/v1/service-standard?below=true", as_="volunteer").get_json()["items"] == [W2]
    assert sapi.get("/api/v1/service-standard?sort=worker_id", as_="volunteer").get_json()["items"] == [W1, W2]
    everyone = sapi.get("/api/v1/service-standard", as_="evaluator").get_json()
    assert everyone["county_code"] is None and everyone["items"] == [W6, W2, W1]
    last_year = sapi.get(f"/api/v1/service-standard?year={YEAR - 1}", as_="admin").get_json()
    by_id = {i["worker_id"]: i for i in last_year["items"]}
    assert (by_id["W1"]["job_offers"], by_id["W2"]["training_offers"]) == (1, 1)
    assert sapi.get("/api/v1/service-standard?county_code=371121", as_="volunteer").get_json()["items"] == []
    assert sapi.get("/api/v1/service-standard", as_="recruiter").status_code == 403


def test_the_311_function_is_the_one_the_endpoint_uses(sapi):
    """The same numbers from the frames the store hands to matcher.service_standard."""
    from matcher.service_standard import service_standard
    from matcher.store import make_engine
    from matcher.store.visits import standard_frames
    engine = make_engine(sapi.app.config["DATABASE_URL"])
    table = service_standard(*standard_frames(engine, YEAR, county_code="371102"), YEAR)
    engine.dispose()
    assert table.to_dict(orient="records") == [W1, W2]


def test_the_311_standard_as_csv(sapi):
    resp = sapi.get("/api/v1/service-standard?format=csv&county_code=371102", as_="admin")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    assert list(rows[0]) == ["worker_id", "household_id", "village_code", "job_offers", "guidance",
                             "training_offers", "meets_311"]
    assert [(r["worker_id"], r["job_offers"], r["training_offers"], r["meets_311"]) for r in rows] == \
        [("W2", "3", "0", "false"), ("W1", "3", "1", "true")]


def test_household_matches_carry_each_members_311_counts_and_follow_a_new_visit(sapi):
    got = sapi.get("/api/v1/households/H2/matches", as_="volunteer").get_json()
    standard = {m["worker_id"]: m["service_standard"] for m in got["members"]}
    assert standard == {"W2": {"year": YEAR, "job_offers": 3, "guidance": 1, "training_offers": 0,
                               "meets_311": False}, "W5": None}
    assert visit(sapi, "H2", [("W2", "training_offer")]).status_code == 201
    again = sapi.get("/api/v1/households/H2/matches", as_="volunteer").get_json()
    w2 = next(m for m in again["members"] if m["worker_id"] == "W2")
    assert w2["service_standard"]["training_offers"] == 1 and w2["service_standard"]["meets_311"] is True


# -- Idempotency-Key -------------------------------------------------------------------------------------

def test_a_repeated_post_answers_the_same_and_writes_nothing(dapi):
    key = {"Idempotency-Key": "phone-3f2a-0001"}
    first = refer(dapi, "W-A1", "J-SEW", headers=key)
    assert first.status_code == 201
    n = count(dapi, "referrals")
    again = refer(dapi, "W-A1", "J-SEW", headers=key)
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert count(dapi, "referrals") == n == 1
    resp = refer(dapi, "W-A2", "J-SEW", headers=key)                   # another body under the same key
    assert resp.status_code == 409
    assert resp.get_json()["error"] == {"code": "idempotency_mismatch", "field": "Idempotency-Key",
                                        "message": resp.get_json()["error"]["message"]}
    assert count(dapi, "referrals") == 1
    # a visit made twice from a phone is one visit
    body = {"visited_on": TODAY.isoformat(), "services": [{"worker_id": "W-A1", "kind": "guidance"}]}
    for _ in range(2):
        resp = dapi.post("/api/v1/households/H-A/visits", as_="volunteer", json=body,
                         headers={"Idempotency-Key": "visit-1"})
        assert resp.status_code == 201
    assert count(dapi, "visits") == 1 and count(dapi, "visit_services") == 1


@pytest.mark.parametrize("key", ["", "x" * 65, "ключ", "a\tb"])
def test_a_malformed_key_is_422_naming_the_header(dapi, key):
    resp = refer(dapi, "W-A1", "J-SEW", headers={"Idempotency-Key": key})
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "Idempotency-Key"
    assert count(dapi, "referrals") == 0


def test_a_refused_first_attempt_is_not_remembered(dapi):
    key = {"Idempotency-Key": "retry-after-fix"}
    resp = dapi.post("/api/v1/households/H-A/visits", as_="volunteer", headers=key,
                     json={"visited_on": "2014-01-01"})
    assert resp.status_code == 422
    assert count(dapi, "idempotency_keys") == 0
    resp = dapi.post("/api/v1/households/H-A/visits", as_="volunteer", headers=key,
                     json={"visited_on": TODAY.isoformat()})
    assert resp.status_code == 201
    assert count(dapi, "visits") == 1 and count(dapi, "idempotency_keys") == 1


def test_keys_are_per_principal(dapi):
    key = {"Idempotency-Key": "same-key"}
    mine = refer(dapi, "W-A1", "J-SEW", headers=key).get_json()
    # the admin's request under the same key is its own: not the volunteer's answer, not a mismatch
    theirs = refer(dapi, "W-A1", "J-SEW", as_="admin", headers=key)
    assert theirs.status_code == 201 and theirs.get_json()["referral_id"] != mine["referral_id"]
    person = as_person(dapi, "POST", "/api/v1/referrals", {"worker_id": "W-A1", "job_id": "J-SEW"}, headers=key)
    assert person.status_code == 201 and person.get_json()["referral_id"] not in {mine["referral_id"],
                                                                                   theirs.get_json()["referral_id"]}
    assert count(dapi, "referrals") == 3


def test_two_processes_share_the_keys(dapi, tmp_path):
    """A second application on the same store (another worker process) answers the first one's key."""
    from matcher.api import create_app
    other = create_app(dict(dapi.app.config, INSTANCE_DIR=str(tmp_path / "other")))
    try:
        key = {"Idempotency-Key": "two-processes"}
        first = refer(dapi, "W-A1", "J-SEW", headers=key)
        second = other.test_client().post("/api/v1/referrals", json={"worker_id": "W-A1", "job_id": "J-SEW"},
                                          headers=dict(dapi.headers("volunteer"), **key))
        assert second.status_code == 201 and second.get_json() == first.get_json()
        assert count(dapi, "referrals") == 1
    finally:
        other.extensions["matcher"].dispose()


def test_the_key_is_in_the_openapi_document_of_every_post(dapi):
    doc = dapi.client.get("/openapi.json").get_json()
    posts = [(path, ops["post"]) for path, ops in doc["paths"].items() if "post" in ops]
    for path, op in posts:
        names = {p["name"] for p in op.get("parameters", [])}
        if path == "/api/v1/session":
            continue
        assert "Idempotency-Key" in names, path
        assert "409" in op["responses"], path
