"""Many people, few slots (SPEC section 8): the plan's price of a slot in the match items, jobs that arrive
over time, and where a new workshop would cover the most households."""

from __future__ import annotations

import numpy as np
import pytest

import factories as f
from conftest import make_api
from matcher import allocation as A
from matcher.model import prior_model
from matcher.policy import load_policy
from matcher.ranking import Contention, Engine

POLICY = load_policy()


def contested_world(n=4, hot_slots=1):
    """``n`` one-person households near one sewing workshop with a single slot, and a packing job with room
    for everyone: the plan gives the workshop to one of them and would move another there given a slot."""
    hh = [f.household(household_id=f"H-{i}") for i in range(n)]
    ws = [f.worker(f"H-{i}", worker_id=f"W-{i}", skills="缝纫", age=30 + i) for i in range(n)]
    js = [f.job(job_id="J-HOT", skills="缝纫", slots=hot_slots, title="缝纫工"),
          f.job(job_id="J-SPARE", kind="enterprise", employer="日照食品厂", title="包装工", slots=10,
                monthly_wage=3000)]
    return f.world(hh, ws, js)


def engine_of(world):
    return Engine.build(world, prior_model(), POLICY)


# -- the price of a slot ----------------------------------------------------------------------------------

def test_a_full_job_others_want_is_priced_at_what_one_more_slot_adds_and_a_job_with_room_at_zero():
    e = engine_of(contested_world())
    plan = A.allocate(e, prices=True)
    prices = plan.prices.set_index("job_id")
    assert prices.loc["J-HOT", "plan_assigned"] == 1 and prices.loc["J-SPARE", "plan_assigned"] == 3
    assert prices.loc["J-SPARE", "contention"] == 0
    # one more sewing slot moves a packer to sewing: the gain is the difference of their two scores
    rows = plan.rows.set_index("worker_id")
    packer = rows.index[rows["job_id"] == "J-SPARE"][0]
    sc = e.score(np.array([e._row[packer]]))
    by_job = dict(zip(e.J.ids[sc.pairs.j], sc.score))
    assert prices.loc["J-HOT", "contention"] == pytest.approx(by_job["J-HOT"] - by_job["J-SPARE"], abs=2e-4)
    assert prices.loc["J-HOT", "households_price"] == 0


def test_a_slot_that_would_cover_another_household_prices_that_members_score():
    hh = [f.household(household_id="H-1"), f.household(household_id="H-2")]
    ws = [f.worker("H-1", worker_id="W-1"), f.worker("H-2", worker_id="W-2")]
    e = engine_of(f.world(hh, ws, [f.job(job_id="J-ONE", slots=1)]))
    plan = A.allocate(e, prices=True)
    p = plan.prices.set_index("job_id").loc["J-ONE"]
    left_out = ({"W-1", "W-2"} - set(plan.rows["worker_id"])).pop()
    sc = e.score(np.array([e._row[left_out]]))
    assert p["households_price"] == 1 and p["plan_assigned"] == 1
    assert p["contention"] == pytest.approx(float(sc.score[0]), abs=1e-4)


def test_one_more_slot_gains_what_the_price_says_when_the_plan_is_solved_again():
    plan = A.allocate(engine_of(contested_world(5)), prices=True)
    again = A.allocate(engine_of(contested_world(5, hot_slots=2)))
    gain = again.objective["value"] - plan.objective["value"]
    price = plan.prices.set_index("job_id").loc["J-HOT", "contention"]
    assert gain / A.DEFAULT_SCALE == pytest.approx(price, abs=1e-4) and price > 0


def test_every_price_is_what_one_more_slot_gains_when_the_plan_is_solved_again(tiny_world_dir):
    from matcher.schema import load_world
    world = load_world(tiny_world_dir)
    jobs = world.jobs.copy()
    jobs["slots"] = np.minimum(jobs["slots"], jobs["filled"] + 2)        # scarce slots: many full jobs
    from matcher.schema import World
    e = engine_of(World(world.households, world.workers, jobs, world.referrals))
    arcs = A.score_candidates(e).arcs
    hh = A.households(e)

    def levels(chosen):
        code = hh.code[arcs.w[chosen]]
        return (int(e.W.graduate[arcs.w[chosen]].sum()), int(np.unique(code[hh.coverable[code]]).size),
                int(arcs.value[chosen].sum()))

    chosen, prices = A.plan_arcs(e, arcs, prices=True)
    g0, h0, v0 = levels(chosen)
    prices = prices.assign(row=np.arange(len(prices)))
    used = np.bincount(arcs.j[chosen], minlength=len(e.J.free))
    full = prices[(used >= e.J.free) & (used > 0)]
    assert (prices.loc[used < e.J.free, "contention"] == 0).all()
    checked = 0
    for r in pd_rows(full.sort_values("contention", ascending=False).head(6)):
        free = e.J.free.copy()
        free[r["row"]] += 1
        g1, h1, v1 = levels(A.plan_arcs(e, arcs, free=free)[0])
        assert 2 * (g1 - g0) + (h1 - h0) == r["households_price"]
        if (g1, h1) == (g0, h0):
            assert (v1 - v0) / A.DEFAULT_SCALE == pytest.approx(r["contention"], abs=1e-4)
        else:
            assert r["contention"] == pytest.approx(max(v1 - v0, 0) / A.DEFAULT_SCALE, abs=1e-4)
        checked += 1
    assert checked == 6 and full["contention"].max() > 0


def pd_rows(frame):
    return [dict(zip(frame.columns, row)) for row in frame.itertuples(index=False)]


# -- ranking by the price -----------------------------------------------------------------------------------

def test_order_plan_ranks_by_score_minus_contention():
    e = engine_of(contested_world())
    plain = e.worker_matches("W-0", 10)["matches"]
    assert [m["job_id"] for m in plain] == ["J-HOT", "J-SPARE"] and "contention" not in plain[0]
    price = np.where(e.J.ids == "J-HOT", plain[0]["score"] - plain[1]["score"] + 0.05, 0.0)
    c = Contention(price, np.array([1, 3]))
    by_plan = e.worker_matches("W-0", 10, c, "plan")["matches"]
    assert [m["job_id"] for m in by_plan] == ["J-SPARE", "J-HOT"]
    assert by_plan[1]["contention"] == pytest.approx(price[e.J.ids == "J-HOT"][0])
    assert by_plan[1]["plan_assigned"] == 1
    keys = [m["score"] - m["contention"] for m in by_plan]
    assert keys == sorted(keys, reverse=True)
    # the default order keeps the score's, and still says the price
    by_score = e.worker_matches("W-0", 10, c)["matches"]
    assert [m["job_id"] for m in by_score] == ["J-HOT", "J-SPARE"] and by_score[0]["contention"] > 0


@pytest.fixture
def contested_api(tmp_path, prior_model_dir):
    a = make_api(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, prior_model_dir, world=contested_world())
    yield a
    a.app.extensions["matcher"].dispose()


def test_match_items_carry_contention_only_once_a_plan_is_stored(contested_api):
    api = contested_api
    before = api.get("/api/v1/households/H-0/matches", as_="volunteer").get_json()
    items = [it for m in before["members"] for it in m["matches"]] + before["plan"]
    assert items and all("contention" not in it and "plan_assigned" not in it for it in items)
    worker = api.get("/api/v1/workers/W-1/matches?order=plan", as_="volunteer").get_json()
    assert worker["matches"] and all("contention" not in it for it in worker["matches"])

    assert api.post("/api/v1/allocations", as_="evaluator", json={}).status_code == 201
    after = api.get("/api/v1/households/H-0/matches", as_="volunteer").get_json()
    items = {it["job_id"]: it for m in after["members"] for it in m["matches"]}
    assert items["J-HOT"]["contention"] > 0 and items["J-HOT"]["plan_assigned"] == 1
    assert items["J-SPARE"]["contention"] == 0 and items["J-SPARE"]["plan_assigned"] == 3
    assert all("contention" in it for it in after["plan"])
    stored = api.get("/api/v1/allocations/1", as_="admin").get_json()
    assert "job_prices" not in stored["summary"]       # the prices feed the matches, not the plan's answer


def test_order_plan_over_the_api_is_ordered_by_score_minus_contention(contested_api):
    api = contested_api
    assert api.post("/api/v1/allocations", as_="admin", json={}).status_code == 201
    for wid in ("W-0", "W-1", "W-2", "W-3"):
        got = api.get(f"/api/v1/workers/{wid}/matches?order=plan", as_="volunteer").get_json()["matches"]
        keys = [it["score"] - it["contention"] for it in got]
        assert len(keys) == 2 and keys == sorted(keys, reverse=True)
        plain = api.get(f"/api/v1/workers/{wid}/matches", as_="volunteer").get_json()["matches"]
        assert [it["score"] for it in plain] == sorted((it["score"] for it in plain), reverse=True)
    bad = api.get("/api/v1/workers/W-0/matches?order=price", as_="volunteer")
    assert bad.status_code == 422 and bad.get_json()["error"]["field"] == "order"


# -- where to open the next workshop --------------------------------------------------------------------------

from matcher import sites as S  # noqa: E402

VILLAGES = {"371102107201": 0.0, "371102107202": 0.18, "371102107203": -0.18, "371102107204": 0.36}


def scattered_world(counts=(3, 4, 2, 1), jobs_at_first=1):
    """Villages about 20 km apart (beyond a commute), households in each, one workshop slot in the first."""
    return f.world(*scattered_rows(counts, jobs_at_first))


def scattered_rows(counts=(3, 4, 2, 1), jobs_at_first=1):
    hh, ws = [], []
    for (code, dlat), n in zip(VILLAGES.items(), counts):
        for i in range(n):
            hid = f"H-{code[-3:]}-{i}"
            hh.append(f.household(household_id=hid, village_code=code, lat=f.HOME[0] + dlat + 0.001 * i))
            ws.append(f.worker(hid, worker_id=f"W-{code[-3:]}-{i}", age=28 + i))
    js = [f.job(job_id="J-V1", slots=jobs_at_first, village_code="371102107201")]
    return hh, ws, js


def with_sites(world, rows, kind="workshop_factory", slots=3):
    """The world with the suggested sites opened as real jobs."""
    places = S.villages(world).set_index("village_code").loc[list(rows["village_code"])].reset_index()
    extra = S.site_jobs(world, places, kind, slots)
    import pandas as pd
    from matcher.schema import World
    return World(world.households, world.workers, pd.concat([world.jobs, extra], ignore_index=True), world.referrals)


def covered(world):
    return A.allocate(engine_of(world), reasons=False).summary["households"]["covered"]


@pytest.mark.parametrize("exact", [True, False])
def test_each_sites_claimed_gain_is_what_the_plan_gains_when_that_workshop_is_added(exact):
    world = scattered_world()
    rows, summary = S.suggest(engine_of(world), world, "workshop_factory", 3, 3, exact=exact)
    assert summary["method"].startswith("exact" if exact else "lazy")
    assert list(rows["rank"]) == list(range(1, len(rows) + 1)) and len(rows) == 3
    base = covered(world)
    assert summary["households_covered_before"] == base
    for r in range(1, len(rows) + 1):
        gained = covered(with_sites(world, rows.iloc[:r])) - covered(with_sites(world, rows.iloc[:r - 1]))
        assert rows.iloc[r - 1]["households_covered"] == gained
    assert rows.iloc[0]["village_code"] == "371102107202" and rows.iloc[0]["households_covered"] == 3
    assert summary["households_covered_after"] == base + rows["households_covered"].sum() == 8
    assert (rows["workers_placed"] >= rows["households_covered"]).all()


def test_the_first_site_gains_at_least_the_best_single_village_by_brute_force(tiny_world_dir):
    from matcher.schema import load_world
    world = load_world(tiny_world_dir)
    # fewer slots than the generated world has, so that the plan leaves households uncovered
    jobs = world.jobs.copy()
    jobs["slots"] = np.minimum(jobs["slots"], jobs["filled"] + 1)
    from matcher.schema import World
    world = World(world.households, world.workers, jobs, world.referrals)
    e = engine_of(world)
    rows, summary = S.suggest(e, world, "workshop_factory", 5, 2, exact=False)
    base = summary["households_covered_before"]
    best = 0
    for code in S.villages(world)["village_code"]:
        one = with_sites(world, pd_frame(code), "workshop_factory", 5)
        best = max(best, covered(one) - base)
    assert best > 0
    assert rows.iloc[0]["households_covered"] >= best


def pd_frame(code):
    import pandas as pd
    return pd.DataFrame({"village_code": [code]})


def test_a_request_for_sites_out_of_range_names_the_field():
    for kwargs, field in (({"kind": "out_of_county"}, "kind"), ({"slots": 0}, "slots"), ({"n": "2"}, "n")):
        args = dict(kind="workshop_factory", slots=3, n=2) | kwargs
        with pytest.raises(S.SitesError) as err:
            S.check_request(args["kind"], args["slots"], args["n"])
        assert err.value.field == field


@pytest.fixture
def scattered_api(tmp_path, prior_model_dir):
    a = make_api(f"sqlite:///{tmp_path / 's.db'}", tmp_path, prior_model_dir, world=scattered_world())
    yield a
    a.app.extensions["matcher"].dispose()


def test_sites_are_only_for_evaluators_and_admins(scattered_api):
    api = scattered_api
    body = {"kind": "workshop_factory", "slots": 3, "n": 2}
    for role in ("volunteer", "recruiter"):
        resp = api.post("/api/v1/sites", as_=role, json=body)
        assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "forbidden"
    assert api.post("/api/v1/sites", as_=None, json=body).status_code == 401
    for role in ("evaluator", "admin"):
        resp = api.post("/api/v1/sites", as_=role, json=body)
        assert resp.status_code == 200, resp.get_json()
        got = resp.get_json()
        assert [s["village_code"] for s in got["sites"]][:1] == ["371102107202"]
        assert [s["households_covered"] for s in got["sites"]] == [3, 2]
        assert got["households_covered_after"] == got["households_covered_before"] + 5


@pytest.mark.parametrize("body, field", [({"kind": "out_of_county", "slots": 3, "n": 2}, "kind"),
                                         ({"kind": "workshop_home", "slots": 0, "n": 2}, "slots"),
                                         ({"kind": "workshop_home", "slots": 3, "n": "2"}, "n")])
def test_a_bad_sites_request_is_a_422_naming_the_field(scattered_api, body, field):
    resp = scattered_api.post("/api/v1/sites", as_="admin", json=body)
    assert resp.status_code == 422 and resp.get_json()["error"]["field"] == field


# -- jobs arriving over time ------------------------------------------------------------------------------------

from matcher import simulate as SIM  # noqa: E402

FAR = "371102107203"


def factory_world():
    """One sewing workshop with 3 slots wanted by three two-member households and three one-member ones, all
    visited every day; a second workshop posted on the window's last day for a household 20 km away."""
    hh, ws = [], []
    for i in range(3):
        hh.append(f.household(household_id=f"H-A{i}"))
        ws += [f.worker(f"H-A{i}", worker_id=f"W-A{i}-1", age=30), f.worker(f"H-A{i}", worker_id=f"W-A{i}-2", age=31)]
    for i in range(3):
        hh.append(f.household(household_id=f"H-B{i}"))
        ws.append(f.worker(f"H-B{i}", worker_id=f"W-B{i}", age=40))
    hh.append(f.household(household_id="H-FAR", village_code=FAR, lat=f.HOME[0] - 0.18))
    ws.append(f.worker("H-FAR", worker_id="W-FAR", age=33))
    js = [f.job(job_id="J-HOT", slots=3, posted_on="2026-01-05"),
          f.job(job_id="J-LATE", slots=1, posted_on="2026-03-01", village_code=FAR, lat=f.HOME[0] - 0.18)]
    return f.world(hh, ws, js)


def test_policies_against_the_hindsight_optimum_on_a_contended_factory():
    world = factory_world()
    e = engine_of(world)
    r = SIM.prepare(e, world, 30, cycle=1)
    assert r.start == "2026-01-31" and r.truth_source == "model"
    best = SIM.hindsight(r)
    assert best["households_covered"] == 4          # three by the workshop, one by the late job
    runs = {p: SIM.run(r, p) for p in SIM.POLICIES}
    for p, out in runs.items():
        assert best["households_covered"] >= out["households_covered"], p
        assert best["graduates_placed"] >= out["graduates_placed"], p
        assert out["daily_households_covered"][28] + 1 == out["daily_households_covered"][29], p  # the late job
    # greedy sends both members of the first household to the workshop; the plan and the prices do not
    assert runs["greedy"]["households_covered"] == 3
    assert runs["plan"]["households_covered"] == runs["dual"]["households_covered"] == 4
    assert runs["plan"]["solves"] == 2               # day 0, and the day the late job arrives


def test_simulate_reports_against_the_hindsight_optimum_on_a_generated_world(tiny_world_dir):
    from matcher.schema import load_world
    world = load_world(tiny_world_dir)
    e = engine_of(world)
    outs = {p: SIM.simulate(e, world, 90, p, truth=SIM.truth_of(tiny_world_dir), seed=1) for p in SIM.POLICIES}
    best = outs["plan"]["hindsight_optimum"]
    for p, out in outs.items():
        assert out["hindsight_optimum"] == best                       # the same arrivals for every policy
        assert out["result"]["households_covered"] <= best["households_covered"]
        assert 0 < out["share_of_hindsight"]["households_covered"] <= 1
        assert len(out["daily_households_covered"]) == 90
        assert out["daily_households_covered"] == sorted(out["daily_households_covered"])
    assert outs["plan"]["result"]["households_covered"] >= outs["greedy"]["result"]["households_covered"]


def test_cli_simulate_prints_json_and_writes_the_coverage_figure(tiny_world_dir, tmp_path, capsys):
    import json

    from matcher.cli import main
    assert main(["simulate", str(tiny_world_dir), "--days", "30", "--policy", "dual",
                 "--report", str(tmp_path / "rep")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["policy"] == "dual" and out["days"] == 30
    assert out["result"]["households_covered"] <= out["hindsight_optimum"]["households_covered"]
    assert (tmp_path / "rep" / "simulate.png").stat().st_size > 1000
    assert main(["simulate", str(tiny_world_dir), "--days", "30", "--policy", "random"]) != 0
    assert "policy" in capsys.readouterr().err


def test_cli_sites_writes_the_sites_csv(tmp_path, capsys):
    import pandas as pd

    from matcher.cli import main
    d = tmp_path / "w"
    f.write_world_rows(d, *scattered_rows())
    assert main(["sites", str(d), "--kind", "workshop_home", "--slots", "3", "--n", "2", "--out",
                 str(tmp_path / "sites.csv"), "--report", str(tmp_path / "rep")]) == 0
    got = pd.read_csv(tmp_path / "sites.csv", dtype={"village_code": str, "town_code": str, "county_code": str})
    assert list(got.columns) == S.SITE_COLUMNS and len(got) == 2
    assert (tmp_path / "rep" / "sites.png").exists()
