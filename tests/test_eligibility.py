"""SPEC section 3, pinned from both sides: a pair just inside and just outside each bound."""

import numpy as np
import pytest

import factories as f
from matcher.eligibility import JobArrays, WorkerArrays, candidate_pairs, explain
from matcher.policy import load_policy
from matcher.skills import SkillIndex

POLICY = load_policy()
KM_PER_DEG_LAT = 111.19


def north(km: float) -> float:
    return f.HOME[0] + km / KM_PER_DEG_LAT


def check(worker_kw=None, job_kw=None, household_kw=None):
    """(eligible?, failed rule names) for one worker and one job."""
    h = f.household(household_id="H1", **(household_kw or {}))
    w = f.worker("H1", worker_id="W1", **(worker_kw or {}))
    j = f.job(job_id="J1", **(job_kw or {}))
    world = f.world([h], [w], [j])
    J = JobArrays.build(world.jobs, SkillIndex())
    W = WorkerArrays.build(world.workers, world.households, POLICY, J.skill_index, J.words)
    pairs = candidate_pairs(W, J, POLICY, np.arange(len(W)))
    ok = bool(len(pairs))
    why = explain(W, J, 0, 0, POLICY)
    assert ok == (why == []), (ok, why)
    return ok, why


def test_a_plain_pair_is_eligible():
    assert check() == (True, [])


@pytest.mark.parametrize("job_kw,ok", [
    ({"status": "open", "slots": 3, "filled": 2}, True),
    ({"status": "open", "slots": 3, "filled": 3}, False),
    ({"status": "closed"}, False),
])
def test_job_must_be_open_with_a_free_slot(job_kw, ok):
    assert check(job_kw=job_kw)[0] is ok


@pytest.mark.parametrize("worker_kw,ok", [
    ({"labour_capacity": "partial"}, True),
    ({"labour_capacity": "none"}, False),
    ({"wants": "business"}, False),
    ({"wants": "none"}, False),
    ({"employed": True}, False),
])
def test_worker_must_be_able_willing_and_unemployed(worker_kw, ok):
    result = check(worker_kw=worker_kw)
    assert result[0] is ok
    if not ok:
        assert result[1] == ["worker_available"]


@pytest.mark.parametrize("age,ok", [(17, False), (18, True), (60, True), (61, False)])
def test_age_within_the_jobs_band(age, ok):
    assert check({"age": age}, {"min_age": 18, "max_age": 60}) == (ok, [] if ok else ["age"])


@pytest.mark.parametrize("disability,grade,requires,ok", [
    ("visual", 2, "sight", False), ("visual", 3, "sight", True), ("visual", 1, "hearing", True),
    ("hearing", 1, "hearing", False), ("hearing", 3, "hearing", True),
    ("speech", 2, "speech", False), ("speech", 3, "speech", True),
    ("none", "", "sight;hearing;speech;literacy", True),
])
def test_job_needs_no_function_the_worker_lacks(disability, grade, requires, ok):
    result = check({"disability": disability, "disability_grade": grade, "age": 30}, {"requires": requires})
    assert result == (ok, [] if ok else ["functions"])


@pytest.mark.parametrize("education,ok", [("none", False), ("primary", True)])
def test_literacy_follows_education(education, ok):
    assert check({"education": education}, {"requires": "literacy"})[0] is ok


@pytest.mark.parametrize("worker_kw,demand,ok", [
    ({"disability": "physical", "disability_grade": 2}, "heavy", False),
    ({"disability": "physical", "disability_grade": 2}, "medium", True),
    ({"disability": "physical", "disability_grade": 1}, "medium", False),
    ({"disability": "physical", "disability_grade": 1}, "light", True),
    ({"labour_capacity": "partial"}, "heavy", False),
    ({"labour_capacity": "partial"}, "medium", True),
    ({"labour_capacity": "full"}, "heavy", True),
])
def test_physical_demand_within_capacity(worker_kw, demand, ok):
    assert check(worker_kw, {"physical_demand": demand}) == (ok, [] if ok else ["physical_demand"])


@pytest.mark.parametrize("km,ok", [(14.9, True), (15.1, False)])
def test_default_commute_from_policy(km, ok):
    assert POLICY.commute.default_max_km == 15.0
    assert check(job_kw={"lat": north(km), "kind": "enterprise"}) == (ok, [] if ok else ["distance"])


@pytest.mark.parametrize("km,ok", [(4.9, True), (5.1, False)])
def test_workers_own_commute_limit(km, ok):
    assert check({"max_commute_km": 5}, {"lat": north(km), "kind": "enterprise"})[0] is ok


@pytest.mark.parametrize("km,ok", [(19.9, True), (20.1, False)])
def test_home_work_reach_is_the_delivery_radius(km, ok):
    assert POLICY.commute.home_delivery_km == 20.0
    assert check({"max_commute_km": 2}, {"lat": north(km), "kind": "workshop_home"})[0] is ok


@pytest.mark.parametrize("kind,ok", [("workshop_home", True), ("workshop_factory", False), ("enterprise", False)])
def test_home_only_workers_take_only_home_work(kind, ok):
    assert check({"home_only": True}, {"kind": kind}) == (ok, [] if ok else ["home_only"])


@pytest.mark.parametrize("migrate,ok", [(True, True), (False, False)])
def test_out_of_county_only_for_willing_migrants_at_any_distance(migrate, ok):
    job = {"kind": "out_of_county", "lat": "", "lon": "", "county_code": "", "town_code": "", "village_code": ""}
    assert check({"will_migrate": migrate, "max_commute_km": 1}, job) == (ok, [] if ok else ["migration"])


WELFARE = {"kind": "public_welfare", "title": "村庄保洁员", "max_age": 65}


@pytest.mark.parametrize("sex,age,ok", [("F", 39, False), ("F", 40, True), ("M", 49, False), ("M", 50, True)])
def test_welfare_posts_follow_the_4050_rule(sex, age, ok):
    assert check({"sex": sex, "age": age}, WELFARE) == (ok, [] if ok else ["public_welfare"])


def test_welfare_posts_take_disabled_workers_of_any_age():
    assert check({"age": 25, "disability": "intellectual", "disability_grade": 3}, WELFARE) == (True, [])


def test_welfare_post_serves_its_own_village_only():
    other = dict(WELFARE, village_code="371102107202")
    assert check({"sex": "F", "age": 45}, other) == (False, ["public_welfare"])


def test_town_level_welfare_post_serves_the_whole_town():
    town_post = dict(WELFARE, village_code="")
    assert check({"sex": "F", "age": 45}, town_post, {"village_code": "371102107209"}) == (True, [])


def test_several_failures_are_all_named():
    ok, why = check({"age": 70, "home_only": True}, {"status": "closed", "physical_demand": "heavy",
                                                      "kind": "enterprise"})
    assert not ok and why == ["job_open", "age", "home_only"]


def test_candidate_generation_uses_radius_not_all_jobs():
    hs = [f.household(household_id="H1")]
    ws = [f.worker("H1", worker_id="W1")]
    near = [f.job(job_id=f"N{i}", lat=north(i)) for i in range(10)]
    far = [f.job(job_id=f"F{i}", lat=north(40 + i)) for i in range(10)]
    world = f.world(hs, ws, near + far)
    J = JobArrays.build(world.jobs, SkillIndex())
    W = WorkerArrays.build(world.workers, world.households, POLICY, J.skill_index, J.words)
    pairs = candidate_pairs(W, J, POLICY)
    assert sorted(J.ids[pairs.j]) == sorted(j["job_id"] for j in near)
    assert np.allclose(np.sort(pairs.distance_km), np.arange(10), atol=0.05)


def _words(worker_kw=None, job_kw=None):
    from matcher.eligibility import broken_rules
    h = f.household(household_id="H1")
    w = f.worker("H1", worker_id="W1", **(worker_kw or {}))
    j = f.job(job_id="J1", **(job_kw or {}))
    world = f.world([h], [w], [j])
    J = JobArrays.build(world.jobs, SkillIndex())
    W = WorkerArrays.build(world.workers, world.households, POLICY, J.skill_index, J.words)
    words = broken_rules(W, J, 0, 0, POLICY)
    assert (words == []) == (explain(W, J, 0, 0, POLICY) == [])     # the same masks decide
    return words


@pytest.mark.parametrize("worker_kw,job_kw,expected", [
    ({}, {}, []),
    ({"age": 61}, {"max_age": 60}, ["age 61 is above the job's max_age 60"]),
    ({"age": 17}, {"min_age": 18}, ["age 17 is below the job's min_age 18"]),
    ({"disability": "visual", "disability_grade": 1}, {"requires": "sight"},
     ["the job requires sight, which the worker lacks"]),
    ({"labour_capacity": "partial"}, {"physical_demand": "heavy"},
     ["physical_demand heavy is above the worker's limit medium"]),
    ({"max_commute_km": 5}, {"lat": north(7.5)}, ["distance 7.5 km is beyond the worker's max_commute_km 5 km"]),
    ({}, {"kind": "out_of_county", "lat": "", "lon": "", "county_code": "", "town_code": "", "village_code": ""},
     ["the job is out_of_county and the worker is not willing to migrate (will_migrate false)"]),
    ({"wants": "business"}, {}, ["wants is business, not a job"]),
    ({}, {"status": "closed"}, ["the job is closed"]),
])
def test_broken_rules_name_each_rule_with_its_values(worker_kw, job_kw, expected):
    assert _words(worker_kw, job_kw) == expected
