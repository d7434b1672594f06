"""Where to open the next workshop (送企进村, SPEC section 8): the N villages where a new job of S slots would
let the city-wide plan cover the most households it now leaves uncovered.

A candidate site is a hypothetical job at a village (at the centroid of the village's households, since the
shipped divisions carry no coordinates for villages), of the kind asked, with no skill required, light
work, the ages and wage typical of that kind in the world. The hypothetical jobs join the world's jobs and
go through the same engine as every other job: the eligibility rules of :mod:`matcher.eligibility`
(distance, reach, a welfare post's own village or town, ...) and the model's score.

The gain of a set of sites is measured by the plan itself: the lexicographic flow of
:mod:`matcher.allocation` (graduates, then households, then expected hires) re-solved with those jobs
added, and counted in households covered. Choosing the N sites with the greatest gain is a maximum
coverage problem:

- **exact** when it is small (few candidate sites and arcs): one CP-SAT model of the whole plan with a
  choice of N sites (graduates placed, then households covered, over every eligible pair);
- otherwise **greedy**, each round adding the site of greatest measured gain, lazily: a site is
  re-solved only while its upper bound beats the best gain measured this round. The bound is the least of
  the site's gain when last measured (a bound when the gains are submodular, the assumption of every lazy
  greedy) and one that holds without assuming anything: in the plan's residual graph (:meth:`matcher.allocation._Network.slot_prices`,
  with every candidate site in the flow at capacity 0) one slot at the site gains ``k`` (0, 1 or 2:
  ``households_price``), and the plan's first two levels are a concave function of one job's capacity
  (an LP's value in its right-hand side), so S slots gain at most ``S * k`` households; a site with
  ``k = 0`` gains nothing and is never solved, nor scored (its pairs are found by the rules alone, which
  is all the price of a first slot needs; the others' pairs are then scored by the model like any pair),
  nor considered again once other sites are open (for a submodular gain it never could gain then). Households covered is the rank function of a gammoid
  when graduates do not compete (households matched through workers to slots), which is submodular:
  greedy is then within ``1 - 1/e`` of the best N sites; with graduates first it is the same procedure
  without that guarantee.

Each suggested site is then checked: the plan is re-solved with the sites ranked above it, and again with
it added; ``households_covered`` is that measured difference and ``workers_placed`` how many workers the
re-solved plan sends there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matcher.allocation import Arcs, arc_values, households, plan_arcs, score_candidates, score_pairs
from matcher.eligibility import KIND, JobArrays, candidate_pairs
from matcher.errors import MatcherError
from matcher.ranking import Engine
from matcher.schema import World

SITE_COLUMNS = ["rank", "village_code", "town_code", "county_code", "lat", "lon", "households_covered",
                "workers_placed"]
SITE_KINDS = ("workshop_factory", "workshop_home", "enterprise", "public_welfare")
SITE_PREFIX = "SITE-"
TITLES = {"workshop_factory": ("拟建厂房式扶贫车间", "车间工人"), "workshop_home": ("拟建居家式扶贫车间", "居家加工"),
          "enterprise": ("拟引进企业", "普工"), "public_welfare": ("拟开发公益性岗位", "保洁保绿员")}
EXACT_MAX_SITES = 40          # CP-SAT when the candidates that could gain anything are this few ...
EXACT_MAX_ARCS = 20_000       # ... and the plan has this few arcs
MAX_SLOTS, MAX_N = 10_000, 1_000


class SitesError(MatcherError, ValueError):
    """A request for sites that cannot be answered as asked (a kind, slots or n out of range)."""

    status = 422
    code = "invalid_value"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def check_request(kind: str, slots: int, n: int) -> None:
    if kind not in SITE_KINDS:
        raise SitesError(f"kind: {kind!r} is not one of {', '.join(SITE_KINDS)} (a site is at a village)", "kind")
    for name, value, top in (("slots", slots, MAX_SLOTS), ("n", n, MAX_N)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= top:
            raise SitesError(f"{name}: {value!r} is not an integer from 1 to {top:,}", name)


def villages(world: World) -> pd.DataFrame:
    """The villages where the world's households live, at their households' centroid."""
    h = world.households
    h = h[h["village_code"].astype(str) != ""]
    g = h.groupby("village_code", sort=True).agg(town_code=("town_code", "first"), county_code=("county_code", "first"),
                                                 lat=("lat", "mean"), lon=("lon", "mean"))
    return g.reset_index()


def site_jobs(world: World, places: pd.DataFrame, kind: str, slots: int) -> pd.DataFrame:
    """One hypothetical open job of ``kind`` and ``slots`` at each place, as jobs.csv rows."""
    same = world.jobs[world.jobs["kind"] == kind]
    ref = same if len(same) else world.jobs
    min_age = int(ref["min_age"].median()) if len(ref) else 18
    max_age = int(ref["max_age"].median()) if len(ref) else 60
    wage = float(ref["monthly_wage"].median()) if len(ref) else 2000.0
    employer, title = TITLES[kind]
    n = len(places)
    posted = world.jobs["posted_on"].max() if len(world.jobs) else pd.Timestamp("2026-11-01")
    return pd.DataFrame({
        "job_id": SITE_PREFIX + places["village_code"].astype(str).to_numpy(),
        "employer": employer, "title": title, "kind": kind,
        "lat": places["lat"].to_numpy(float), "lon": places["lon"].to_numpy(float),
        "county_code": places["county_code"].to_numpy(object), "town_code": places["town_code"].to_numpy(object),
        "village_code": places["village_code"].to_numpy(object),
        "skills": [()] * n if _tuple_skills(world.jobs) else "", "min_age": min_age, "max_age": max(max_age, min_age),
        "physical_demand": "light", "requires": [()] * n if _tuple_skills(world.jobs, "requires") else "",
        "slots": int(slots), "filled": 0, "monthly_wage": wage, "posted_on": posted, "status": "open",
    })


def _tuple_skills(jobs: pd.DataFrame, col: str = "skills") -> bool:
    """Whether the world's jobs frame holds its tag lists as sequences (as loaded) rather than text."""
    return len(jobs) > 0 and not isinstance(jobs[col].iloc[0], str)


@dataclass
class _Problem:
    """The world's jobs and every candidate site in one engine, every eligible pair scored once."""

    engine: Engine
    arcs: Arcs
    site_of_arc: np.ndarray    # per arc: the site's number, -1 for a world job
    site_rows: np.ndarray      # per site: its job row
    places: pd.DataFrame
    slots: int
    hh: object = None          # the engine's households (allocation.households)
    coverable: int = 0

    def __post_init__(self):
        self.hh = households(self.engine)
        self.coverable = int(self.hh.coverable.sum())

    def score_sites(self, sites: np.ndarray) -> None:
        """Score the pairs of ``sites`` with the model (as every pair is scored, :func:`score_pairs`) and
        value them as the flow does (:func:`arc_values`, over each worker's pairs with the sites'); the
        pairs of the other sites are dropped."""
        keep = np.flatnonzero((self.site_of_arc < 0) | np.isin(self.site_of_arc, sites))
        a = self.arcs.take(keep)
        new = np.flatnonzero(np.isnan(a.score))
        a.score[new], a.distance_km[new], a.covered[new] = score_pairs(self.engine, a.w[new], a.j[new])
        a.value = arc_values(a.w, self.engine.J.kind[a.j] == KIND["public_welfare"], a.score)
        self.arcs, self.site_of_arc = a, self.site_of_arc[keep]

    def free(self, open_sites) -> np.ndarray:
        f = self.engine.J.free.copy()
        f[self.site_rows] = 0
        f[self.site_rows[list(open_sites)]] = self.slots
        return f

    def solve(self, open_sites, prices: bool = False, coverage_only: bool = False):
        """The plan with ``open_sites`` open (the other candidates' arcs in the flow at capacity 0 when
        ``prices``, for their price of a first slot; else left out). ``coverage_only``: the flow without the
        expected hires (every pair's value 0, so graduates weigh 2 and households 1): the same graduates
        and households as the full plan (graduates weigh twice a household, and one more graduate never
        costs more than one household, module :mod:`matcher.allocation`), solved much faster (small costs)."""
        open_sites = sorted(open_sites)
        mask = np.isin(self.site_of_arc, open_sites) | (self.site_of_arc < 0) | prices
        idx = np.flatnonzero(mask)
        arcs = self.arcs.take(idx)
        if coverage_only:
            arcs.value = np.zeros(len(arcs), np.int64)
        chosen, p = plan_arcs(self.engine, arcs, free=self.free(open_sites), prices=prices)
        return arcs, chosen, p

    def covered(self, arcs: Arcs, chosen: np.ndarray) -> int:
        hh = self.hh
        code = hh.code[arcs.w[chosen]]
        return int(np.unique(code[hh.coverable[code]]).size)


def _problem(engine: Engine, world: World, kind: str, slots: int, progress: bool) -> _Problem:
    """Every candidate site's eligible pairs (the rules only: the model scores a site's pairs once the
    plan's price of a first slot there says it could gain something, see :meth:`_Problem.score_sites`)."""
    places = villages(world)
    extra = site_jobs(world, places, kind, slots)
    jobs = pd.concat([world.jobs, extra], ignore_index=True)
    J = JobArrays.build(jobs, engine.J.skill_index)
    if J.words != engine.J.words:
        raise SitesError("the hypothetical jobs need skills the world's jobs do not have")   # they need none
    e = Engine(engine.W, J, engine.model, engine.policy)
    base = score_candidates(Engine(engine.W, engine.J, engine.model, engine.policy),
                            max_arcs=np.iinfo(np.int64).max, progress=progress).arcs
    n_real = len(world.jobs)
    only_sites = JobArrays.build(extra, engine.J.skill_index)
    p = candidate_pairs(engine.W, only_sites, engine.policy, ordered=False)
    site_arcs = Arcs(p.w.astype(np.int64), p.j.astype(np.int64) + n_real, p.distance_km,
                     np.full(len(p), np.nan), np.full(len(p), -1, np.int64), np.ones(len(p), np.int64))
    arcs = Arcs.concat([base, site_arcs])
    site_of_arc = np.where(arcs.j >= n_real, arcs.j - n_real, -1)
    return _Problem(e, arcs, site_of_arc, n_real + np.arange(len(places)), places, int(slots))


def suggest(engine: Engine, world: World, kind: str, slots: int, n: int, *, exact: bool | None = None,
            progress: bool = False) -> tuple[pd.DataFrame, dict]:
    """The ``n`` sites (SITE_COLUMNS) and a summary: the method, households covered before and after.

    ``exact`` None: CP-SAT when small (module docstring), else lazy greedy; True or False forces one."""
    check_request(kind, slots, n)
    t0 = time.perf_counter()
    prob = _problem(engine, world, kind, slots, progress)
    first = _first_slot_gain(prob, [])
    useful = np.flatnonzero(first > 0)
    prob.score_sites(useful)
    arcs0, chosen0, _ = prob.solve([])
    before = prob.covered(arcs0, chosen0)
    small = len(useful) <= EXACT_MAX_SITES and len(prob.arcs) <= EXACT_MAX_ARCS
    use_exact = small if exact is None else exact
    if use_exact:
        picked, method = _exact(prob, useful, n), "exact (CP-SAT)"
    else:
        picked, method = _lazy_greedy(prob, n, first, before, progress), "lazy greedy (1 - 1/e when submodular)"
    rows, after = _checked(prob, picked, before)
    summary = {"method": method, "kind": kind, "slots": int(slots), "n": int(n), "candidates": int(len(prob.places)),
               "candidates_that_could_gain": int(len(useful)), "households_covered_before": before,
               "households_covered_after": after, "seconds": round(time.perf_counter() - t0, 3)}
    return rows, summary


def _first_slot_gain(prob: _Problem, open_sites) -> np.ndarray:
    """Per candidate site: what one slot there would add to the plan's first two levels (0, 1 or 2)."""
    _, _, p = prob.solve(open_sites, prices=True)
    return p["households_price"].to_numpy(np.int64)[prob.site_rows]


def _lazy_greedy(prob: _Problem, n: int, first: np.ndarray, before: int, progress: bool) -> list[int]:
    from tqdm import tqdm
    picked: list[int] = []
    covered = before
    k = first
    last = prob.slots * first             # each site's gain when last measured: a bound while submodular
    direct = _direct_reach(prob)
    bar = tqdm(total=n, desc="choosing sites", unit="site", disable=not progress, leave=False)
    for _ in range(n):
        bound = np.minimum(np.minimum(prob.slots * k, last), prob.coverable - covered)
        bound[picked] = -1
        order = [int(s) for s in np.lexsort((np.arange(len(bound)), -direct, -bound)) if bound[s] > 0]
        best, best_gain = None, 0
        for s in order:
            if bound[s] <= best_gain:
                break                    # no site further down can beat the best measured
            arcs, chosen, _ = prob.solve(picked + [s], coverage_only=True)
            gain = prob.covered(arcs, chosen) - covered
            last[s] = gain
            if gain > best_gain:
                best, best_gain = s, gain
        if best is None:
            break                        # no site adds a household any more
        picked.append(best)
        covered += best_gain
        bar.update(1)
        if len(picked) < n:
            k = _first_slot_gain(prob, picked)
    bar.close()
    return picked


def _direct_reach(prob: _Problem) -> np.ndarray:
    """Per site: the households not yet covered with a member eligible there (only orders the search)."""
    arcs, chosen, _ = prob.solve([])
    code = prob.hh.code
    covered = np.zeros(len(prob.hh.ids), bool)
    covered[code[arcs.w[chosen]]] = True
    on = (prob.site_of_arc >= 0) & prob.hh.coverable[code[prob.arcs.w]] & ~covered[code[prob.arcs.w]]
    pairs = pd.DataFrame({"s": prob.site_of_arc[on], "h": code[prob.arcs.w[on]]}).drop_duplicates()
    return np.bincount(pairs["s"], minlength=len(prob.site_rows))


def _exact(prob: _Problem, useful: np.ndarray, n: int) -> list[int]:
    """The best ``n`` sites (at most) among ``useful``: one CP-SAT model of the plan's first two levels."""
    from ortools.sat.python import cp_model

    keep = (prob.site_of_arc < 0) | np.isin(prob.site_of_arc, useful)
    a = prob.arcs.take(np.flatnonzero(keep))
    site = prob.site_of_arc[keep]
    e = prob.engine
    hh = households(e)
    m = cp_model.CpModel()
    x = [m.NewBoolVar("") for _ in range(len(a))]
    y = {int(s): m.NewBoolVar("") for s in useful}
    for idx in pd.Series(np.arange(len(a))).groupby(a.w).indices.values():
        m.AddAtMostOne(x[i] for i in idx)
    free = e.J.free
    for j, idx in pd.Series(np.arange(len(a))).groupby(a.j).indices.items():
        s = int(site[idx[0]])
        if s < 0:
            m.Add(sum(x[i] for i in idx) <= int(free[j]))
        else:
            m.Add(sum(x[i] for i in idx) <= prob.slots * y[s])
    m.Add(sum(y.values()) <= n)
    code = hh.code[a.w]
    cover = []
    for h, idx in pd.Series(np.arange(len(a))).groupby(code).indices.items():
        if hh.coverable[h]:
            c = m.NewBoolVar("")
            m.AddBoolOr([x[i] for i in idx]).OnlyEnforceIf(c)
            cover.append(c)
    grads = [x[i] for i in np.flatnonzero(e.W.graduate[a.w])]
    big = len(cover) + 1
    m.Maximize(big * sum(grads) + sum(cover))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = 60.0
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise SitesError("the exact site model found no solution")
    chosen = [s for s, v in y.items() if solver.Value(v)]
    return _rank(prob, chosen)


def _rank(prob: _Problem, chosen: list[int]) -> list[int]:
    """The chosen sites in order: each the one adding most to the plan with those before it."""
    order: list[int] = []
    rest = list(chosen)
    while rest:
        gains = []
        for s in rest:
            arcs, ch, _ = prob.solve(order + [s], coverage_only=True)
            gains.append(prob.covered(arcs, ch))
        best = int(np.argmax(gains))
        order.append(rest.pop(best))
    return order


def _checked(prob: _Problem, picked: list[int], before: int) -> tuple[pd.DataFrame, int]:
    """Each site's gain measured by re-solving the plan with it added to the sites ranked above it."""
    rows = []
    covered = before
    for rank, s in enumerate(picked, start=1):
        arcs, chosen, _ = prob.solve(picked[:rank])
        now = prob.covered(arcs, chosen)
        placed = int((arcs.j[chosen] == prob.site_rows[s]).sum())
        p = prob.places.iloc[s]
        rows.append({"rank": rank, "village_code": str(p["village_code"]), "town_code": str(p["town_code"]),
                     "county_code": str(p["county_code"]), "lat": round(float(p["lat"]), 6),
                     "lon": round(float(p["lon"]), 6), "households_covered": now - covered, "workers_placed": placed})
        covered = now
    return pd.DataFrame(rows, columns=SITE_COLUMNS), covered


__all__ = ["SITE_COLUMNS", "SITE_KINDS", "SitesError", "check_request", "site_jobs", "suggest", "villages"]
