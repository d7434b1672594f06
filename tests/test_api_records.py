"""Adding people (JSON and CSV), statistics, and stored city-wide plans."""

from __future__ import annotations

import pytest

HOUSEHOLD = {"household_id": "H-NEW", "county_code": "371102", "town_code": "371102107",
             "village_code": "371102107202", "lat": 35.505, "lon": 119.267}
WORKER = {"worker_id": "W-NEW", "household_id": "H-NEW", "age": 45, "sex": "F", "skills": ["缝纫", "编织"]}


def test_admin_adds_a_household_and_a_worker_who_then_gets_matches(api):
    resp = api.post("/api/v1/households", json=HOUSEHOLD)
    assert resp.status_code == 201
    assert resp.get_json() == dict(HOUSEHOLD, head_name=None, phone=None)   # no name given: none stored
    resp = api.post("/api/v1/workers", json=WORKER)
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["skills"] == ["缝纫", "编织"] and body["disability"] == "none" and body["employed"] is False
    matches = api.get("/api/v1/workers/W-NEW/matches", as_="volunteer").get_json()
    assert matches["matches"][0]["job_id"] == "J-SEW"


def test_adding_people_refuses_duplicates_and_dangling_households(api):
    assert api.post("/api/v1/households", json=dict(HOUSEHOLD, household_id="H-A")).status_code == 409
    resp = api.post("/api/v1/workers", json=dict(WORKER, household_id="H-NOWHERE"))
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "household_id"
    resp = api.post("/api/v1/workers", json=dict(WORKER, worker_id="W-A1", household_id="H-A"))
    assert resp.status_code == 409


@pytest.mark.parametrize("over,field", [
    ({"town_code": "371121100"}, "town_code"),
    ({"county_code": "3711"}, "county_code"),
    ({"lat": "north"}, "lat"),
    ({"household_id": "has space"}, "household_id"),
    ({"phone": "12345"}, "phone"),
    ({"phone": "+1 555 0100"}, "phone"),
    ({"head_name": "张\x07三"}, "head_name"),
    ({"head_name": "张" * 51}, "head_name"),
])
def test_household_fields_are_checked(api, over, field):
    resp = api.post("/api/v1/households", json=dict(HOUSEHOLD, **over))
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == field


@pytest.mark.parametrize("over,field", [
    ({"disability": "visual"}, "disability_grade"),
    ({"disability_grade": 2}, "disability_grade"),
    ({"age": 200}, "age"),
    ({"sex": "X"}, "sex"),
])
def test_worker_fields_are_checked(api, over, field):
    api.post("/api/v1/households", json=HOUSEHOLD)
    resp = api.post("/api/v1/workers", json=dict(WORKER, **over))
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == field


def test_csv_import_is_whole_or_nothing_and_names_file_row_and_column(api):
    good = ("household_id,county_code,town_code,village_code,lat,lon,extra\n"
            "H-C1,371102,371102107,,35.5,119.26,ignored\n"
            "H-C2,371102,371102107,371102107202,35.51,119.27,\n")
    resp = api.post("/api/v1/import/households", data=good.encode(), content_type="text/csv")
    assert resp.status_code == 200
    assert resp.get_json() == {"table": "households", "inserted": 2, "unchanged": 0}
    again = api.post("/api/v1/import/households", data=good.encode(), content_type="text/csv")
    assert again.get_json() == {"table": "households", "inserted": 0, "unchanged": 2}
    bad = ("worker_id,household_id,age,sex,disability,disability_grade,labour_capacity,wants,skills,education,"
           "max_commute_km,home_only,will_migrate,graduate,employed\n"
           "W-C1,H-C1,30,F,none,,full,job,,junior,,false,false,false,false\n"
           "W-C2,H-C1,thirty,F,none,,full,job,,junior,,false,false,false,false\n")
    resp = api.post("/api/v1/import/workers", data=bad.encode(), content_type="text/csv")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["field"] == "age" and "workers.csv" in err["message"] and "row 3" in err["message"]
    assert api.get("/api/v1/workers/W-C1/matches", as_="admin").status_code == 404


def test_csv_import_of_jobs_is_matched_at_once(api):
    csv = ("job_id,employer,title,kind,lat,lon,county_code,town_code,village_code,skills,min_age,max_age,"
           "physical_demand,requires,slots,filled,monthly_wage,posted_on,status\n"
           "J-CSV,织布厂,织布工,enterprise,35.505,119.267,371102,,,缝纫,18,60,light,,3,0,5000,2026-03-01,open\n")
    assert api.post("/api/v1/import/jobs", data=csv.encode(), content_type="text/csv").status_code == 200
    matches = api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert "J-CSV" in [m["job_id"] for m in matches["matches"]]


def test_import_of_an_unknown_table_is_404(api):
    assert api.post("/api/v1/import/referrals", data=b"a\n1\n", content_type="text/csv").status_code == 404


def test_stats_count_coverage_placements_and_subsidies(api):
    ref = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-SEW"}).get_json()
    api.patch(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer", json={"outcome": "hired"})
    api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-B1", "job_id": "J-PACK"})
    stats = api.get("/api/v1/stats", as_="evaluator").get_json()
    assert stats["households"] == {"total": 3, "able_willing": 3, "covered": 1, "coverage": round(1 / 3, 4)}
    assert stats["workers"] == {"total": 4, "employed": 1, "seeking": 3, "graduates_not_employed": 1}
    assert stats["placements_by_kind"]["workshop_factory"] == 1
    assert stats["subsidies_owed_yuan"]["workshop_factory"] == 1000
    assert stats["subsidies_owed_yuan"]["total"] == 1000
    assert stats["referrals"]["hired"] == 1 and stats["referrals"]["pending"] == 1
    assert stats["jobs"] == {"total": 3, "open": 3, "free_slots": 5}


def test_household_matches_have_the_plan_members_and_model_version(api):
    body = api.get("/api/v1/households/H-A/matches", as_="volunteer").get_json()
    assert body["household_id"] == "H-A" and body["model_version"]
    assert [m["worker_id"] for m in body["members"]] == ["W-A1", "W-A2"]
    assert {p["worker_id"] for p in body["plan"]} == {"W-A1", "W-A2"}
    assert len({p["job_id"] for p in body["plan"]}) == 2
    item = body["members"][0]["matches"][0]
    assert set(item) >= {"job_id", "title", "employer", "kind", "tier", "score", "distance_km", "monthly_wage",
                         "subsidy_yuan", "reasons"}
    assert all(isinstance(r, str) for r in item["reasons"])
    assert "model_version" not in body["members"][0]


def test_a_graduate_comes_first_with_a_note(api):
    body = api.get("/api/v1/workers/W-B1/matches", as_="volunteer").get_json()
    assert body["notes"][0].startswith("特困家庭高校毕业生")


def test_an_older_worker_is_offered_the_village_welfare_post_when_no_market_job_is_viable(api):
    for job_id in ("J-SEW", "J-PACK"):
        api.post(f"/api/v1/jobs/{job_id}/close", as_="admin")
    body = api.get("/api/v1/workers/W-A2/matches", as_="volunteer").get_json()
    assert body["matches"] == []
    assert [f["job_id"] for f in body["fallback"]] == ["J-CLEAN"]
    assert body["fallback"][0]["tier"] == "public_welfare"


def test_a_plan_is_computed_stored_and_read_by_county(api):
    resp = api.post("/api/v1/allocations", as_="evaluator", json={"note": "周计划"})
    assert resp.status_code == 201, resp.get_json()
    plan = resp.get_json()
    assert resp.headers["Location"].endswith(f"/api/v1/allocations/{plan['allocation_id']}")
    assert "created_by" not in plan and "eval-1" not in resp.get_data(as_text=True) and plan["model_version"]
    assert plan["summary"]["note"] == "周计划"
    placed = {r["worker_id"]: r["job_id"] for r in plan["rows"]}
    # W-OUT1 lives 40 km from every job; the three others each get one.
    assert set(placed) == {"W-A1", "W-A2", "W-B1"} and len(plan["rows"]) == 3
    mine = api.get(f"/api/v1/allocations/{plan['allocation_id']}", as_="volunteer").get_json()
    assert mine["rows"] and all(r["county_code"] == "371102" for r in mine["rows"])
    other = api.get(f"/api/v1/allocations/{plan['allocation_id']}", as_="volunteer_other").get_json()
    assert all(r["county_code"] == "371121" for r in other["rows"])
    # the figures are each county's own: W-OUT1's household is the other county's one uncovered household
    assert mine["summary"]["households"] == {"coverable": 2, "covered": 2, "uncovered": 0, "covered_share": 1.0}
    assert mine["summary"]["uncovered"]["total"] == 0 and mine["summary"]["note"] == "周计划"
    assert other["summary"]["households"]["coverable"] == 1 and other["summary"]["uncovered"]["total"] == 1
    assert {w["county_code"] for w in other["summary"]["uncovered"]["where"]} == {"371121"}
    assert "by_county" not in mine["summary"] and "371121" not in str(mine["summary"])
    assert plan["summary"]["households"]["coverable"] == 3          # the evaluator sees the city
    assert api.get("/api/v1/allocations/999", as_="admin").status_code == 404
    assert api.get("/api/v1/allocations/99999999999999999999", as_="admin").status_code == 404


@pytest.mark.postgres
def test_the_whole_flow_on_postgresql(pg_url, tmp_path, prior_model_dir):
    from conftest import make_api
    api = make_api(pg_url, tmp_path, prior_model_dir)
    try:
        assert api.get("/readyz", as_=None).status_code == 200
        job = api.post("/api/v1/jobs", as_="recruiter", json={
            "job_id": "J-PG", "employer": "厂", "title": "工", "kind": "enterprise", "lat": 35.505, "lon": 119.267,
            "slots": 1, "monthly_wage": 5000, "skills": ["缝纫"]}).get_json()
        assert job["owner"] == "rec-1"
        matches = api.get("/api/v1/households/H-A/matches", as_="volunteer").get_json()
        assert "J-PG" in [m["job_id"] for m in matches["members"][0]["matches"]]
        ref = api.post("/api/v1/referrals", as_="volunteer", json={"worker_id": "W-A1", "job_id": "J-PG"}).get_json()
        assert api.patch(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer",
                         json={"outcome": "hired"}).status_code == 200
        assert api.get("/api/v1/jobs/J-PG", as_="recruiter").get_json()["filled"] == 1
        assert api.get("/api/v1/stats").get_json()["placements_by_kind"]["enterprise"] == 1
        assert api.post("/api/v1/allocations", json={}).status_code == 201
        assert api.get("/api/v1/workers/W-A1\x00/matches", as_="admin").status_code == 404
        assert api.post("/api/v1/jobs", as_="recruiter", json={
            "employer": "厂", "title": "bad\u0000", "kind": "enterprise", "lat": 35.5, "lon": 119.2, "slots": 1,
            "monthly_wage": 1}).status_code == 422
    finally:
        api.app.extensions["matcher"].dispose()
