"""Ranking, reasons, subsidies, the public-welfare fallback, training suggestions, the household plan."""

import numpy as np
import pytest

import factories as f
from matcher.model import MatchModel, prior_model
from matcher.policy import load_policy
from matcher.ranking import Engine

POLICY = load_policy()
KM = 111.19


def north(km):
    return f.HOME[0] + km / KM


class FixedScores:
    """A scorer that gives each job a set probability, to pin ranking logic down exactly."""

    def __init__(self, by_wage):
        self.by_wage = by_wage

    def predict_proba(self, X):
        from matcher.features import FEATURE_INDEX
        wages = X[:, FEATURE_INDEX["monthly_wage"]]
        p = np.array([self.by_wage[w] for w in wages])
        return np.column_stack([1 - p, p])


def engine(households, workers, jobs, model=None):
    return Engine.build(f.world(households, workers, jobs), model or prior_model(), POLICY)


def welfare_post(**kw):
    row = dict(kind="public_welfare", title="村庄保洁员", employer="陈疃镇人民政府", max_age=65, monthly_wage=600,
               physical_demand="light")
    row.update(kw)
    return f.job(**row)


def test_matches_are_ranked_best_first_with_spec_fields():
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", skills="缝纫工")],
               [f.job(job_id="J1", skills="缝纫", monthly_wage=2600, lat=north(2)),
                f.job(job_id="J2", skills="焊接", monthly_wage=2600, lat=north(2), kind="enterprise"),
                f.job(job_id="J3", skills="缝纫", monthly_wage=2600, lat=north(8))])
    out = e.worker_matches("W1", k=10)
    assert [m["job_id"] for m in out["matches"]] == ["J1", "J3", "J2"]
    first = out["matches"][0]
    for key in ("job_id", "title", "employer", "kind", "tier", "score", "distance_km", "monthly_wage",
                "subsidy_yuan", "reasons"):
        assert key in first
    assert first["tier"] == "market" and first["subsidy_yuan"] == 1000
    assert first["distance_km"] == pytest.approx(2.0, abs=0.05)
    assert any("技能对口：缝纫" in r for r in first["reasons"])
    missing = out["matches"][2]["reasons"]
    assert any(r.startswith("缺少技能：焊接") for r in missing)


def test_k_limits_the_list():
    jobs = [f.job(job_id=f"J{i}", lat=north(i)) for i in range(8)]
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1")], jobs)
    assert len(e.worker_matches("W1", k=3)["matches"]) == 3


@pytest.mark.parametrize("kind,subsidy", [("workshop_factory", 1000), ("workshop_home", 1000),
                                          ("enterprise", 0), ("out_of_county", 300)])
def test_subsidy_follows_the_policy_by_kind(kind, subsidy):
    job = f.job(job_id="J1", kind=kind)
    if kind == "out_of_county":
        job.update(lat="", lon="", county_code="", town_code="", village_code="")
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", will_migrate=True)], [job])
    (m,) = e.worker_matches("W1")["matches"]
    assert m["subsidy_yuan"] == subsidy == getattr(POLICY.subsidy, kind)


def test_older_woman_gets_welfare_post_when_market_is_empty():
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", sex="F", age=52)],
               [welfare_post(job_id="P1")])
    out = e.worker_matches("W1")
    assert out["matches"] == []
    assert [p["job_id"] for p in out["fallback"]] == ["P1"]
    assert out["fallback"][0]["tier"] == "public_welfare"
    assert out["fallback"][0]["subsidy_yuan"] == POLICY.subsidy.public_welfare


def test_welfare_post_offered_when_every_market_job_is_below_viability():
    scores = FixedScores({2500.0: 0.05, 600.0: 0.9})
    model = MatchModel(hire=scores)
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", sex="M", age=55)],
               [f.job(job_id="J1"), welfare_post(job_id="P1")], model)
    out = e.worker_matches("W1")
    assert [m["job_id"] for m in out["matches"]] == ["J1"]
    assert [p["job_id"] for p in out["fallback"]] == ["P1"]


def test_no_welfare_post_when_a_market_job_is_viable():
    model = MatchModel(hire=FixedScores({2500.0: 0.40, 600.0: 0.9}))
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", sex="M", age=55)],
               [f.job(job_id="J1"), welfare_post(job_id="P1")], model)
    out = e.worker_matches("W1")
    assert out["fallback"] == [] and [m["job_id"] for m in out["matches"]] == ["J1"]


def test_younger_able_worker_never_gets_welfare_posts():
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", sex="M", age=30)],
               [welfare_post(job_id="P1")])
    out = e.worker_matches("W1")
    assert out["fallback"] == [] and out["matches"] == []
    assert "通勤范围内暂无符合条件的岗位" in out["notes"]


def test_no_post_left_in_the_village_is_said_naming_the_village():
    full = welfare_post(job_id="P1", slots=2, filled=2)
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", sex="F", age=45)], [full])
    out = e.worker_matches("W1")
    assert out["fallback"] == []
    (note,) = [n for n in out["notes"] if "公益性岗位" in n]
    assert f.VILLAGE in note and "没有空缺" in note
    from matcher.ranking import place_name
    assert place_name(f.VILLAGE) in note and place_name(f.VILLAGE) != f.VILLAGE


def test_training_suggestion_names_the_skill_that_unlocks_most_jobs():
    # Jobs needing 焊接 are out of reach of a viable score without it; 叉车 unlocks one job only.
    jobs = [f.job(job_id=f"W{i}", kind="enterprise", skills="焊接", lat=north(1 + i)) for i in range(3)]
    jobs.append(f.job(job_id="F1", kind="enterprise", skills="叉车", lat=north(1)))
    model = MatchModel(hire=_CoverageScorer())
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="X1")], jobs, model)
    out = e.worker_matches("X1")
    assert out["training"] == [{"skill": "焊接", "unlocks": 3}, {"skill": "叉车", "unlocks": 1}]


class _CoverageScorer:
    def predict_proba(self, X):
        from matcher.features import FEATURE_INDEX
        p = 0.05 + 0.6 * X[:, FEATURE_INDEX["skill_coverage"]]
        return np.column_stack([1 - p, p])


def test_household_plan_sends_members_to_distinct_jobs_when_slots_are_short():
    # One slot left in the best job: the plan must not send both members there.
    model = MatchModel(hire=FixedScores({3000.0: 0.6, 2000.0: 0.5}))
    e = engine([f.household(household_id="H1")],
               [f.worker("H1", worker_id="A"), f.worker("H1", worker_id="B")],
               [f.job(job_id="BEST", monthly_wage=3000, slots=1), f.job(job_id="NEXT", monthly_wage=2000)], model)
    plan = e.household_matches("H1")["plan"]
    assert sorted((p["worker_id"], p["job_id"]) for p in plan) in (
        [("A", "BEST"), ("B", "NEXT")], [("A", "NEXT"), ("B", "BEST")])


def test_household_plan_puts_the_graduate_first():
    model = MatchModel(hire=FixedScores({3000.0: 0.6, 2000.0: 0.3}))
    e = engine([f.household(household_id="H1")],
               [f.worker("H1", worker_id="A", age=40), f.worker("H1", worker_id="G", age=23, graduate=True,
                                                               education="college")],
               [f.job(job_id="BEST", monthly_wage=3000, slots=1)], model)
    plan = e.household_matches("H1")["plan"]
    # Only one slot: the graduate of an extremely poor family gets it, and comes first.
    assert [(p["worker_id"], p["job_id"]) for p in plan] == [("G", "BEST")]
    assert plan[0]["reasons"][0].startswith("特困家庭高校毕业生")


def test_member_who_wants_a_business_gets_the_entrepreneurship_route():
    e = engine([f.household(household_id="H1")],
               [f.worker("H1", worker_id="A"), f.worker("H1", worker_id="B", wants="business")], [f.job(job_id="J1")])
    out = e.household_matches("H1")
    routes = {p["worker_id"]: p for p in out["plan"]}
    assert routes["A"]["route"] == "job" and routes["A"]["job_id"] == "J1"
    assert routes["B"]["route"] == "business" and routes["B"]["job_id"] is None
    assert routes["B"]["subsidy_yuan"] == POLICY.business.startup_subsidy_yuan == 2000
    members = {m["worker_id"]: m for m in out["members"]}
    assert members["B"]["matches"] == []


def test_recommend_puts_market_above_welfare_and_follows_spec_columns():
    model = MatchModel(hire=FixedScores({2500.0: 0.05, 600.0: 0.9}))
    e = engine([f.household(household_id="H1")],
               [f.worker("H1", worker_id="OLD", sex="F", age=50), f.worker("H1", worker_id="YOUNG", age=25)],
               [f.job(job_id="J1"), welfare_post(job_id="P1")], model)
    recs = e.recommend(k=10)
    assert list(recs.columns) == ["worker_id", "rank", "job_id", "score", "tier", "distance_km", "subsidy_yuan",
                                  "reasons"]
    old = recs[recs.worker_id == "OLD"].sort_values("rank")
    assert old[["rank", "job_id", "tier"]].values.tolist() == [[1, "J1", "market"], [2, "P1", "public_welfare"]]
    young = recs[recs.worker_id == "YOUNG"]
    assert young["job_id"].tolist() == ["J1"]


# -- when the market has failed (SPEC section 7: policy fallback.failed_referrals) ----------------------

TODAY = "2026-11-15"


def _failed_world(referrals):
    """A man of 55 (4050) with a viable market job (J1) and a welfare post (P1) in his village; other market
    jobs his past referrals went to (J-OLD, closed), and a welfare post he was once referred to (P-OLD)."""
    jobs = [f.job(job_id="J1"), welfare_post(job_id="P1"), f.job(job_id="J-OLD", status="closed"),
            welfare_post(job_id="P-OLD", status="closed")]
    workers = [f.worker("H1", worker_id="W1", sex="M", age=55), f.worker("H1", worker_id="W2", sex="M", age=30)]
    return f.world([f.household(household_id="H1")], workers, jobs, referrals)


def _failed_engine(referrals):
    model = MatchModel(hire=FixedScores({2500.0: 0.40, 600.0: 0.9}))
    import datetime as dt
    return Engine.build(_failed_world(referrals), model, POLICY, today=dt.date.fromisoformat(TODAY))


def test_failed_market_referrals_counts_market_referrals_without_a_hire_in_the_last_12_months():
    import datetime as dt

    from matcher.eligibility import failed_market_referrals
    refs = [f.referral("W1", "J-OLD", outcome="declined", referred_on="2026-11-15"),     # today: counted
            f.referral("W1", "J-OLD", outcome="no_show", referred_on="2025-11-16"),      # 12 months: counted
            f.referral("W1", "J-OLD", outcome="rejected", referred_on="2025-11-15"),     # 12 months ago: not
            f.referral("W1", "J-OLD", outcome="hired", referred_on="2026-05-01"),        # a hire: not
            f.referral("W1", "P-OLD", outcome="declined", referred_on="2026-05-01"),     # welfare post: not
            f.referral("W1", "J-OLD", outcome="declined", referred_on="2026-11-16"),     # after today: not
            f.referral("W2", "J-OLD", outcome="rejected", referred_on="2026-03-01")]
    world = _failed_world(refs)
    got = failed_market_referrals(world.workers["worker_id"], world.referrals, world.jobs, dt.date(2026, 11, 15))
    assert got.tolist() == [2, 1]


def test_two_failed_market_referrals_bring_the_welfare_posts_beside_a_viable_market_job():
    e = _failed_engine([f.referral("W1", "J-OLD", outcome="declined", referred_on="2026-06-01"),
                        f.referral("W1", "J-OLD", outcome="rejected", referred_on="2026-09-01")])
    out = e.worker_matches("W1")
    assert [m["job_id"] for m in out["matches"]] == ["J1"]
    assert [p["job_id"] for p in out["fallback"]] == ["P1"]
    assert out["fallback_reason"] == "failed_referrals"
    assert out["fallback"][0]["reasons"][0] == "近12个月2次推荐市场岗位未成功，可安排公益性岗位"
    recs = e.recommend(k=5)
    w1 = recs[recs["worker_id"] == "W1"]
    assert w1["job_id"].tolist() == ["J1", "P1"] and w1["tier"].tolist() == ["market", "public_welfare"]
    assert w1["reasons"].iloc[1].startswith("近12个月2次推荐市场岗位未成功")


def test_one_failed_referral_or_old_ones_are_not_enough():
    for refs in ([f.referral("W1", "J-OLD", outcome="declined", referred_on="2026-06-01")],
                 [f.referral("W1", "J-OLD", outcome="declined", referred_on="2025-06-01"),
                  f.referral("W1", "J-OLD", outcome="no_show", referred_on="2025-09-01")]):
        e = _failed_engine(refs)
        out = e.worker_matches("W1")
        assert out["fallback"] == [] and out["fallback_reason"] is None
        assert "P1" not in e.recommend(k=5)["job_id"].tolist()


def test_failed_referrals_never_bring_welfare_posts_to_a_worker_not_fallback_eligible():
    e = _failed_engine([f.referral("W2", "J-OLD", outcome="declined", referred_on="2026-06-01"),
                        f.referral("W2", "J-OLD", outcome="declined", referred_on="2026-07-01")])
    assert e.W.failed_market.tolist() == [0, 2]
    out = e.worker_matches("W2")
    assert out["fallback"] == [] and out["fallback_reason"] is None


def test_the_threshold_is_the_policy_s():
    refs = [f.referral("W1", "J-OLD", outcome="declined", referred_on="2026-06-01"),
            f.referral("W1", "J-OLD", outcome="declined", referred_on="2026-07-01")]
    e = _failed_engine(refs)
    e.policy = POLICY.model_copy(update={"fallback": POLICY.fallback.model_copy(update={"failed_referrals": 3})})
    assert e.worker_matches("W1")["fallback_reason"] is None
    assert POLICY.fallback.failed_referrals == 2


def test_fallback_reason_says_why_the_posts_are_offered():
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", sex="F", age=52)],
               [welfare_post(job_id="P1")])
    assert e.worker_matches("W1")["fallback_reason"] == "no_market"
    model = MatchModel(hire=FixedScores({2500.0: 0.05, 600.0: 0.9}))
    e = engine([f.household(household_id="H1")], [f.worker("H1", worker_id="W1", sex="M", age=55)],
               [f.job(job_id="J1"), welfare_post(job_id="P1")], model)
    assert e.worker_matches("W1")["fallback_reason"] == "below_threshold"


def test_recommend_over_a_generated_world_counts_failed_referrals_back_from_the_worlds_own_today(tmp_path):
    from matcher.cli import _world_today
    from matcher.generate import GENERATOR_FILE, TODAY
    f.write_world_rows(tmp_path / "plain", [f.household(household_id="H1")], [f.worker("H1")], [f.job()])
    assert _world_today(tmp_path / "plain") is None and _world_today(None) is None
    (tmp_path / "plain" / GENERATOR_FILE).write_text("{}")
    assert _world_today(tmp_path / "plain") == TODAY
