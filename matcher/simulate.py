"""Jobs that arrive over time (SPEC section 8, `matcher simulate`): a world replayed day by day.

The window is the last ``days`` days up to the world's latest ``posted_on``: jobs posted before it are there
on day 0, the others arrive on their ``posted_on`` day, each with its free slots (``slots - filled``).
Volunteers visit each household every ``cycle`` days (the first visit on a day drawn at random in the
first cycle, so that about ``1/cycle`` of the households are visited each day), and on a visit place the
members not yet placed under one policy:

- ``greedy``: each member takes the best job open now (market before welfare, then score), as a volunteer
  reading the ranking alone would;
- ``plan``: the city-wide plan over the members not yet placed and the slots open now, re-solved on each day
  jobs arrive, and the visited members take the job the plan gives them (or wait). OR-Tools' min-cost flow
  (``SimpleMinCostFlow``) takes no starting flow, so a re-solve is not warm-started; what is reused is
  every pair's eligibility and score (computed once), and days without arrivals reuse the last plan, which
  stays optimal for the rest when visited members take their planned slots;
- ``dual``: contention-ordered (Moore's dual assignment): each visited member takes the open job of highest
  ``value - price``, the price being the dual of the job's capacity in the plan re-solved as for ``plan``
  (:meth:`matcher.allocation._Network.duals`: the potentials of its residual graph, in the flow's own
  lexicographic units, so that a slot another household needs is priced in households before it is priced
  in expected hires; ``value`` is the score in ``1/scale``, as the flow counts it), and only when that,
  with what placing the member adds to the plan's first levels (a household covered, a graduate placed),
  is not negative: else the slot is worth more to the plan than this placement, and the member waits (a
  planned placement prices at 0 or more, any competitor left out at 0 or less). By
  complementary slackness the member's planned job is among the best under these prices, so the prices
  alone steer members to where the plan would send them. They are read again each day with visits, since
  the members' own choices (ties among jobs of equal price) move them.

Every pair is one the eligibility rules allow (:func:`matcher.eligibility.candidate_pairs`, through
:func:`matcher.allocation.score_candidates`). Placements are final. Outcomes use the world's own chances
of a hire: the generator's hidden process (:func:`matcher.generate.load_truth`) where the folder was made by
``matcher generate``, else the model's scores. The report, for each policy and for the **hindsight
optimum** (the plan over the same arrivals as if every job had been there on day 0, the best any policy
could do), gives households covered (with a member placed), expected hires (the sum of the chances of the
placements) and households expected to have a hire (``1 - prod(1 - p)`` over their placed members).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from matcher.allocation import Arcs, households, plan_arcs, score_candidates
from matcher.errors import MatcherError
from matcher.ranking import Engine
from matcher.schema import World

POLICIES = ("greedy", "plan", "dual")
DEFAULT_CYCLE = 30


class SimulationError(MatcherError, ValueError):
    status = 422
    code = "invalid_value"


@dataclass
class Replay:
    """What every policy shares: the arcs (every eligible pair, scored once), their true chances, the day
    each job arrives and the day each household is visited."""

    engine: Engine
    arcs: Arcs
    truth: np.ndarray          # per arc: the chance of a hire used for outcomes
    arrive: np.ndarray         # per job row: the day it is there (0: before the window)
    offset: np.ndarray         # per household index: the first visit's day
    days: int
    cycle: int
    hh: object
    truth_source: str
    start: str


def prepare(engine: Engine, world: World, days: int, *, truth=None, seed: int = 0, cycle: int = DEFAULT_CYCLE,
            progress: bool = False) -> Replay:
    if not isinstance(days, (int, np.integer)) or days < 1:
        raise SimulationError(f"--days: {days!r} is not a whole number of days >= 1")
    if not isinstance(cycle, (int, np.integer)) or cycle < 1:
        raise SimulationError(f"--cycle: {cycle!r} is not a whole number of days >= 1")
    cands = score_candidates(engine, max_arcs=np.iinfo(np.int64).max, progress=progress)
    arcs = cands.arcs
    posted = pd.to_datetime(pd.Series(engine.J.frame["posted_on"])).to_numpy("datetime64[D]")
    last = posted.max() if len(posted) else np.datetime64("2026-11-01")
    start = last - np.timedelta64(days - 1, "D")
    arrive = np.maximum((posted - start).astype(np.int64), 0) if len(posted) else np.zeros(0, np.int64)
    if truth is not None and len(arcs):
        p = truth.hire_probability(engine.W.ids[arcs.w], engine.J.ids[arcs.j])
        source = "generator"
    else:
        p, source = arcs.score, "model"
    hh = households(engine)
    offset = np.random.default_rng(seed).integers(0, cycle, len(hh.ids))
    return Replay(engine, arcs, np.asarray(p, float), arrive, offset, int(days), int(cycle), hh, source, str(start))


def _outcome(r: Replay, chosen: np.ndarray) -> dict:
    """Households covered, graduates placed, expected hires, households expected to have a hire."""
    a = r.arcs
    w = a.w[chosen]
    code = r.hh.code[w]
    on = r.hh.coverable[code]
    p = r.truth[chosen]
    miss = pd.Series(np.log1p(-np.minimum(p[on], 1 - 1e-12))).groupby(code[on]).sum()
    return {"households_covered": int(np.unique(code[on]).size),
            "graduates_placed": int(r.engine.W.graduate[w].sum()),
            "people_placed": int(len(chosen)),
            "expected_hires": round(float(p.sum()), 2),
            "households_expected_hired": round(float((1 - np.exp(miss)).sum()), 2)}


def hindsight(r: Replay) -> dict:
    """The plan over every arrival at once: an upper bound on what any policy places (every policy's
    placements are a plan of the same pairs and slots), graduates first, then households."""
    chosen, _ = plan_arcs(r.engine, r.arcs, hh=r.hh)
    return _outcome(r, chosen)


def run(r: Replay, policy: str, progress: bool = False) -> dict:
    """One policy over the days: the outcome, the households covered at the end of each day, seconds."""
    if policy not in POLICIES:
        raise SimulationError(f"--policy: {policy!r} is not one of {', '.join(POLICIES)}")
    from tqdm import tqdm
    e, a = r.engine, r.arcs
    W, J = e.W, e.J
    nW = len(W)
    left = J.free.copy()
    placed = np.full(nW, -1, np.int64)          # arc index of each worker's placement
    covered_h = np.zeros(len(r.hh.ids), bool)
    # each worker's arcs best first (value: market before welfare, then score; then as the engine ties)
    order = np.lexsort((J.id_rank[a.j], -a.score, -a.value, a.w))
    bounds = np.searchsorted(a.w[order], np.arange(nW + 1))
    members = pd.Series(np.arange(nW)).groupby(r.hh.code).indices
    seekers = W.available
    plan_of = np.full(nW, -1, np.int64)
    duals = None
    solves, last_arrivals = 0, -1
    daily = []
    t0 = time.perf_counter()
    for day in tqdm(range(r.days), desc=f"simulating {policy}", unit="day", disable=not progress, leave=False):
        here = r.arrive <= day
        visited = np.flatnonzero((day >= r.offset) & ((day - r.offset) % r.cycle == 0))
        rows = [w for h in visited for w in members.get(h, ()) if seekers[w] and placed[w] < 0]
        n_here = int(here.sum())
        # the plan stays optimal for the rest while visited members follow it; prices move with every placement
        if policy != "greedy" and rows and (n_here != last_arrivals or policy == "dual"):
            plan_of, duals = _resolve(r, here, left, placed, covered_h, policy == "dual")
            solves += 1
            last_arrivals = n_here
        rows.sort(key=lambda w: (not W.graduate[w], str(W.ids[w])))
        for w in rows:
            idx = order[bounds[w]:bounds[w + 1]]
            idx = idx[here[a.j[idx]] & (left[a.j[idx]] > 0)]
            if not len(idx):
                continue
            if policy == "greedy":
                pick = int(idx[0])
            elif policy == "plan":
                pick = int(plan_of[w])
                if pick < 0 or left[a.j[pick]] <= 0:
                    continue
            else:
                net = a.value[idx] - duals.job[a.j[idx]]
                best = int(np.lexsort((-a.score[idx], -net))[0])
                h = r.hh.code[w]
                bonus = (duals.coverage if r.hh.coverable[h] and not covered_h[h] else 0) \
                    + (duals.graduate if W.graduate[w] else 0)
                if net[best] + bonus < 0:
                    continue             # the slot is worth more to the plan than this placement
                pick = int(idx[best])
            placed[w] = pick
            left[a.j[pick]] -= 1
            if r.hh.coverable[r.hh.code[w]]:
                covered_h[r.hh.code[w]] = True
        daily.append(int(covered_h.sum()))
    seconds = time.perf_counter() - t0
    out = _outcome(r, placed[placed >= 0])
    out.update({"policy": policy, "solves": solves, "seconds": round(seconds, 3),
                "seconds_per_day": round(seconds / r.days, 4), "daily_households_covered": daily})
    return out


def _resolve(r: Replay, here, left, placed, covered_h, duals: bool):
    """The plan over the members not placed and the slots open now; per worker its planned arc (or -1), and
    with ``duals`` the plan's dual prices of the jobs' capacities."""
    a = r.arcs
    keep = np.flatnonzero((placed[a.w] < 0) & here[a.j] & (left[a.j] > 0))
    hh = type(r.hh)(r.hh.code, r.hh.ids, r.hh.coverable & ~covered_h)
    chosen, d = plan_arcs(r.engine, a.take(keep), hh=hh, free=left, duals=duals)
    plan_of = np.full(len(r.engine.W), -1, np.int64)
    plan_of[a.w[keep[chosen]]] = keep[chosen]
    return plan_of, d


def simulate(engine: Engine, world: World, days: int, policy: str, *, truth=None, seed: int = 0,
             cycle: int = DEFAULT_CYCLE, progress: bool = False) -> dict:
    """The JSON `matcher simulate` prints: the policy's outcome beside the hindsight optimum's, and ratios."""
    if policy not in POLICIES:
        raise SimulationError(f"--policy: {policy!r} is not one of {', '.join(POLICIES)}")
    t0 = time.perf_counter()
    r = prepare(engine, world, days, truth=truth, seed=seed, cycle=cycle, progress=progress)
    prep = time.perf_counter() - t0
    best = hindsight(r)
    got = run(r, policy, progress=progress)
    ratio = {k: (round(got[k] / best[k], 4) if best[k] else None)
             for k in ("households_covered", "expected_hires", "households_expected_hired")}
    return {"policy": policy, "days": r.days, "start": r.start, "cycle_days": r.cycle, "seed": seed,
            "hire_chances": r.truth_source, "households_coverable": int(r.hh.coverable.sum()),
            "result": {k: v for k, v in got.items() if k != "daily_households_covered"},
            "hindsight_optimum": best, "share_of_hindsight": ratio,
            "daily_households_covered": got["daily_households_covered"],
            "seconds": {"prepare": round(prep, 3), "policy": got["seconds"]}}


def truth_of(world_dir):
    """The generator's hidden process for a folder it made, else None (then the model's scores are used)."""
    if world_dir is None:
        return None
    from matcher.generate import load_truth
    return load_truth(world_dir)


__all__ = ["POLICIES", "Replay", "SimulationError", "hindsight", "prepare", "run", "simulate", "truth_of"]
