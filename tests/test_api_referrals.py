"""Referrals and outcomes: a hire takes a slot atomically, a full job is a 409 and stops being offered."""

from __future__ import annotations

import threading

import pytest

import factories as f
from conftest import make_api


def refer(api, worker_id, job_id, as_="volunteer"):
    return api.post("/api/v1/referrals", as_=as_, json={"worker_id": worker_id, "job_id": job_id})


def outcome(api, referral_id, as_="volunteer", **body):
    return api.patch(f"/api/v1/referrals/{referral_id}", as_=as_, json=body)


def job(api, job_id):
    return api.get(f"/api/v1/jobs/{job_id}", as_="admin").get_json()


def test_refer_answers_201_with_the_referral(api):
    resp = refer(api, "W-A1", "J-SEW")
    assert resp.status_code == 201
    ref = resp.get_json()
    assert ref["referral_id"] and ref["worker_id"] == "W-A1" and ref["job_id"] == "J-SEW"
    assert ref["outcome"] is None
    assert resp.headers["Location"].endswith(ref["referral_id"])
    assert api.get(resp.headers["Location"], as_="volunteer").get_json() == ref


def test_a_hire_takes_a_slot_and_employs_the_worker(api):
    ref = refer(api, "W-A1", "J-SEW").get_json()
    resp = outcome(api, ref["referral_id"], outcome="hired")
    assert resp.status_code == 200 and resp.get_json()["outcome"] == "hired"
    assert job(api, "J-SEW")["filled"] == 1
    matches = api.get("/api/v1/workers/W-A1/matches", as_="volunteer").get_json()
    assert matches["matches"] == [] and "本人已就业" in matches["notes"]


def test_a_full_job_is_409_and_stops_being_offered(api):
    # J-PACK has 2 slots.
    r1, r2, r3 = (refer(api, w, "J-PACK").get_json() for w in ("W-A1", "W-A2", "W-B1"))
    assert outcome(api, r1["referral_id"], outcome="hired").status_code == 200
    assert outcome(api, r2["referral_id"], outcome="hired").status_code == 200
    resp = outcome(api, r3["referral_id"], outcome="hired")
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "conflict"
    assert job(api, "J-PACK")["filled"] == 2
    pending = api.get(f"/api/v1/referrals/{r3['referral_id']}", as_="volunteer").get_json()
    assert pending["outcome"] is None
    assert "J-PACK" not in [m["job_id"] for m in
                            api.get("/api/v1/workers/W-B1/matches", as_="volunteer").get_json()["matches"]]
    assert refer(api, "W-B1", "J-PACK").status_code == 409


@pytest.mark.parametrize("kind,reason,wrong", [("declined", "distance", "unreachable"),
                                               ("rejected", "skills", "wage"),
                                               ("no_show", "unreachable", "position_filled")])
def test_other_outcomes_need_a_reason_from_their_own_list_and_take_no_slot(api, kind, reason, wrong):
    ref = refer(api, "W-A1", "J-SEW").get_json()
    resp = outcome(api, ref["referral_id"], outcome=kind)
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "reason"
    resp = outcome(api, ref["referral_id"], outcome=kind, reason="because")
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "reason"
    resp = outcome(api, ref["referral_id"], outcome=kind, reason=wrong)       # another outcome's reason
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "reason"
    assert f"{wrong} is not a reason for {kind}" in resp.get_json()["error"]["message"]
    resp = outcome(api, ref["referral_id"], outcome=kind, reason="other")     # other needs a note
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "note"
    assert api.get(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer").get_json()["outcome"] is None
    resp = outcome(api, ref["referral_id"], outcome=kind, reason=reason, note="路太远\n要换乘两次")
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["outcome"], body["reason"], body["note"]) == (kind, reason, "路太远\n要换乘两次")
    assert job(api, "J-SEW")["filled"] == 0


def test_a_hire_takes_no_reason(api):
    ref = refer(api, "W-A1", "J-SEW").get_json()
    resp = outcome(api, ref["referral_id"], outcome="hired", reason="wage")
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "reason"
    assert job(api, "J-SEW")["filled"] == 0


def test_the_reason_lists_are_served_with_chinese_labels_and_in_the_openapi_document(api):
    from matcher.api.schemas import OUTCOME_REASONS
    got = api.get("/api/v1/referrals/reasons", as_="recruiter").get_json()
    assert [r["code"] for r in got["declined"]] == ["wage", "distance", "hours", "family_care", "health",
                                                   "not_interested", "found_other_work", "other"]
    assert [r["code"] for r in got["rejected"]] == ["skills", "age", "health", "position_filled",
                                                   "employer_choice", "other"]
    assert [r["code"] for r in got["no_show"]] == ["unreachable", "family_care", "health", "found_other_work",
                                                  "other"]
    assert {"code": "wage", "label": "工资太低"} in got["declined"]
    assert set(got) == set(OUTCOME_REASONS)
    doc = api.client.get("/openapi.json").get_json()
    patch = doc["paths"]["/api/v1/referrals/{referral_id}"]["patch"]["description"]
    assert "no_show: `unreachable`, `family_care`, `health`, `found_other_work`, `other`" in patch


def test_a_recorded_outcome_stays_and_repeating_a_hire_takes_no_second_slot(api):
    ref = refer(api, "W-A1", "J-SEW").get_json()
    assert outcome(api, ref["referral_id"], outcome="hired").status_code == 200
    assert outcome(api, ref["referral_id"], outcome="declined", reason="wage").status_code == 409
    again = outcome(api, ref["referral_id"], outcome="hired", retained_6m=True)
    assert again.status_code == 200 and again.get_json()["retained_6m"] is True
    assert job(api, "J-SEW")["filled"] == 1
    assert outcome(api, ref["referral_id"], outcome="bogus").get_json()["error"]["field"] == "outcome"


def test_referrals_are_scoped_to_the_volunteers_county(api):
    from conftest import post_job_near_other_county
    near = post_job_near_other_county(api)
    assert refer(api, "W-OUT1", near).status_code == 404
    ref = refer(api, "W-OUT1", near, as_="volunteer_other").get_json()
    assert api.get(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer").status_code == 404
    assert outcome(api, ref["referral_id"], outcome="hired").status_code == 404
    assert outcome(api, ref["referral_id"], as_="volunteer_other", outcome="hired").status_code == 200


def test_referring_to_unknown_or_closed_jobs(api):
    resp = refer(api, "W-A1", "J-NONE")
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == "job_id"
    assert refer(api, "NOBODY", "J-SEW").status_code == 404
    api.post("/api/v1/jobs/J-SEW/close", as_="admin")
    assert refer(api, "W-A1", "J-SEW").status_code == 409


def test_outcomes_are_the_next_training_data(api, tmp_path):
    """`matcher db export` (store.export_world) writes the recorded outcomes as referrals.csv."""
    from matcher.schema import load_world
    from matcher.store import export_world, make_engine
    hired = refer(api, "W-A1", "J-SEW").get_json()
    outcome(api, hired["referral_id"], outcome="hired")
    refer(api, "W-B1", "J-SEW")  # pending: not history yet
    engine = make_engine(api.app.config["DATABASE_URL"])
    export_world(engine, tmp_path / "out")
    engine.dispose()
    world = load_world(tmp_path / "out")
    assert world.referrals["referral_id"].tolist() == [hired["referral_id"]]
    assert world.referrals["outcome"].tolist() == ["hired"]
    assert world.jobs.set_index("job_id").at["J-SEW", "filled"] == 1
    assert bool(world.workers.set_index("worker_id").at["W-A1", "employed"])


def _race_world():
    hh = [f.household(household_id=f"HR{i:02d}") for i in range(50)]
    workers = [f.worker(h["household_id"], worker_id=f"WR{i:02d}") for i, h in enumerate(hh)]
    return f.world(hh, workers, [f.job(job_id="J-RACE", slots=5)])


def _race(api):
    refs = [refer(api, f"WR{i:02d}", "J-RACE").get_json()["referral_id"] for i in range(50)]
    barrier = threading.Barrier(50)
    codes = []
    lock = threading.Lock()

    def hire(rid):
        client = api.app.test_client()
        barrier.wait()
        resp = client.patch(f"/api/v1/referrals/{rid}", json={"outcome": "hired"},
                            headers=api.headers("volunteer"))
        with lock:
            codes.append(resp.status_code)

    threads = [threading.Thread(target=hire, args=(rid,)) for rid in refs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(codes) == [200] * 5 + [409] * 45
    assert job(api, "J-RACE")["filled"] == 5
    hired = [api.get(f"/api/v1/referrals/{rid}", as_="admin").get_json()["outcome"] for rid in refs]
    assert hired.count("hired") == 5 and hired.count(None) == 45


def test_fifty_hires_race_for_five_slots_on_sqlite(tmp_path, prior_model_dir):
    api = make_api(f"sqlite:///{tmp_path / 'race.db'}", tmp_path, prior_model_dir, world=_race_world())
    _race(api)


@pytest.mark.postgres
def test_fifty_hires_race_for_five_slots_on_postgresql(pg_url, tmp_path, prior_model_dir):
    api = make_api(pg_url, tmp_path, prior_model_dir, world=_race_world())
    try:
        _race(api)
    finally:
        api.app.extensions["matcher"].dispose()




def _rules_world():
    from conftest import api_world
    w = api_world()
    extra = f.table("workers", [f.worker("H-A", worker_id="W-OLD", age=61, sex="M", labour_capacity="none"),
                                f.worker("H-A", worker_id="W-HOME", age=30, home_only=True)])
    return type(w)(w.households, __import__("pandas").concat([w.workers, extra], ignore_index=True), w.jobs,
                   w.referrals)


@pytest.fixture
def rules_api(tmp_path, prior_model_dir):
    a = make_api(f"sqlite:///{tmp_path / 'api.db'}", tmp_path, prior_model_dir, world=_rules_world())
    yield a
    a.app.extensions["matcher"].dispose()


def test_referring_an_ineligible_pair_is_422_naming_each_broken_rule_with_its_values(rules_api):
    before = rules_api.get("/api/v1/stats", as_="admin").get_json()
    resp = refer(rules_api, "W-OLD", "J-SEW")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert (err["code"], err["field"]) == ("ineligible", "job_id")
    assert "age 61 is above the job's max_age 60" in err["message"]
    assert "labour_capacity is none" in err["message"]
    resp = refer(rules_api, "W-HOME", "J-PACK")
    assert resp.status_code == 422
    assert "only at home (home_only) and the job is enterprise" in resp.get_json()["error"]["message"]
    resp = refer(rules_api, "W-A1", "J-CLEAN")       # a woman of 35: no public-welfare post for her
    assert resp.status_code == 422
    assert "public_welfare posts are only for disabled or older workers" in resp.get_json()["error"]["message"]
    assert rules_api.get("/api/v1/stats", as_="admin").get_json() == before      # nothing written


def test_a_hire_of_a_pair_no_longer_eligible_is_422_and_takes_no_slot(rules_api):
    ref = refer(rules_api, "W-A2", "J-PACK").get_json()         # a man of 52
    assert rules_api.patch("/api/v1/jobs/J-PACK", as_="admin", json={"max_age": 50}).status_code == 200
    resp = outcome(rules_api, ref["referral_id"], outcome="hired")
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert (err["code"], err["field"]) == ("ineligible", "job_id")
    assert "age 52 is above the job's max_age 50" in err["message"]
    assert job(rules_api, "J-PACK")["filled"] == 0
    assert rules_api.get(f"/api/v1/referrals/{ref['referral_id']}", as_="volunteer").get_json()["outcome"] is None
    # any other outcome can still be recorded
    assert outcome(rules_api, ref["referral_id"], outcome="rejected", reason="other", note="年龄").status_code == 200
