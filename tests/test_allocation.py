"""The city-wide plan: feasibility, the lexicographic objective checked by brute force, market first, the
greedy baseline it beats, pruning and its certificate, the summary, the command line."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import factories as f
from matcher import allocation as A
from matcher.cli import main
from matcher.eligibility import KIND, candidate_pairs
from matcher.model import prior_model, save
from matcher.policy import load_policy
from matcher.ranking import Engine

POLICY = load_policy()
KM = 111.19
OTHER_VILLAGE = "371102107202"     # another village of the same town


def north(km):
    return f.HOME[0] + km / KM


def engine(households, workers, jobs):
    return Engine.build(f.world(households, workers, jobs), prior_model(), POLICY)


def welfare_post(**kw):
    row = dict(kind="public_welfare", title="村庄保洁员", employer="陈疃镇人民政府", max_age=65, monthly_wage=600,
               physical_demand="light", slots=1)
    row.update(kw)
    return f.job(**row)


def placed(plan):
    return dict(zip(plan.rows["worker_id"], plan.rows["job_id"]))


# -- brute force ------------------------------------------------------------------------------------------

def brute_force(e: Engine):
    """The best (graduates placed, households covered, value) over every feasible plan, by enumeration."""
    W, J = e.W, e.J
    sc = e.score()
    p = sc.pairs
    value = A.arc_values(p.w, J.kind[p.j] == KIND["public_welfare"], sc.score)
    options: dict[int, list[tuple[int, int]]] = {}
    for w, j, v in zip(p.w, p.j, value):
        options.setdefault(int(w), []).append((int(j), int(v)))
    workers = sorted(options)
    employed = W.frame.groupby("household_id")["employed"].any()
    available = pd.Series(W.available, index=W.frame.index).groupby(W.frame["household_id"]).any()
    coverable = set(available.index[available & ~employed.reindex(available.index)])
    left = J.free.copy()
    best = [(-1, -1, -1)]

    def walk(i, chosen):
        if i == len(workers):
            households = {W.household[w] for w in chosen} & coverable
            key = (sum(int(W.graduate[w]) for w in chosen), len(households), sum(chosen.values()))
            best[0] = max(best[0], key)
            return
        w = workers[i]
        walk(i + 1, chosen)
        for j, v in options[w]:
            if left[j] > 0:
                left[j] -= 1
                chosen[w] = v
                walk(i + 1, chosen)
                del chosen[w]
                left[j] += 1

    walk(0, {})
    return best[0]


def objective(plan):
    o = plan.objective
    return o["graduates_placed"], o["households_covered"], o["value"]


def assert_feasible(e: Engine, plan):
    """Each worker at most once, each job within its free slots, every pair eligible, welfare posts only to
    fallback-eligible workers with no market job left free for them."""
    W, J = e.W, e.J
    rows = plan.rows
    assert rows["worker_id"].is_unique
    w = np.array([np.flatnonzero(W.ids == x)[0] for x in rows["worker_id"]], dtype=np.int64)
    j = np.array([np.flatnonzero(J.ids == x)[0] for x in rows["job_id"]], dtype=np.int64)
    used = np.bincount(j, minlength=len(J))
    assert (used <= np.maximum(J.free, 0)).all()
    p = candidate_pairs(W, J, POLICY)
    eligible = set(zip(p.w.tolist(), p.j.tolist()))
    assert set(zip(w.tolist(), j.tolist())) <= eligible
    welfare = J.kind[j] == KIND["public_welfare"]
    assert (rows["tier"].to_numpy() == np.where(welfare, "public_welfare", "market")).all()
    for wi in w[welfare]:
        assert W.fallback[wi]
        market_left = [jj for (ww, jj) in eligible if ww == wi and J.kind[jj] != KIND["public_welfare"]
                       and used[jj] < J.free[jj]]
        assert not market_left, "a welfare post went to a worker with a market job still free"


# -- small hand-built cases -------------------------------------------------------------------------------

def test_greedy_leaves_a_household_uncovered_that_the_optimum_covers():
    # H1 comes first and its member takes the better-paid J1, the only job H2's older member may take.
    e = engine([f.household(household_id="H1"), f.household(household_id="H2")],
               [f.worker("H1", worker_id="W1", age=35), f.worker("H2", worker_id="W2", age=55, sex="M")],
               [f.job(job_id="J1", monthly_wage=3000, slots=1), f.job(job_id="J2", monthly_wage=2000, slots=1,
                                                                      max_age=50)])
    best, base = A.allocate(e), A.greedy(e)
    assert placed(base) == {"W1": "J1"}
    assert base.summary["households"]["covered"] == 1
    assert placed(best) == {"W1": "J2", "W2": "J1"}
    assert best.summary["households"] == {"coverable": 2, "covered": 2, "uncovered": 0, "covered_share": 1.0}
    assert objective(best) == brute_force(e)
    assert_feasible(e, best)
    assert_feasible(e, base)


def test_households_covered_come_before_expected_hires():
    # Both of H1's skilled members would be likelier hires than H2's, but H2 must get one of the two slots.
    e = engine([f.household(household_id="H1"), f.household(household_id="H2")],
               [f.worker("H1", worker_id="W1", skills="缝纫"), f.worker("H1", worker_id="W2", skills="缝纫"),
                f.worker("H2", worker_id="W3")],
               [f.job(job_id="J1", skills="缝纫", slots=2)])
    best, base = A.allocate(e), A.greedy(e)
    assert set(placed(base)) == {"W1", "W2"}
    assert set(placed(best)) in ({"W1", "W3"}, {"W2", "W3"})
    assert best.summary["households"]["covered"] == 2
    assert best.summary["expected_hires"] < base.summary["expected_hires"]
    assert objective(best) == brute_force(e)


def test_graduate_is_placed_before_another_household_is_covered():
    # J1 fits the graduate G and H2's X (who has its skill: the likelier hire); M (45) only fits J2.
    # Graduates first: G takes J1, H2 stays uncovered, though giving J1 to X would cover two households
    # and promise more hires.
    e = engine([f.household(household_id="H1"), f.household(household_id="H2")],
               [f.worker("H1", worker_id="G", age=23, graduate=True, education="college"),
                f.worker("H1", worker_id="M", age=45, sex="M"), f.worker("H2", worker_id="X", age=30, skills="缝纫")],
               [f.job(job_id="J1", max_age=35, slots=1, monthly_wage=2500, skills="缝纫"),
                f.job(job_id="J2", min_age=40, slots=1, kind="enterprise")])
    best = A.allocate(e)
    assert placed(best) == {"G": "J1", "M": "J2"}
    assert best.summary["graduates"] == {"available": 1, "placed": 1, "with_eligible_job": 1}
    assert best.summary["households"]["covered"] == 1
    assert best.uncovered.set_index("household_id").loc["H2", "reason"] == "competition"
    assert objective(best) == brute_force(e)
    first = best.rows.set_index("worker_id").loc["G", "reasons"]
    assert first[0].startswith("特困家庭高校毕业生")


def test_market_job_comes_before_a_better_scored_welfare_post():
    # The post pays more and is at the door, so it scores higher; the plan still gives the market job.
    e = engine([f.household(household_id="H1")],
               [f.worker("H1", worker_id="W1", age=52, sex="F")],
               [f.job(job_id="M", kind="enterprise", lat=north(12), monthly_wage=1500, slots=1),
                welfare_post(job_id="P", monthly_wage=3000)])
    sc = e.score()
    scores = dict(zip(e.J.ids[sc.pairs.j], sc.score))
    assert scores["P"] > scores["M"]
    best = A.allocate(e)
    assert placed(best) == {"W1": "M"}
    assert best.rows["tier"].tolist() == ["market"]
    assert objective(best) == brute_force(e)


def test_older_woman_gets_the_welfare_post_when_the_market_slot_covers_another_household():
    e = engine([f.household(household_id="H1"), f.household(household_id="H2")],
               [f.worker("H1", worker_id="A", age=52, sex="F"), f.worker("H2", worker_id="B", age=30, sex="M")],
               [f.job(job_id="M", kind="enterprise", slots=1), welfare_post(job_id="P")])
    best = A.allocate(e)
    assert placed(best) == {"A": "P", "B": "M"}
    row = best.rows.set_index("worker_id").loc["A"]
    assert row["tier"] == "public_welfare" and row["subsidy_yuan"] == POLICY.subsidy.public_welfare
    assert any("公益性岗位托底" in r for r in row["reasons"])
    records = json.loads(json.dumps(best.records(), ensure_ascii=False))
    assert {r["worker_id"]: r["tier"] for r in records} == {"A": "public_welfare", "B": "market"}
    assert records[0]["household_id"] == "H1" and isinstance(records[0]["reasons"], list)
    assert_feasible(e, best)
    assert best.summary["placed_by_kind"]["public_welfare"] == 1
    assert best.summary["subsidy_by_kind"]["public_welfare"] == POLICY.subsidy.public_welfare


def test_uncovered_households_say_why_and_where():
    far = north(40)
    e = engine([f.household(household_id="HY", lat=far), f.household(household_id="HO", village_code=OTHER_VILLAGE),
                f.household(household_id="HC"), f.household(household_id="HW")],
               [f.worker("HY", worker_id="Y", age=30), f.worker("HO", worker_id="O", age=55, sex="M",
                                                                  max_commute_km=1),
                f.worker("HC", worker_id="C1", age=30), f.worker("HW", worker_id="C2", age=30)],
               # O is 4050 but lives in another village and will not commute: only a post at home would do.
               [f.job(job_id="J1", slots=1, lat=north(3)), welfare_post(job_id="P")])
    best = A.allocate(e)
    why = best.uncovered.set_index("household_id")["reason"].to_dict()
    assert why == {"HY": "no_job_within_reach", "HO": "no_welfare_post", "HW": "competition"} or \
        why == {"HY": "no_job_within_reach", "HO": "no_welfare_post", "HC": "competition"}
    u = best.summary["uncovered"]
    assert u["by_reason"] == {"no_job_within_reach": 1, "no_welfare_post": 1, "competition": 1}
    post = [p for p in u["where"] if p["reason"] == "no_welfare_post"][0]
    assert post["level"] == "village" and post["place_code"] == OTHER_VILLAGE
    assert "公益性岗位" in post["action"]
    json.dumps(best.summary, ensure_ascii=False)


def test_employed_household_is_not_coverable_but_its_members_can_still_be_placed():
    e = engine([f.household(household_id="H1")],
               [f.worker("H1", worker_id="E", employed=True), f.worker("H1", worker_id="W")],
               [f.job(job_id="J1")])
    best = A.allocate(e)
    assert best.summary["households"]["coverable"] == 0
    assert placed(best) == {"W": "J1"}
    assert not best.rows["covers_household"].any()


def test_empty_world_gives_an_empty_plan():
    e = engine([f.household(household_id="H1")], [f.worker("H1", wants="none")], [f.job()])
    best = A.allocate(e)
    assert len(best.rows) == 0 and list(best.rows.columns) == A.ROW_COLUMNS
    assert best.summary["households"]["coverable"] == 0
    assert A.greedy(e).summary["people_placed"] == 0


# -- pruning and its certificate --------------------------------------------------------------------------

def test_a_graduate_held_out_of_the_flow_is_brought_back_by_the_certificate():
    """Three graduates, one two-slot job that is everyone's best, and a second job only one of them can
    also take, pruned out of the flow (top 1). The flow over the kept arcs places two; pricing the held-out
    pair must find that it places the third (a regression: the potentials once started from the wrong
    nodes and the plan was called certified with two)."""
    home = dict(kind="workshop_home", slots=2, monthly_wage=2000)
    e = engine([f.household(household_id="H0"), f.household(household_id="H1")],
               [f.worker("H0", worker_id="W00", graduate=True, home_only=True),
                f.worker("H0", worker_id="W01", graduate=True, home_only=True),
                f.worker("H1", worker_id="W10", graduate=True)],
               [f.job(job_id="J0", kind="workshop_factory", monthly_wage=600), f.job(job_id="J1", **home)])
    cands = A.score_candidates(e, top_n=1, job_quota=None)
    assert len(cands.arcs) == 3 and cands.pairs_total == 4               # W10 -> J0 was pruned
    plan = A.allocate(e, candidates=cands, value_rounds=0)
    assert plan.summary["graduates"]["placed"] == 3
    assert placed(plan) == {"W00": "J1", "W01": "J1", "W10": "J0"}
    assert plan.summary["optimality"]["certified"]
    assert plan.summary["optimality"]["arcs_added_by_certificate"] == 1


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(0, 20)), max_size=30),
    st.lists(st.integers(-10, 10), min_size=n, max_size=n))))
def test_potentials_are_the_shortest_distances_from_a_root_joined_to_every_node(graph):
    """The certificate's label-correcting shortest paths against Bellman-Ford, on graphs without a negative
    cycle (costs are non-negative plus a potential difference, so every cycle costs >= 0)."""
    n, arcs, p = graph
    tails = np.array([u for u, _, _ in arcs], np.int64)
    heads = np.array([v for _, v, _ in arcs], np.int64)
    cost = np.array([c + p[u] - p[v] for u, v, c in arcs], np.int64)
    d = [0] * n
    for _ in range(n):
        for u, v, c in zip(tails, heads, cost):
            d[v] = min(d[v], d[u] + int(c))
    assert A._shortest_from_everywhere(n, tails, heads, cost).tolist() == d


def test_pruned_arcs_that_could_cover_a_household_are_added_back_and_certified():
    e = engine([f.household(household_id="H1"), f.household(household_id="H2")],
               [f.worker("H1", worker_id="W1", age=35), f.worker("H2", worker_id="W2", age=55, sex="M")],
               [f.job(job_id="J1", monthly_wage=3000, slots=1), f.job(job_id="J2", monthly_wage=2000, slots=1,
                                                                      max_age=50)])
    cands = A.score_candidates(e, top_n=1, job_quota=None)
    assert len(cands.arcs) == 2 and cands.pairs_total == 3          # W1 -> J2 was pruned
    best = A.allocate(e, candidates=cands)
    assert placed(best) == {"W1": "J2", "W2": "J1"}
    opt = best.summary["optimality"]
    assert opt["certified"] and not opt["exact"] and opt["arcs_added_by_certificate"] == 1


def test_pairs_added_back_are_scored_as_the_engine_scores_them():
    e = engine([f.household(household_id="H1")],
               [f.worker("H1", worker_id="W1", skills="缝纫", will_migrate=True)],
               [f.job(job_id="J1", skills="缝纫;电子商务", lat=north(4)), f.job(job_id="J2", kind="workshop_home",
                                                                        lat=north(17)),
                f.job(job_id="J3", kind="out_of_county", lat="", lon="", county_code="", town_code="",
                      village_code="")])
    sc = e.score()
    score, d, covered = A.score_pairs(e, sc.pairs.w, sc.pairs.j)
    assert len(sc.pairs) == 3
    np.testing.assert_allclose(score, sc.score)
    np.testing.assert_allclose(d, sc.pairs.distance_km)          # NaN out of county, on both sides
    np.testing.assert_array_equal(covered, sc.covered)


def test_chunked_scoring_gives_the_same_plan():
    hh = [f.household(household_id=f"H{i}", lat=north(i)) for i in range(6)]
    ws = [f.worker(f"H{i}", worker_id=f"W{i}{k}", age=25 + 7 * k) for i in range(6) for k in range(2)]
    js = [f.job(job_id=f"J{i}", lat=north(2 * i), slots=1 + i % 2, monthly_wage=2000 + 200 * i) for i in range(4)]
    e = engine(hh, ws, js)
    whole = A.allocate(e)
    chunked = A.allocate(e, candidates=A.score_candidates(e, chunk_rows=1))
    assert objective(whole) == objective(chunked) == brute_force(e)


# -- random small worlds ------------------------------------------------------------------------------------

PLACES = [(f.HOME[0], f.VILLAGE)] * 3 + [(north(8), f.VILLAGE), (north(1), OTHER_VILLAGE), (north(30), OTHER_VILLAGE)]


@st.composite
def small_worlds(draw):
    """Up to six people in up to four households, competing for up to three jobs, mostly in one village."""
    households, workers = [], []
    budget = draw(st.integers(2, 6))
    for i in range(draw(st.integers(1, 4))):
        lat, village = draw(st.sampled_from(PLACES))
        households.append(f.household(household_id=f"H{i}", lat=lat, village_code=village))
        for k in range(draw(st.integers(1, 3))):
            if budget == 0:
                break
            budget -= 1
            disability = draw(st.sampled_from(["none"] * 4 + ["physical", "visual"]))
            workers.append(f.worker(
                f"H{i}", worker_id=f"W{i}{k}", age=draw(st.integers(18, 64)), sex=draw(st.sampled_from("FM")),
                disability=disability, disability_grade="" if disability == "none" else draw(st.integers(1, 4)),
                labour_capacity=draw(st.sampled_from(["full"] * 4 + ["partial", "none"])),
                wants=draw(st.sampled_from(["job"] * 6 + ["business", "none"])),
                employed=draw(st.integers(0, 7)) == 0, graduate=draw(st.integers(0, 4)) == 0,
                will_migrate=draw(st.booleans()), home_only=draw(st.integers(0, 7)) == 0,
                skills=draw(st.sampled_from(["", "缝纫", "农产品分拣"]))))
    jobs = []
    for n in range(draw(st.integers(1, 3))):
        lat, village = draw(st.sampled_from(PLACES))
        slots = draw(st.sampled_from([1, 1, 1, 2]))
        kind = draw(st.sampled_from(["workshop_factory", "workshop_home", "enterprise", "out_of_county",
                                     "public_welfare"]))
        jobs.append(f.job(job_id=f"J{n}", kind=kind, lat=lat + draw(st.sampled_from([0, 3, 9])) / KM,
                          village_code=village, slots=slots, filled=draw(st.sampled_from([0, 0, 0, 1])) % (slots + 1),
                          min_age=draw(st.sampled_from([18, 18, 30, 40])), max_age=draw(st.sampled_from([45, 60, 65])),
                          physical_demand=draw(st.sampled_from(["light", "medium", "heavy"])),
                          monthly_wage=draw(st.sampled_from([600, 2000, 3000, 4500])),
                          skills=draw(st.sampled_from(["", "缝纫", "农产品分拣;缝纫"]))))
    return households, workers, jobs


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_worlds())
def test_plan_is_feasible_and_lexicographically_optimal_on_random_small_worlds(world):
    e = engine(*world)
    best, base = A.allocate(e), A.greedy(e)
    assert_feasible(e, best)
    assert_feasible(e, base)
    assert objective(best) == brute_force(e)
    assert (objective(best)[:2]) >= (objective(base)[:2])
    pruned = A.allocate(e, candidates=A.score_candidates(e, top_n=1, job_quota=None), value_rounds=1000)
    assert objective(pruned) == objective(best)
    assert pruned.summary["optimality"]["certified"]
    pruned = A.allocate(e, candidates=A.score_candidates(e, top_n=1, job_quota=None), value_rounds=0)
    assert objective(pruned)[:2] == objective(best)[:2]
    assert pruned.summary["optimality"]["certified"]
    assert_feasible(e, pruned)
    gap = pruned.summary["optimality"]["expected_hires_gap_bound"] * A.DEFAULT_SCALE
    assert objective(best)[2] - objective(pruned)[2] <= gap + 1e-6
    # the baseline sees every eligible pair too: pruned, it goes on into the held-out pairs
    assert placed(A.greedy(e, candidates=A.score_candidates(e, top_n=1, job_quota=None))) == placed(base)


# -- the default world --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def default_world(tmp_path_factory):
    generate = pytest.importorskip("matcher.generate")
    from matcher.schema import load_world
    out = tmp_path_factory.mktemp("world")
    generate.generate_world(out, seed=0)
    return load_world(out)


@pytest.mark.slow
def test_default_world_plan_covers_more_households_than_greedy(default_world):
    e = Engine.build(default_world, prior_model(), POLICY)
    cands = A.score_candidates(e)
    best, base = A.allocate(e, candidates=cands, reasons=False), A.greedy(e, candidates=cands, reasons=False)
    assert best.summary["optimality"]["exact"]
    # Strictly more, not merely as many: greedy leaves hundreds of households to competition.
    assert best.summary["households"]["covered"] > base.summary["households"]["covered"]
    assert best.summary["graduates"]["placed"] == best.summary["graduates"]["with_eligible_job"]
    assert best.summary["graduates"]["placed"] >= base.summary["graduates"]["placed"]
    assert_feasible(e, best)


# -- the command line ---------------------------------------------------------------------------------------

def test_cli_allocate_writes_the_plan_and_prints_the_summary(tmp_path, capsys):
    world = tmp_path / "world"
    f.write_world_rows(world, [f.household(household_id="H1"), f.household(household_id="H2")],
                       [f.worker("H1", worker_id="W1", age=35), f.worker("H2", worker_id="W2", age=55, sex="M")],
                       [f.job(job_id="J1", monthly_wage=3000, slots=1),
                        f.job(job_id="J2", monthly_wage=2000, slots=1, max_age=50)])
    model = save(prior_model(), tmp_path / "models", metrics={}, data_sha256="0" * 64)
    out = tmp_path / "plan.csv"
    assert main(["allocate", str(world), "--model", str(model), "--out", str(out)]) == 0
    plan = pd.read_csv(out, dtype=str)
    assert list(plan.columns) == A.PLAN_COLUMNS
    assert dict(zip(plan["worker_id"], plan["job_id"])) == {"W1": "J2", "W2": "J1"}
    assert set(plan["tier"]) == {"market"}
    printed = capsys.readouterr().out
    assert "households covered: 2 of 2 coverable (100.0%)" in printed


def test_cli_allocate_fails_with_one_line_on_a_broken_world(tmp_path, capsys):
    world = tmp_path / "world"
    f.write_world_rows(world, [f.household(household_id="H1")], [f.worker("H9")], [f.job()])
    assert main(["allocate", str(world), "--out", str(tmp_path / "plan.csv")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("matcher: ") and "H9" in err[-1]
    assert not (tmp_path / "plan.csv").exists()
