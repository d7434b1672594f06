"""Vacancies: post, list, read, change, close, candidates; and what matches see of them at once."""

from __future__ import annotations

import pytest

from conftest import API_COUNTY

SEWING = {"employer": "陈疃镇扶贫车间二号", "title": "手工编织", "kind": "workshop_factory", "lat": 35.5047,
          "lon": 119.2669, "county_code": API_COUNTY, "town_code": "371102107", "skills": ["编织"],
          "min_age": 18, "max_age": 60, "physical_demand": "light", "requires": [], "slots": 4,
          "monthly_wage": 2600}


def post(api, as_="recruiter", **over):
    body = dict(SEWING, **over)
    return api.post("/api/v1/jobs", as_=as_, json=body)


def job_ids(matches):
    return [m["job_id"] for m in matches["matches"]]


def test_post_answers_201_with_the_whole_job_and_its_location(api):
    resp = post(api, job_id="J-NEW-1")
    assert resp.status_code == 201
    job = resp.get_json()
    assert resp.headers["Location"].endswith("/api/v1/jobs/J-NEW-1")
    assert job["job_id"] == "J-NEW-1" and job["owner"] == "rec-1"
    assert job["filled"] == 0 and job["status"] == "open"
    assert job["skills"] == ["编织"] and job["requires"] == []
    assert job["slots"] == 4 and job["monthly_wage"] == 2600.0
    assert api.get(resp.headers["Location"], as_="recruiter").get_json() == job


def test_post_without_an_id_gets_one(api):
    job = post(api).get_json()
    assert job["job_id"]
    assert api.get(f"/api/v1/jobs/{job['job_id']}", as_="recruiter").status_code == 200


@pytest.mark.parametrize("field,value", [("filled", 0), ("status", "open"), ("filled", 2), ("owner", "x")])
def test_post_refuses_fields_the_server_keeps(api, field, value):
    resp = post(api, **{field: value})
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["field"] == field and "kept by the server" in err["message"]


@pytest.mark.parametrize("over,field", [
    ({"kind": "factory"}, "kind"),
    ({"skills": "编织;缝纫"}, "skills"),
    ({"skills": ["a;b"]}, "skills.0"),
    ({"requires": ["smell"]}, "requires.0"),
    ({"slots": 0}, "slots"),
    ({"slots": 10 ** 30}, "slots"),
    ({"min_age": 50, "max_age": 30}, "min_age"),
    ({"lat": None, "lon": None}, "lat"),
    ({"lat": 95}, "lat"),
    ({"town_code": "3711021"}, "town_code"),
    ({"monthly_wage": "lots"}, "monthly_wage"),
    ({"county_code": "37110"}, "county_code"),
    ({"kind": "public_welfare", "town_code": None}, "town_code"),
    ({"title": ""}, "title"),
    ({"colour": "red"}, "colour"),
])
def test_post_names_the_field_at_fault(api, over, field):
    resp = post(api, **over)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["field"] == field


def test_out_of_county_jobs_need_no_location(api):
    resp = post(api, kind="out_of_county", lat=None, lon=None, county_code=None, town_code=None)
    assert resp.status_code == 201
    assert resp.get_json()["lat"] is None


def test_duplicate_id_is_409(api):
    assert post(api, job_id="J-DUP").status_code == 201
    resp = post(api, job_id="J-DUP")
    assert resp.status_code == 409
    assert resp.get_json()["error"] == {"code": "conflict", "message": "job 'J-DUP' exists already",
                                        "field": "job_id"}
    assert post(api, job_id="J-SEW").status_code == 409


def test_list_filters_and_paginates(api):
    post(api, job_id="J-L1")
    post(api, job_id="J-L2", kind="enterprise")
    everything = api.get("/api/v1/jobs", as_="volunteer").get_json()
    assert everything["total"] == 5 and everything["page"] == 1
    assert {j["job_id"] for j in everything["items"]} == {"J-SEW", "J-PACK", "J-CLEAN", "J-L1", "J-L2"}
    kinds = api.get("/api/v1/jobs?kind=enterprise", as_="evaluator").get_json()
    assert {j["job_id"] for j in kinds["items"]} == {"J-PACK", "J-L2"}
    assert api.get("/api/v1/jobs?county_code=371121", as_="recruiter").get_json()["total"] == 0
    mine = api.get("/api/v1/jobs?mine=true", as_="recruiter").get_json()
    assert {j["job_id"] for j in mine["items"]} == {"J-L1", "J-L2"}
    p1 = api.get("/api/v1/jobs?per_page=2&page=1").get_json()
    p3 = api.get("/api/v1/jobs?per_page=2&page=3").get_json()
    assert len(p1["items"]) == 2 and len(p3["items"]) == 1 and p3["total"] == 5
    api.post("/api/v1/jobs/J-L1/close", as_="recruiter")
    closed = api.get("/api/v1/jobs?status=closed").get_json()
    assert [j["job_id"] for j in closed["items"]] == ["J-L1"]
    assert api.get("/api/v1/jobs?kind=nope").status_code == 422
    assert api.get("/api/v1/jobs?kind=nope").get_json()["error"]["field"] == "kind"


def test_patch_changes_fields_and_keeps_the_rest(api):
    post(api, job_id="J-P")
    resp = api.patch("/api/v1/jobs/J-P", as_="recruiter", json={"title": "编织（计件）", "monthly_wage": 3000,
                                                                 "skills": ["编织", "手工"]})
    assert resp.status_code == 200
    job = resp.get_json()
    assert job["title"] == "编织（计件）" and job["monthly_wage"] == 3000.0 and job["skills"] == ["编织", "手工"]
    assert job["employer"] == SEWING["employer"] and job["owner"] == "rec-1"


def test_patch_refuses_filled_and_status_and_bad_values(api):
    post(api, job_id="J-P2")
    for field in ("filled", "status"):
        resp = api.patch("/api/v1/jobs/J-P2", as_="recruiter", json={field: 1})
        assert resp.status_code == 422 and resp.get_json()["error"]["field"] == field
    resp = api.patch("/api/v1/jobs/J-P2", as_="recruiter", json={"min_age": 70})
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "min_age"


def test_slots_cannot_drop_below_filled(api):
    api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-SEW"})
    ref = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-B1", "job_id": "J-SEW"}).get_json()
    assert api.patch(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer",
                     json={"outcome": "hired"}).status_code == 200
    resp = api.patch("/api/v1/jobs/J-SEW", json={"slots": 0})
    assert resp.status_code == 422
    resp = api.patch("/api/v1/jobs/J-SEW", as_="admin", json={"slots": 1})
    assert resp.status_code == 200 and resp.get_json()["slots"] == 1


def test_a_posted_vacancy_is_in_the_very_next_match(api):
    before = api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert "J-KNIT" not in job_ids(before)
    post(api, job_id="J-KNIT", monthly_wage=4000)
    after = api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert "J-KNIT" in job_ids(after)


def test_every_process_sees_a_posted_changed_or_closed_vacancy(api, tmp_path):
    """A second app on the same database stands for another gunicorn worker process."""
    from conftest import Api
    from matcher.api import create_app
    other = Api(create_app(dict(api.app.config)), api.tokens)
    assert "J-KNIT" not in job_ids(other.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json())
    post(api, job_id="J-KNIT", monthly_wage=4000)
    seen = other.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert "J-KNIT" in job_ids(seen)
    api.patch("/api/v1/jobs/J-KNIT", as_="recruiter", json={"title": "改过的标题"})
    seen = other.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert {m["job_id"]: m["title"] for m in seen["matches"]}["J-KNIT"] == "改过的标题"
    api.patch("/api/v1/jobs/J-KNIT", as_="recruiter", json={"max_age": 30})
    seen = other.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert "J-KNIT" not in job_ids(seen)  # W-A1 is 35
    api.patch("/api/v1/jobs/J-KNIT", as_="recruiter", json={"max_age": 60})
    api.post("/api/v1/jobs/J-KNIT/close", as_="recruiter")
    seen = other.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert "J-KNIT" not in job_ids(seen)


def test_a_closed_job_stops_being_offered(api):
    assert "J-SEW" in job_ids(api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json())
    resp = api.post("/api/v1/jobs/J-SEW/close", as_="admin")
    assert resp.status_code == 200 and resp.get_json()["status"] == "closed"
    assert "J-SEW" not in job_ids(api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json())
    assert api.get("/api/v1/jobs/J-SEW/candidates", as_="admin").get_json()["candidates"] == []


def test_candidates_are_ranked_and_pseudonymised(api):
    job = post(api, job_id="J-C", skills=["缝纫"]).get_json()
    resp = api.get(f"/api/v1/jobs/{job['job_id']}/candidates?k=10", as_="recruiter")
    assert resp.status_code == 200
    body = resp.get_json()
    cands = body["candidates"]
    assert body["job_id"] == "J-C" and body["model_version"]
    # W-A1 (35, sews), W-A2 (52), W-B1 (23); W-OUT1 lives 100+ km away.
    assert len(cands) == 3
    assert [c["rank"] for c in cands] == [1, 2, 3]
    assert cands[0]["age_band"] == "30-39" and cands[0]["skills_fit"] == {"required": ["缝纫"], "matched": ["缝纫"],
                                                                         "coverage": 1.0}
    assert sorted(c["age_band"] for c in cands) == ["20-29", "30-39", "50-59"]
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)
    text = resp.get_data(as_text=True)
    for person in ("W-A1", "W-A2", "W-B1", "H-A", "H-B", "worker_id", "household_id"):
        assert person not in text
    assert api.get("/api/v1/jobs/J-C/candidates?k=1", as_="recruiter").get_json()["candidates"] == cands[:1]
    assert api.get("/api/v1/jobs/J-C/candidates?k=0", as_="recruiter").status_code == 422


def test_candidates_of_a_missing_job_are_404(api):
    assert api.get("/api/v1/jobs/NOPE/candidates", as_="admin").status_code == 404


def test_patch_refuses_null_for_a_required_field_but_clears_a_place_code(api):
    post(api, job_id="J-N")
    resp = api.patch("/api/v1/jobs/J-N", as_="recruiter", json={"title": None})
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "title"
    resp = api.patch("/api/v1/jobs/J-N", as_="recruiter", json={"town_code": None})
    assert resp.status_code == 200 and resp.get_json()["town_code"] is None


def test_a_market_job_below_the_minimum_wage_is_422_and_a_welfare_post_is_not_held_to_it(api):
    floor = api.app.extensions["matcher"].policy.jobs.min_monthly_wage
    resp = post(api, monthly_wage=0)
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["field"] == "monthly_wage" and f"minimum wage of {floor} yuan" in err["message"]
    assert post(api, monthly_wage=floor - 1).status_code == 422
    job = post(api, monthly_wage=floor).get_json()
    assert job["monthly_wage"] == floor
    resp = api.patch(f"/api/v1/jobs/{job['job_id']}", as_="recruiter", json={"monthly_wage": 100})
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "monthly_wage"
    assert api.get(f"/api/v1/jobs/{job['job_id']}", as_="recruiter").get_json()["monthly_wage"] == floor
    welfare = post(api, as_="admin", kind="public_welfare", monthly_wage=500, village_code="371102107201",
                   min_age=40, max_age=65)
    assert welfare.status_code == 201


@pytest.mark.parametrize("over,field", [
    ({"county_code": "411747"}, "county_code"),
    ({"county_code": "000000", "town_code": "", "village_code": ""}, "county_code"),
    ({"town_code": "371102999"}, "town_code"),
    ({"village_code": "371102107999"}, "village_code"),
    ({"town_code": "371121102"}, "town_code"),              # a real town, but of another county
    ({"lon": -84.2}, "lon"),
    ({"lat": 39.9, "lon": 116.4}, "lat"),
])
def test_places_must_be_rizhaos(api, over, field):
    over = {k: (v if v != "" else None) for k, v in over.items()}
    resp = post(api, **over)
    assert resp.status_code == 422, resp.get_json()
    assert resp.get_json()["error"]["field"] == field
    assert "Rizhao" in resp.get_json()["error"]["message"] or "is not in" in resp.get_json()["error"]["message"]


def test_an_out_of_county_job_may_lie_anywhere(api):
    resp = post(api, kind="out_of_county", lat=31.23, lon=121.47, county_code="310101", town_code=None)
    assert resp.status_code == 201, resp.get_json()


def test_households_and_volunteer_tokens_outside_rizhao_are_refused(api, tmp_path):
    from matcher.store import TokenError, create_token, make_engine
    resp = api.post("/api/v1/households", json={"household_id": "H-X", "county_code": "000000",
                                                "town_code": "000000001", "lat": 35.5, "lon": 119.2})
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "county_code"
    engine = make_engine(api.app.config["DATABASE_URL"])
    try:
        with pytest.raises(TokenError, match="999999 is not one of Rizhao's counties"):
            create_token(engine, "volunteer", "someone", county="999999")
    finally:
        engine.dispose()


def test_the_job_list_shows_owner_only_to_that_owner_and_admins(api):
    mine = post(api, job_id="J-MINE").get_json()
    assert mine["owner"] == "rec-1"

    def owners(as_):
        items = api.get("/api/v1/jobs?per_page=100", as_=as_).get_json()["items"]
        return {j["job_id"]: j["owner"] for j in items}
    assert owners("recruiter")["J-MINE"] == "rec-1" and owners("admin")["J-MINE"] == "rec-1"
    for who in ("recruiter_other", "volunteer", "evaluator"):
        listed = owners(who)
        assert listed["J-MINE"] is None and "rec-1" not in api.get("/api/v1/jobs", as_=who).get_data(as_text=True)


@pytest.mark.parametrize("char", ["\u202e", "\u2066", "\u200f"])
def test_bidirectional_overrides_in_text_are_refused_like_control_characters(api, char):
    resp = post(api, title=f"缝纫{char}工")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["field"] == "title" and "bidirectional override" in err["message"]
    resp = api.post("/api/v1/import/jobs", data=(
        "job_id,employer,title,kind,lat,lon,county_code,town_code,village_code,skills,min_age,max_age,"
        "physical_demand,requires,slots,filled,monthly_wage,posted_on,status\n"
        f"J-BIDI,厂,缝纫{char}工,workshop_factory,35.5,119.26,371102,371102107,,,18,60,light,,2,0,2600,2026-11-01,open\n"
    ).encode(), content_type="text/csv")
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "title"
