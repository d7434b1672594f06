"""The city-wide plan (SPEC section 4, `matcher allocate`): one allocation for the whole city, solved
exactly with OR-Tools' min-cost flow, and the greedy baseline it is measured against.

Ranking one household at a time lets the first households visited take the slots that later households
needed. The plan here puts, in this order of priority (lexicographic, each level exactly optimal given the
ones before it):

1. **Graduates of extremely poor families** (特困家庭高校毕业生, 应就尽就): as many placed as can be placed
   at all. They come before households: if a graduate and the only member of another household compete for
   the last slot, the graduate gets it.
2. **Households covered** (能转尽转): a household is *coverable* when no member is employed and at least one
   member is available (able, wants a job, not employed); it is *covered* when at least one member is
   placed. Households with an employed member are not counted (they already have work); their available
   members can still be placed, after the coverage levels.
3. **Expected hires**: the sum of the model's P(hire) over placements, with *market first*: a
   public-welfare post is valued strictly below every market job the same worker could take.

Hard rules: every pair eligible (exactly the pairs :func:`matcher.eligibility.candidate_pairs` returns, so
public-welfare posts only go to fallback-eligible workers in their village or town), each worker at most
one job, each job at most ``slots - filled`` workers.

Market first, as a bureau would expect it (托底安置 is for those the market cannot place): the plan never
gives a welfare post to a worker who could take a market job with a slot still free in the plan. Moving
such a worker to that market job keeps levels 1 and 2 and raises level 3, so no optimal plan does it.
Welfare posts still go to fallback-eligible workers whose market options are all taken by others (or who
have none), and they count for covering a household like any placement.

The flow (one min-cost flow, integer costs; "value" means minus cost)::

    source -> household   first unit: value C (covers it); further units: 0
    household -> worker   capacity 1; value G for a graduate      (source -> worker when not coverable)
    worker -> job         capacity 1; value v(w, j)
    job -> sink           capacity slots - filled
    source -> sink        bypass, so that leaving people unplaced is allowed

``v`` is the score in units of ``1/scale`` (``scale`` 10,000 by default), at least 2 for a market job;
a welfare post's ``v`` is capped one below the worker's lowest market ``v`` (at least 1). With
``V = sum over workers of their best v``, ``C = V + 1`` makes coverage dominate expected hires (any two
plans differ by less than ``V`` in value). ``G = C + V + 1`` makes graduates dominate coverage, though
a plan can cover thousands of households: if an optimal plan placed fewer graduates than possible, an
alternating path (in the symmetric difference with a plan that places more) places one more graduate
while unplacing at most one other worker, so it loses at most one household (``C``) and at most ``V`` of
value, and ``G`` outweighs both. The weights stay small (about ``2 * scale * workers``), well inside
OR-Tools' int64 cost range, at 100 times the default world too.

Scale: eligible pairs grow with the square of density (100 times the default world has hundreds of
millions). Pairs are scored in chunks of workers. Up to ``max_arcs`` pairs every pair is an arc and the plan
is exact. Beyond, the flow keeps each worker's best ``top_n`` pairs (the engine's order, which is the order
of ``v``: a kept welfare arc implies that all of the worker's market arcs are kept, so market first holds
against every eligible pair) and each job's best ``3 * free + 10`` workers; the other pairs are held out,
7 bytes each (job, value, taken). Column generation then brings back what matters, by LP duality: the
shortest-path potentials of the plan's residual graph (it has no negative cycle, the plan being optimal
over its arcs; every worker keeps its best pair, so ``V``, ``C`` and ``G`` are those of the full problem)
price every held-out pair, and a pair of negative reduced cost, which could improve the
plan, is added (at most ``per_worker`` a worker, the most negative first) and the flow solved again. A few
rounds price all three levels; then rounds price the first two only (graduate 2, a household's first unit
1, lexicographic by the same path argument) until no held-out pair has a negative reduced cost: graduates
placed and households covered are then certified optimal over every eligible pair
(``summary["optimality"]["certified"]``). Expected hires are certified too when the first rounds ran out of
pairs to add; otherwise ``expected_hires_gap_bound`` bounds what a plan with the same graduates and
households could add: under the potentials a worker gains at most its most negative held-out reduced cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from matcher.eligibility import KIND, KIND_CODES, Pairs, pair_distance
from matcher.errors import MatcherError
from matcher import ranking
from matcher.ranking import Engine, place_name

PLAN_COLUMNS = ["household_id", "worker_id", "job_id", "score", "tier", "subsidy_yuan"]
ROW_COLUMNS = PLAN_COLUMNS + ["kind", "county_code", "town_code", "village_code", "distance_km", "graduate",
                              "covers_household", "reasons"]
UNCOVERED_COLUMNS = ["household_id", "county_code", "town_code", "village_code", "reason", "members",
                     "fallback_members", "home_only_members"]
UNCOVERED_REASONS = {
    "no_job_within_reach": "通勤范围内没有符合条件的岗位",
    "no_welfare_post": "只能托底安置，本村（镇）没有空缺的公益性岗位",
    "competition": "有符合条件的岗位，但名额已安排给其他户",
}
WELFARE = KIND["public_welfare"]
DEFAULT_SCALE = 10_000
DEFAULT_MAX_ARCS = 20_000_000
MIN_TOP_N = 10
PRUNED_ARCS = 5_000_000
JOB_QUOTA = 3.0
JOB_EXTRA = 10
CHUNK_PAIRS = 4_000_000
MAX_ROUNDS = 50
ADD_PER_WORKER = 20
VALUE_ROUNDS = 4


class AllocationError(MatcherError):
    """The solver could not produce a plan (never expected: the flow is always feasible)."""

    status = 500
    code = "allocation_failed"


# -- the arcs: eligible pairs with their scores and values ------------------------------------------------

@dataclass
class Arcs:
    """Eligible (worker row, job row) pairs kept for the flow, with score and integer value."""

    w: np.ndarray
    j: np.ndarray
    distance_km: np.ndarray
    score: np.ndarray
    covered: np.ndarray        # required skills the worker has (for the reasons)
    value: np.ndarray          # int64, >= 1

    def __len__(self) -> int:
        return len(self.w)

    def take(self, idx) -> "Arcs":
        return Arcs(self.w[idx], self.j[idx], self.distance_km[idx], self.score[idx], self.covered[idx],
                    self.value[idx])

    @staticmethod
    def unscored(w: np.ndarray, j: np.ndarray, value: np.ndarray) -> "Arcs":
        """Held-out pairs brought back: only their value was kept; :func:`_fill_scores` adds the rest."""
        n = len(w)
        return Arcs(np.asarray(w, np.int64), np.asarray(j, np.int64), np.full(n, np.nan), np.full(n, np.nan),
                    np.full(n, -1, np.int64), np.asarray(value, np.int64))

    @staticmethod
    def concat(parts: list["Arcs"]) -> "Arcs":
        if not parts:
            return Arcs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0),
                        np.zeros(0, np.int64), np.zeros(0, np.int64))
        return Arcs(*(np.concatenate([getattr(p, f) for p in parts])
                      for f in ("w", "j", "distance_km", "score", "covered", "value")))


@dataclass
class Held:
    """Eligible pairs left out of the flow by pruning, compactly: worker rows with their pair counts, and
    per pair the job row, the integer value and whether it has since been added to the arcs (``taken``):
    7 bytes a pair at the default scale."""

    rows: np.ndarray
    counts: np.ndarray
    j: np.ndarray
    value: np.ndarray
    taken: np.ndarray

    def __len__(self) -> int:
        return len(self.j)

    @classmethod
    def of(cls, arcs: Arcs) -> "Held":
        rows, counts = np.unique(arcs.w, return_counts=True)
        small = not len(arcs) or int(arcs.value.max()) <= np.iinfo(np.uint16).max
        return cls(rows.astype(np.int32), counts.astype(np.int32), arcs.j.astype(np.int32),
                   arcs.value.astype(np.uint16 if small else np.int64), np.zeros(len(arcs), bool))

    @property
    def w(self) -> np.ndarray:
        return np.repeat(self.rows.astype(np.int64), self.counts)

    def bring_back(self, idx: np.ndarray, w: np.ndarray) -> Arcs:
        """Pairs ``idx`` (``w``: this part's worker rows, from :attr:`w`) as arcs, marked taken."""
        self.taken[idx] = True
        return Arcs.unscored(w[idx], self.j[idx], self.value[idx])


@dataclass
class Candidates:
    """What the scoring pass learned: the kept arcs, the pairs held out of the flow, and per worker row
    counts over *all* eligible pairs."""

    arcs: Arcs
    held: list[Held]
    eligible: np.ndarray       # per worker row: eligible pairs (before pruning)
    market: np.ndarray         # per worker row: eligible market jobs
    pairs_total: int
    top_n: int | None          # None: every eligible pair is kept
    scale: int
    seconds: float


def arc_values(w: np.ndarray, welfare: np.ndarray, score: np.ndarray, scale: int = DEFAULT_SCALE) -> np.ndarray:
    """Integer value of each pair: the score in 1/scale units, market >= 2, welfare below the worker's
    every market value (>= 1). ``w`` must hold all of a worker's pairs for the welfare cap to be right."""
    v = np.rint(np.asarray(score, float) * scale).astype(np.int64)
    market_v = np.maximum(v, 2)
    if not welfare.any():
        return market_v
    big = np.iinfo(np.int64).max
    lowest = np.full(int(w.max()) + 1 if len(w) else 0, big, dtype=np.int64)
    np.minimum.at(lowest, w[~welfare], market_v[~welfare])
    cap = lowest[w] - 1
    welfare_v = np.maximum(np.minimum(v, cap), 1)
    return np.where(welfare, welfare_v, market_v)


def _arcs_of(engine: Engine, sc, scale: int) -> Arcs:
    p = sc.pairs
    welfare = engine.J.kind[p.j] == WELFARE
    return Arcs(p.w.astype(np.int64), p.j.astype(np.int64), p.distance_km, sc.score,
                np.asarray(sc.covered, np.int64), arc_values(p.w, welfare, sc.score, scale))


def score_candidates(engine: Engine, *, top_n: int | None = None, max_arcs: int = DEFAULT_MAX_ARCS,
                     pruned_arcs: int = PRUNED_ARCS, job_quota: float | None = JOB_QUOTA, scale: int = DEFAULT_SCALE,
                     chunk_rows: int | None = None, progress: bool = False, threads: int | None = None) -> Candidates:
    """Score every eligible pair (in chunks of workers) and split them into the flow's arcs and the held
    out rest.

    Every pair is kept unless there are more than ``max_arcs`` (or ``top_n`` is given). Pruned, the flow
    keeps each worker's best ``top_n`` pairs (default: about ``pruned_arcs`` in all) and each job's best
    ``job_quota * free slots + JOB_EXTRA`` workers (none when ``job_quota`` is None), so that both sides
    of the competition are in the flow; the rest is held out for the certificate (:func:`allocate`).
    """
    t0 = time.perf_counter()
    threads = threads or scoring_threads()
    W, J = engine.W, engine.J
    rows = np.flatnonzero(W.available)
    eligible = np.zeros(len(W), np.int64)
    market = np.zeros(len(W), np.int64)
    quota = job_quotas(J, job_quota)
    parts: list[Arcs] = []
    held: list[Held] = []
    pool = Arcs.concat([])
    kept = total = 0
    chunk = chunk_rows or min(len(rows), 2_000) or 1
    from tqdm import tqdm
    bar = tqdm(total=len(rows), desc="scoring pairs", unit="worker", disable=not progress, leave=False)

    def split(arcs: Arcs) -> Arcs:
        nonlocal pool
        keep, rest = _prune(arcs, top_n)
        held.append(Held.of(rest))
        # only pairs better than a job's current last place can enter its pool
        full = np.bincount(pool.j, minlength=len(J)) >= quota
        last = np.full(len(J), -1, np.int64)
        if full.any():
            low = np.full(len(J), np.iinfo(np.int64).max)
            np.minimum.at(low, pool.j, pool.value)
            last = np.where(full, low, -1)
        rest = rest.take(np.flatnonzero(rest.value > last[rest.j]))
        pool = _best_per_job(Arcs.concat([pool, rest]), quota)
        return keep

    start = 0
    while start < len(rows):
        part_rows = rows[start:start + chunk]
        start += len(part_rows)
        # the engine's order is needed only to prune (each worker's best first)
        arcs = _arcs_of(engine, engine.score(part_rows, threads=threads, ordered=top_n is not None), scale)
        welfare = J.kind[arcs.j] == WELFARE
        eligible += np.bincount(arcs.w, minlength=len(W))
        market += np.bincount(arcs.w[~welfare], minlength=len(W))
        total += len(arcs)
        if top_n is not None:
            arcs = split(arcs)
        parts.append(arcs)
        kept += len(arcs)
        if top_n is None and kept > max_arcs:
            top_n = max(MIN_TOP_N, pruned_arcs // max(len(rows), 1))
            parts = [split(_engine_order(engine, a)) for a in parts]
            kept = sum(len(a) for a in parts)
        if chunk_rows is None and total:
            chunk = int(np.clip(CHUNK_PAIRS * start / total, 200, 200_000))
        bar.update(len(part_rows))
    bar.close()
    if len(pool):
        # the jobs' best workers join the arcs; their copies in the held-out pairs are marked taken
        nJ = len(J)
        keys = np.sort(pool.w * nJ + pool.j)
        for h in held:
            h.taken |= _contains(keys, h.w * nJ + h.j)
    return Candidates(Arcs.concat(parts + [pool]), [h for h in held if len(h)], eligible, market, total, top_n,
                      scale, time.perf_counter() - t0)


def job_quotas(J, job_quota: float | None = JOB_QUOTA) -> np.ndarray:
    """Per job row: how many of its best workers a pruned flow keeps (none for welfare posts: a welfare
    arc is kept only with all of its worker's market arcs; none at all when ``job_quota`` is None)."""
    quota = (np.zeros(len(J), np.int64) if job_quota is None
             else np.ceil(job_quota * np.maximum(J.free, 0)).astype(np.int64) + JOB_EXTRA)
    quota[J.kind == WELFARE] = 0
    return quota


def scoring_threads() -> int:
    """Threads for the model over every eligible pair: the cores this process may use. The plan is a batch
    job of millions of rows a call, where an OpenMP team pays for itself (unlike one household's call)."""
    import os
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:          # not on Linux
        return max(1, os.cpu_count() or 1)


def _engine_order(engine: Engine, arcs: Arcs) -> Arcs:
    """Arcs in the engine's order (:func:`matcher.ranking.order_scored`): by worker, market before welfare,
    best score first, job_id on ties; for arcs scored without it."""
    welfare = engine.J.kind[arcs.j] == WELFARE
    return arcs.take(np.lexsort((engine.J.id_rank[arcs.j], -arcs.score, welfare, arcs.w)))


def _best_per_job(arcs: Arcs, quota: np.ndarray) -> Arcs:
    """Each job's best ``quota[job]`` arcs by value."""
    return arcs.take(best_per_job(arcs, quota)) if len(arcs) else arcs


def best_per_job(arcs: Arcs, quota: np.ndarray) -> np.ndarray:
    """Indices (ascending) of each job's best ``quota[job]`` arcs by value, the lower worker row on ties."""
    o = np.lexsort((arcs.w, -arcs.value, arcs.j))
    j = arcs.j[o]
    start = np.r_[True, j[1:] != j[:-1]]
    rank = np.arange(len(o)) - np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))
    return np.sort(o[rank < quota[j]])


def _prune(arcs: Arcs, top_n: int) -> tuple[Arcs, Arcs]:
    """Each worker's first ``top_n`` arcs in the engine's order (by worker, market first, best first; the
    order of value), and the rest."""
    if not len(arcs):
        return arcs, arcs
    starts = np.r_[True, arcs.w[1:] != arcs.w[:-1]]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(arcs)), 0))
    keep = np.arange(len(arcs)) - first < top_n
    return arcs.take(np.flatnonzero(keep)), arcs.take(np.flatnonzero(~keep))


# -- households --------------------------------------------------------------------------------------------

@dataclass
class _Households:
    code: np.ndarray           # per worker row: household index
    ids: np.ndarray            # household index -> household_id
    coverable: np.ndarray      # per household index


def _households(engine: Engine) -> _Households:
    W = engine.W
    code, ids = pd.factorize(pd.Series(W.household, dtype=object), sort=True)
    n = len(ids)
    employed = np.zeros(n, bool)
    np.logical_or.at(employed, code, W.frame["employed"].to_numpy(bool))
    available = np.zeros(n, bool)
    np.logical_or.at(available, code, W.available)
    return _Households(code.astype(np.int64), np.asarray(ids, dtype=object), available & ~employed)


# -- the flow ----------------------------------------------------------------------------------------------

def _weights(arcs: Arcs) -> tuple[int, int]:
    """(C, G): coverage and graduate values, large enough to dominate what comes after (module docstring)."""
    best = np.zeros(int(arcs.w.max()) + 1 if len(arcs) else 0, np.int64)
    np.maximum.at(best, arcs.w, arcs.value)
    V = int(best.sum())
    C = V + 1
    return C, C + V + 1


def _dense(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(rows, return_inverse=True)`` for row numbers below ``n``, by counting instead of sorting
    (the arcs are millions)."""
    present = np.bincount(rows, minlength=n) > 0
    local = np.cumsum(present) - 1
    return np.flatnonzero(present), local[rows]


class _Network:
    """The flow over the kept arcs. Nodes: 0 source, 1 sink, coverable households, workers, jobs."""

    S, T = 0, 1

    def __init__(self, engine: Engine, arcs: Arcs, hh: _Households, free: np.ndarray | None = None):
        self.engine, self.arcs, self.hh = engine, arcs, hh
        self.job_free = engine.J.free if free is None else np.asarray(free, np.int64)
        self.workers, self.w_local = _dense(arcs.w, len(engine.W))
        self.jobs, self.j_local = _dense(arcs.j, len(engine.J))
        w_hh = hh.code[self.workers]
        self.in_coverable = hh.coverable[w_hh]
        self.households, self.h_local = np.unique(w_hh[self.in_coverable], return_inverse=True)
        self.members = np.bincount(self.h_local, minlength=len(self.households))
        n_h, n_w, n_j = len(self.households), len(self.workers), len(self.jobs)
        self.h_node = 2 + np.arange(n_h)
        self.w_node = 2 + n_h + np.arange(n_w)
        self.j_node = 2 + n_h + n_w + np.arange(n_j)
        self.n_nodes = 2 + n_h + n_w + n_j
        self.graduate = engine.W.graduate[self.workers]
        self.free = self.job_free[self.jobs]

    def solve(self) -> np.ndarray:
        """Indices into the arcs of the placements of the lexicographically best plan over them."""
        from ortools.graph.python import min_cost_flow

        arcs = self.arcs
        if not len(arcs):
            return np.zeros(0, np.int64)
        S, T = self.S, self.T
        C, G = _weights(arcs)
        cov = self.in_coverable
        n_h, n_w, n_j = len(self.households), len(self.workers), len(self.jobs)
        extra = self.members > 1
        grad_value = np.where(self.graduate, G, 0)
        tails = [np.full(n_h, S), np.full(int(extra.sum()), S), self.h_node[self.h_local],
                 np.full(int((~cov).sum()), S), self.w_node[self.w_local], self.j_node, [S]]
        heads = [self.h_node, self.h_node[extra], self.w_node[cov], self.w_node[~cov],
                 self.j_node[self.j_local], np.full(n_j, T), [T]]
        caps = [np.ones(n_h), self.members[extra] - 1, np.ones(int(cov.sum())), np.ones(int((~cov).sum())),
                np.ones(len(arcs)), self.free, [n_w]]
        costs = [np.full(n_h, -C), np.zeros(int(extra.sum())), -grad_value[cov], -grad_value[~cov],
                 -arcs.value, np.zeros(n_j), [0]]
        first_pair_arc = sum(len(t) for t in tails[:4])
        flow = min_cost_flow.SimpleMinCostFlow()
        flow.add_arcs_with_capacity_and_unit_cost(
            np.concatenate(tails).astype(np.int32), np.concatenate(heads).astype(np.int32),
            np.concatenate(caps).astype(np.int64), np.concatenate(costs).astype(np.int64))
        flow.set_nodes_supplies(np.array([S, T], np.int32), np.array([n_w, -n_w], np.int64))
        status = flow.solve()
        if status != flow.OPTIMAL:
            raise AllocationError(f"the min-cost flow solver stopped with status {status!r} "
                                  f"({n_w} workers, {n_j} jobs, {len(arcs)} arcs, largest weight {G})")
        on = flow.flows(np.arange(first_pair_arc, first_pair_arc + len(arcs), dtype=np.int64))
        return np.flatnonzero(on > 0)

    # -- the certificate for held-out pairs --

    def potentials(self, chosen: np.ndarray, levels: int = 3) -> np.ndarray:
        """Shortest-path distances in the plan's residual graph from a virtual root joined to every node.

        The plan is optimal over the kept arcs, so the residual graph has no negative cycle and the
        distances are feasible potentials: every residual arc has a reduced cost >= 0."""
        return _shortest_from_everywhere(self.n_nodes, *self._residual(chosen, levels))

    def _residual(self, chosen: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The plan's residual graph (tails, heads, costs): levels 3, the flow's own costs; 2, graduates (2)
        and households (1) only."""
        S, T = self.S, self.T
        C, G = _weights(self.arcs) if levels == 3 else (1, 2)
        placed = np.zeros(len(self.workers), bool)
        placed[self.w_local[chosen]] = True
        count = np.bincount(self.h_local[placed[self.in_coverable]], minlength=len(self.households))
        used = np.bincount(self.j_local[chosen], minlength=len(self.jobs))
        rest = np.maximum(count - 1, 0)
        grad = np.where(self.graduate, -G, 0)
        entry = np.full(len(self.workers), S)
        entry[self.in_coverable] = self.h_node[self.h_local]
        unchosen = np.ones(len(self.arcs), bool)
        unchosen[chosen] = False
        value = self.arcs.value if levels == 3 else np.zeros(len(self.arcs), np.int64)
        h, w, j = self.h_node, self.w_node, self.j_node
        wl, jl = self.w_local, self.j_local
        parts = [
            (np.full(len(h), S), h, np.where(count == 0, -C, 0), (count == 0) | (rest < self.members - 1)),
            (h, np.full(len(h), S), np.where(rest > 0, 0, C), count > 0),
            (entry, w, grad, ~placed),
            (w, entry, -grad, placed),
            (w[wl], j[jl], -value, unchosen),
            (j[jl], w[wl], value, ~unchosen),
            (j, np.full(len(j), T), 0, used < self.free),
            (np.full(len(j), T), j, 0, used > 0),
            (np.array([S, T]), np.array([T, S]), 0, np.array([placed.any(), not placed.all()])),
        ]
        tails = np.concatenate([t[m] for t, _, _, m in parts])
        heads = np.concatenate([hd[m] for _, hd, _, m in parts])
        cost = np.concatenate([np.broadcast_to(np.asarray(c, np.int64), len(m))[m] for _, _, c, m in parts])
        return tails, heads, cost

    def slot_prices(self, chosen: np.ndarray, scale: int = DEFAULT_SCALE) -> pd.DataFrame:
        """Each job's shadow price of one more slot in this plan, and how many workers the plan sends there.

        The dual of a job's capacity, read off the flow: one more unit on ``job -> sink`` lets the plan
        push one unit round a cycle ``job -> sink -> ... -> job`` of the residual graph (from the sink back
        through the bypass to the source, which places someone new, or through a job that gives up a worker;
        then alternating pair arcs, each worker moving on to the next job, until the chain ends at this
        job). The best such cycle gains minus the shortest distance ``d(T, job)``, well defined since the
        residual graph of an optimal flow has no negative cycle: that gain is the right-hand dual of the
        capacity (the price of one more slot; 0 when the plan leaves a slot of the job empty).

        The flow's costs are lexicographic: ``G = 2C`` a graduate, ``C`` a household, then expected hires
        in ``1/scale``, so the gain is ``C * k + c`` with ``k`` graduates (twice) and households gained and
        ``c`` the change in expected hires, ``|c| <= V < C``. ``k`` is the same shortest distance in the
        residual graph with only the first two levels' costs (2 and 1; the best cycle has the most ``k``
        since ``C`` outweighs any ``c``), and ``c = gain - C * k``. Reported:

        - ``contention = max(c, 0) / scale``, in the units of a match's ``score`` (P(hire)): the expected
          hires the plan would add with one more slot there, which is what a referral elsewhere takes from
          it. ``C`` and ``G`` are weights that order the levels, not amounts of anything a probability can
          be compared with, so that part is not folded into the score's units; it is ``households_price``.
          When the extra slot covers a household, ``c`` includes that household's placed member's score,
          so contested jobs price high whether the competition is within the expected hires or between
          households. (``c`` can be negative when the best cycle covers a household by moving someone to a
          job they fit less well; a slot is then reported at 0 expected hires, and ``households_price`` > 0.)
        - ``households_price = k``: 1 when one more slot would cover one more household, 2 a graduate.

        For a pruned flow the prices are over its kept arcs."""
        J = self.engine.J
        n_j = len(J)
        assigned = np.bincount(self.arcs.j[chosen], minlength=n_j) if len(chosen) else np.zeros(n_j, np.int64)
        contention = np.zeros(n_j)
        first_two = np.zeros(n_j, np.int64)
        if len(self.arcs):
            full = np.flatnonzero(np.bincount(self.j_local[chosen], minlength=len(self.jobs)) >= self.free)
            node = self.j_node[full]
            d3 = _shortest_from(self.n_nodes, *self._residual(chosen, 3), source=self.T)[node]
            d2 = _shortest_from(self.n_nodes, *self._residual(chosen, 2), source=self.T)[node]
            reach = d3 < _UNREACHED
            C, _ = _weights(self.arcs)
            k = np.where(reach, np.maximum(-d2, 0), 0)
            c = np.where(reach, -d3 - C * k, 0)
            first_two[self.jobs[full]] = k
            contention[self.jobs[full]] = np.maximum(c, 0) / scale
        return pd.DataFrame({"job_id": J.ids.astype(str), "plan_assigned": assigned.astype(np.int64),
                             "contention": np.round(contention, 4), "households_price": first_two})

    def duals(self, chosen: np.ndarray) -> "Duals":
        """The plan's dual prices of the jobs' capacities, from the potentials ``d`` (shortest distances from a
        root joined to every node; every residual arc's reduced cost ``cost + d[tail] - d[head] >= 0``):
        ``d[T] - d[job]``, which is 0 where the arc ``job -> sink`` has room (reduced cost of that arc) and
        >= 0 where it is full (reduced cost of its reverse)."""
        job = np.zeros(len(self.engine.J), np.int64)
        C, G = _weights(self.arcs) if len(self.arcs) else (1, 2)
        if len(self.arcs):
            d = self.potentials(chosen, 3)
            job[self.jobs] = np.maximum(d[self.T] - d[self.j_node], 0)
        return Duals(job, C, G)

    def row_potentials(self, chosen: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
        """The potentials by worker row and by job row (0 for a job with no kept arc: nothing enters it)."""
        d = self.potentials(chosen, levels)
        d_worker = np.zeros(len(self.engine.W), np.int64)
        d_worker[self.workers] = d[self.w_node]
        d_job = np.zeros(len(self.engine.J), np.int64)
        d_job[self.jobs] = d[self.j_node]
        return d_worker, d_job

    def violations(self, chosen: np.ndarray, held: "HeldOut", per_worker: int, levels: int = 3) -> Arcs:
        """Held-out pairs whose reduced cost under the potentials is negative (the only pairs that could
        improve the plan), at most ``per_worker`` a worker, the most negative first, taken out of ``held``.
        None: the plan is optimal over every eligible pair (LP duality: the potentials stay feasible once
        the held-out arcs are added). The arcs carry no score yet (NaN): see :func:`_fill_scores`."""
        d_worker, d_job = self.row_potentials(chosen, levels)
        return held.violations(d_worker, d_job, per_worker, levels)

    def welfare_misfits(self, chosen: np.ndarray, held: "HeldOut") -> Arcs:
        """Held-out market pairs, with a slot still free in the plan, of workers the plan puts on a welfare
        post (pairs added back for coverage can do that; the flow moves them once the pairs are arcs)."""
        J = self.engine.J
        a = self.arcs.take(chosen)
        on_welfare = np.zeros(len(self.engine.W), bool)
        on_welfare[a.w[J.kind[a.j] == WELFARE]] = True
        left = J.free - np.bincount(a.j, minlength=len(J))
        return held.misfits(on_welfare, left, J.kind) if on_welfare.any() else Arcs.concat([])

    def value_gap(self, chosen: np.ndarray, held: "HeldOut") -> int:
        """An upper bound on how much value (expected hires times scale) a plan with the same graduates
        and households could add over this one: under feasible potentials a worker can gain at most the
        most negative reduced cost among its held-out pairs, for it takes one job."""
        d_worker, d_job = self.row_potentials(chosen, 3)
        return held.gain(d_worker, d_job)


# -- pricing held-out pairs, one part at a time (here, or on a cluster: matcher.distributed) --

def held_violations(part: Held, d_worker: np.ndarray, d_job: np.ndarray, per_worker: int, levels: int) -> np.ndarray:
    """Indices of ``part``'s pairs, not yet taken, of negative reduced cost under the potentials (by the
    part's worker and job rows), at most ``per_worker`` a worker, the most negative first."""
    w = part.w
    reduced = d_worker[w] - d_job[part.j] - (part.value if levels == 3 else 0)
    bad = np.flatnonzero(~part.taken & (reduced < 0))
    if not len(bad):
        return bad
    bad = bad[np.lexsort((reduced[bad], w[bad]))]
    wb = w[bad]
    start = np.r_[True, wb[1:] != wb[:-1]]
    rank = np.arange(len(bad)) - np.maximum.accumulate(np.where(start, np.arange(len(bad)), 0))
    return np.sort(bad[rank < per_worker])


def held_misfits(part: Held, on_welfare: np.ndarray, left: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Indices of ``part``'s market pairs, not yet taken, of workers on a welfare post, to jobs with a
    slot left (``on_welfare``, ``left``, ``kind``: by the part's worker and job rows)."""
    w = part.w
    return np.flatnonzero(~part.taken & on_welfare[w] & (kind[part.j] != WELFARE) & (left[part.j] > 0))


def held_gain(part: Held, d_worker: np.ndarray, d_job: np.ndarray) -> int:
    """What ``part``'s workers could add at most: each its most negative held-out reduced cost (a part
    holds every held-out pair of its workers, so the parts' gains add up)."""
    if not len(part):
        return 0
    reduced = np.where(part.taken, 0, d_worker[part.w] - d_job[part.j] - part.value.astype(np.int64))
    worst = np.minimum(np.minimum.reduceat(reduced, np.r_[0, np.cumsum(part.counts)[:-1]]), 0)
    return int(-worst.sum())


class HeldOut:
    """The held-out pairs of a pruned flow, priced in this process, part by part
    (:class:`matcher.distributed.ClusterHeld` does the same on a Dask cluster, partition by partition)."""

    def __init__(self, parts: list[Held]):
        self.parts = [replace(h, taken=h.taken.copy()) for h in parts if len(h)]

    def __bool__(self) -> bool:
        return bool(self.parts)

    def violations(self, d_worker, d_job, per_worker: int, levels: int) -> Arcs:
        out = []
        for part in self.parts:
            w = part.w
            out.append(part.bring_back(held_violations(part, d_worker, d_job, per_worker, levels), w))
        return Arcs.concat(out)

    def misfits(self, on_welfare, left, kind) -> Arcs:
        return Arcs.concat([p.bring_back(held_misfits(p, on_welfare, left, kind), p.w) for p in self.parts])

    def gain(self, d_worker, d_job) -> int:
        return sum(held_gain(p, d_worker, d_job) for p in self.parts)



_UNREACHED = np.iinfo(np.int64).max // 4


def _shortest_from_everywhere(n: int, tails: np.ndarray, heads: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Distances from a virtual root with a 0-cost arc to every node (so all start at 0): label
    correcting, vectorised one round at a time over the out-arcs of the nodes that improved last round."""
    return _shortest_from(n, tails, heads, cost)


def _shortest_from(n: int, tails: np.ndarray, heads: np.ndarray, cost: np.ndarray,
                   source: int | None = None) -> np.ndarray:
    """Shortest distances from ``source`` (``_UNREACHED`` where no path), or from the virtual root joined
    to every node when ``source`` is None; the graph must have no negative cycle."""
    order = np.argsort(tails, kind="stable")
    tails, heads, cost = tails[order], heads[order], cost[order]
    indptr = np.r_[0, np.cumsum(np.bincount(tails, minlength=n))]
    if source is None:
        d = np.zeros(n, np.int64)
        active = np.unique(tails[cost < 0])
    else:
        d = np.full(n, _UNREACHED, np.int64)
        d[source] = 0
        active = np.array([source], np.int64)
    for _ in range(n + 1):
        if not len(active):
            return d
        lens = indptr[active + 1] - indptr[active]
        idx = np.repeat(indptr[active] - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
        cand = np.repeat(d[active], lens) + cost[idx]
        h = heads[idx]
        better = cand < d[h]
        h, cand = h[better], cand[better]
        o = np.lexsort((cand, h))
        h, cand = h[o], cand[o]
        first = np.r_[True, h[1:] != h[:-1]] if len(h) else np.zeros(0, bool)
        d[h[first]] = cand[first]
        active = h[first]
    raise AllocationError("the plan's residual graph has a negative cycle: the flow was not optimal")


def score_pairs(engine: Engine, w: np.ndarray, j: np.ndarray):
    """Score, distance and covered skills of given eligible pairs, as :meth:`Engine.score` computes them
    (skill overlap, pair features, the model; no distance out of county) without finding every pair of
    the workers again. A test pins it to ``Engine.score``."""
    kind = engine.J.kind[j]
    d = np.where(kind == KIND["out_of_county"], np.nan, pair_distance(engine.W, engine.J, w, j))
    sc = ranking.score_pairs(engine.model, engine.W, engine.J, Pairs(w, j, d))
    return sc.score, d, sc.covered


def _fill_scores(engine: Engine, arcs: Arcs) -> Arcs:
    """Score, distance and covered skills for arcs added back from the held-out pairs (only their values
    were kept)."""
    missing = np.flatnonzero(np.isnan(arcs.score))
    if len(missing):
        score, d, covered = score_pairs(engine, arcs.w[missing], arcs.j[missing])
        arcs.score[missing], arcs.distance_km[missing], arcs.covered[missing] = score, d, covered
    return arcs


def _contains(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(len(keys), bool)
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    return sorted_keys[pos] == keys


# -- the plan ----------------------------------------------------------------------------------------------

@dataclass
class Allocation:
    """A plan: ``rows`` (a DataFrame, SPEC columns first), ``summary`` (JSON-serialisable), the uncovered
    households with why, and the objective values (graduates placed, households covered, value)."""

    rows: pd.DataFrame
    summary: dict
    uncovered: pd.DataFrame
    objective: dict = field(default_factory=dict)
    prices: pd.DataFrame | None = None      # per job: plan_assigned, contention, households_price

    def plan_csv(self) -> pd.DataFrame:
        """The rows as SPEC section 4's plan.csv has them."""
        return self.rows[PLAN_COLUMNS]

    def records(self) -> list[dict]:
        """The rows as JSON-ready dicts (plain Python values; no distance out of county is None)."""
        out = self.rows.astype(object).where(self.rows.notna(), None).to_dict("records")
        for r in out:
            for k, v in r.items():
                if isinstance(v, np.generic):
                    r[k] = v.item()
        return out


def allocate(engine: Engine, *, candidates: Candidates | None = None, top_n: int | None = None,
             max_arcs: int = DEFAULT_MAX_ARCS, scale: int = DEFAULT_SCALE, value_rounds: int = VALUE_ROUNDS,
             per_worker: int = ADD_PER_WORKER, reasons: bool = True, progress: bool = False,
             held: HeldOut | None = None, prices: bool = False) -> Allocation:
    """The optimal city-wide plan (module docstring: objective, flow, pruning and its certificate), with
    ``prices``, each job's price of one more slot too (:meth:`_Network.slot_prices`, ``Allocation.prices``).

    ``held`` prices the pairs held out of the flow (default: ``candidates.held``, in this process;
    :func:`matcher.distributed.allocate` passes a cluster's).

    When pairs were held out (pruning), up to ``value_rounds`` rounds add the held-out pairs that could
    raise any level, then rounds add those that could raise graduates or households until none is left:
    the first two levels are then certified over every eligible pair. Expected hires are certified too
    when the first rounds ran out of pairs to add; otherwise ``summary["optimality"]`` bounds the gap.
    """
    cands = candidates or score_candidates(engine, top_n=top_n, max_arcs=max_arcs, scale=scale,
                                           progress=progress)
    t0 = time.perf_counter()
    hh = _households(engine)
    arcs = cands.arcs
    net = _Network(engine, arcs, hh)
    chosen = net.solve()
    held = held if held is not None else HeldOut(cands.held)
    rounds = {3: 0, 2: 0}
    added = 0
    certified = {3: not held, 2: not held}
    from tqdm import tqdm
    bar = tqdm(desc="certifying pruned plan", unit="round", disable=not (progress and held), leave=False)
    for levels, limit in ((3, value_rounds), (2, MAX_ROUNDS)):
        while not certified[2] and not certified[levels] and rounds[levels] < limit:
            more = net.violations(chosen, held, per_worker, levels)
            if not len(more):
                certified[levels] = True
                break
            arcs = Arcs.concat([arcs, more])
            net = _Network(engine, arcs, hh)
            chosen = net.solve()
            rounds[levels] += 1
            added += len(more)
            bar.update(1)
    while held:
        more = net.welfare_misfits(chosen, held)
        if not len(more):
            break
        arcs = Arcs.concat([arcs, more])
        net = _Network(engine, arcs, hh)
        chosen = net.solve()
        added += len(more)
    bar.close()
    if certified[3]:
        certified[2] = True
    gap = 0 if certified[3] else net.value_gap(chosen, held)
    solve_s = time.perf_counter() - t0
    optimality = {
        "method": "min-cost flow (OR-Tools), lexicographic weights",
        "eligible_pairs": int(cands.pairs_total),
        "arcs": int(len(arcs)),
        "top_n": cands.top_n,
        "exact": cands.top_n is None,
        "certified": bool(certified[2]),
        "expected_hires_certified": bool(certified[3]),
        "expected_hires_gap_bound": math.ceil(100 * gap / cands.scale) / 100,       # rounded up: a bound
        "certificate_rounds": rounds[3] + rounds[2],
        "arcs_added_by_certificate": int(added),
        "score_resolution": 1.0 / cands.scale,
    }
    out = _plan(engine, _fill_scores(engine, arcs.take(chosen)), hh, cands, "optimal", optimality,
                {"score": round(cands.seconds, 3), "solve": round(solve_s, 3)}, reasons)
    if prices:
        t1 = time.perf_counter()
        out.prices = net.slot_prices(chosen, cands.scale)
        out.summary["seconds"]["prices"] = round(time.perf_counter() - t1, 3)
    return out


def households(engine: Engine) -> _Households:
    """Households of the engine's workers: per worker row its household index, the ids, which are coverable."""
    return _households(engine)


def plan_arcs(engine: Engine, arcs: Arcs, *, hh: _Households | None = None, free: np.ndarray | None = None,
              prices: bool = False, scale: int = DEFAULT_SCALE, duals: bool = False):
    """The lexicographically best placements over the given arcs (indices into them), for callers that change
    the world between solves (:mod:`matcher.simulate`, :mod:`matcher.sites`): ``hh`` with some households no
    longer coverable (already covered), ``free`` slots per job row instead of the engine's. No pruning, no
    certificate: the arcs are all there is. Returns ``(chosen, extra)``: ``extra`` the slot prices
    (:meth:`_Network.slot_prices`) with ``prices``, the plan's duals (:class:`Duals`) with ``duals``, else None."""
    net = _Network(engine, arcs, hh or _households(engine), free)
    chosen = net.solve()
    if duals:
        return chosen, net.duals(chosen)
    return chosen, (net.slot_prices(chosen, scale) if prices else None)


@dataclass
class Duals:
    """An optimal dual of the flow, in the flow's own (lexicographic) units: ``job`` per job row the price
    of its capacity, ``coverage`` and ``graduate`` the weights ``C`` and ``G``. By complementary slackness
    each placed worker's job maximises ``value(w, j) - job[j]`` over the worker's pairs, so a worker who
    takes such a job acts as the plan would (ties aside)."""

    job: np.ndarray
    coverage: int
    graduate: int


def greedy(engine: Engine, *, candidates: Candidates | None = None, reasons: bool = True,
           progress: bool = False) -> Allocation:
    """The baseline: households in household_id order, each member (graduates first, then by worker_id)
    takes the best job with a slot left (market before welfare, then score), as volunteers visiting one
    household after another would. It sees every eligible pair: when the pairs were pruned, a worker
    whose kept arcs are all full goes on down the held-out rest of its list (same order, by value; a tie in
    value between a held-out pair and a job's pooled arc goes to the arc)."""
    cands = candidates or score_candidates(engine, progress=progress)
    t0 = time.perf_counter()
    hh = _households(engine)
    arcs = cands.arcs
    # each worker's arcs best first: by value (market before welfare), then as the engine orders ties
    order = np.lexsort((engine.J.id_rank[arcs.j], -arcs.score, -arcs.value, arcs.w))
    arcs = arcs.take(order)
    W = engine.W
    # where each worker's held-out pairs are: (part, first index, count); they follow its kept top arcs
    # in value order, and the ones marked taken are in the arcs already
    part_of = np.full(len(W), -1, np.int64)
    first_of = np.zeros(len(W), np.int64)
    count_of = np.zeros(len(W), np.int64)
    for k, h in enumerate(cands.held):
        part_of[h.rows] = k
        first_of[h.rows] = np.r_[0, np.cumsum(h.counts)[:-1]]
        count_of[h.rows] = h.counts
    chosen, extra = [], []
    if len(arcs):
        starts = np.flatnonzero(np.r_[True, arcs.w[1:] != arcs.w[:-1]])
        ends = np.r_[starts[1:], len(arcs)]
        workers = arcs.w[starts]
        visit = np.lexsort((W.ids[workers].astype(str), ~W.graduate[workers],
                            hh.ids[hh.code[workers]].astype(str)))
        left = engine.J.free.copy()
        for k in visit:
            a, b = starts[k], ends[k]
            open_ = left[arcs.j[a:b]] > 0
            i = a + int(np.argmax(open_)) if open_.any() else -1
            w = int(workers[k])
            if count_of[w]:
                h = cands.held[part_of[w]]
                lo, n = first_of[w], count_of[w]
                if i < 0 or int(h.value[lo]) > arcs.value[i]:
                    jj = h.j[lo:lo + n]
                    ok = np.flatnonzero(~h.taken[lo:lo + n] & (left[jj] > 0))
                    if len(ok) and (i < 0 or int(h.value[lo + ok[0]]) > arcs.value[i]):
                        q = lo + int(ok[0])
                        left[h.j[q]] -= 1
                        extra.append((w, int(h.j[q]), int(h.value[q])))
                        continue
            if i >= 0:
                left[arcs.j[i]] -= 1
                chosen.append(i)
    chosen = np.sort(np.asarray(chosen, np.int64))
    picked = arcs.take(chosen)
    if extra:
        picked = _fill_scores(engine, Arcs.concat([picked, Arcs.unscored(*(np.array(x) for x in zip(*extra)))]))
    optimality = {"method": "greedy, households in household_id order", "eligible_pairs": int(cands.pairs_total),
                  "arcs": int(len(arcs)), "top_n": cands.top_n, "exact": False, "certified": False,
                  "score_resolution": 1.0 / cands.scale}
    return _plan(engine, picked, hh, cands, "greedy", optimality,
                 {"score": round(cands.seconds, 3), "solve": round(time.perf_counter() - t0, 3)}, reasons)


def _plan(engine: Engine, a: Arcs, hh: _Households, cands: Candidates, method: str, optimality: dict,
          seconds: dict, with_reasons: bool) -> Allocation:
    W, J = engine.W, engine.J
    order = np.lexsort((W.ids[a.w].astype(str), hh.ids[hh.code[a.w]].astype(str)))
    a = a.take(order)
    kind = J.kind[a.j]
    welfare = kind == WELFARE
    hcode = hh.code[a.w]
    covers = hh.coverable[hcode] & np.r_[True, hcode[1:] != hcode[:-1]] if len(a) else np.zeros(0, bool)
    reasons = []
    if with_reasons:
        for i in range(len(a)):
            w, j = int(a.w[i]), int(a.j[i])
            r = engine.reasons(w, j, float(a.distance_km[i]), int(a.covered[i]), float(a.score[i]))
            if welfare[i]:
                r.insert(0, "市场岗位已无空位或不符合条件，公益性岗位托底安置")
            if covers[i]:
                r.insert(0, "本户无人就业：安排后实现一户至少一人就业")
            if W.graduate[w]:
                r.insert(0, "特困家庭高校毕业生，优先安排（应就尽就）")
            reasons.append(r)
    else:
        reasons = [[] for _ in range(len(a))]
    d = a.distance_km
    rows = pd.DataFrame({
        "household_id": hh.ids[hcode].astype(str) if len(a) else np.array([], str),
        "worker_id": W.ids[a.w].astype(str),
        "job_id": J.ids[a.j].astype(str),
        "score": np.round(a.score, 4),
        "tier": np.where(welfare, "public_welfare", "market"),
        "subsidy_yuan": engine.subsidy(a.j).astype(np.int64),
        "kind": np.asarray(KIND_CODES, dtype=object)[kind] if len(a) else np.array([], object),
        "county_code": W.county[a.w],
        "town_code": W.town[a.w],
        "village_code": W.village[a.w],
        "distance_km": np.where(np.isnan(d), np.nan, np.round(d, 2)),
        "graduate": W.graduate[a.w],
        "covers_household": covers,
        "reasons": reasons,
    }, columns=ROW_COLUMNS)

    covered_h = np.zeros(len(hh.ids), bool)
    covered_h[hcode] = True
    covered_h &= hh.coverable
    uncovered = _uncovered(engine, hh, covered_h, cands)
    grads = W.graduate & W.available
    objective = {"graduates_placed": int(W.graduate[a.w].sum()),
                 "households_covered": int(covered_h.sum()),
                 "value": int(a.value.sum())}
    summary = _summary(engine, rows, uncovered, hh, covered_h, grads, cands, method, optimality, seconds)
    summary["by_county"] = _county_summaries(engine, rows, uncovered, hh, covered_h, grads, cands, method,
                                             optimality, seconds)
    return Allocation(rows, summary, uncovered, objective)


def _county_summaries(engine, rows, uncovered, hh, covered_h, grads, cands, method, optimality, seconds) -> dict:
    """The same summary for each county alone, for a volunteer of that county: nothing of another county in it."""
    W = engine.W
    h_county = np.empty(len(hh.ids), dtype=object)
    h_county[hh.code] = W.county
    out = {}
    for county in sorted({str(c) for c in W.county if c}):
        wmask = W.county == county
        hmask = h_county == county
        out[county] = _summary(engine, rows[rows["county_code"] == county],
                               uncovered[uncovered["county_code"] == county], hh, covered_h, grads, cands, method,
                               optimality, seconds, hmask=hmask, wmask=wmask)
    return out


def _uncovered(engine: Engine, hh: _Households, covered_h: np.ndarray, cands: Candidates) -> pd.DataFrame:
    """Every coverable household left uncovered, with why (see UNCOVERED_REASONS)."""
    W = engine.W
    todo = hh.coverable & ~covered_h
    rows = np.flatnonzero(W.available & todo[hh.code])
    if not len(rows):
        return pd.DataFrame(columns=UNCOVERED_COLUMNS)
    f = pd.DataFrame({"h": hh.code[rows], "eligible": cands.eligible[rows] > 0, "fallback": W.fallback[rows],
                      "home_only": W.home_only[rows], "row": rows})
    g = f.groupby("h", sort=True).agg(eligible=("eligible", "any"), members=("row", "size"),
                                      fallback=("fallback", "sum"), home_only=("home_only", "sum"),
                                      row=("row", "first"))
    reason = np.where(g["eligible"], "competition",
                      np.where(g["fallback"] > 0, "no_welfare_post", "no_job_within_reach"))
    r = g["row"].to_numpy()
    return pd.DataFrame({
        "household_id": hh.ids[g.index.to_numpy()].astype(str),
        "county_code": W.county[r], "town_code": W.town[r], "village_code": W.village[r],
        "reason": reason, "members": g["members"].to_numpy(), "fallback_members": g["fallback"].to_numpy(),
        "home_only_members": g["home_only"].to_numpy(),
    }, columns=UNCOVERED_COLUMNS)


ACTIONS = {
    "no_job_within_reach": "在本镇开设扶贫车间（厂房式或居家式）或引进岗位",
    "no_welfare_post": "在本村开发保洁、保绿等公益性岗位托底安置",
    "competition": "增加本镇岗位名额",
}


def _where(uncovered: pd.DataFrame, limit: int) -> list[dict]:
    """Uncovered households grouped where the bureau can act: by village for welfare posts (they serve
    their village, or town when the village is empty), by town otherwise; the largest groups first."""
    if not len(uncovered):
        return []
    u = uncovered.copy()
    by_village = (u["reason"] == "no_welfare_post") & (u["village_code"] != "")
    u["place_code"] = np.where(by_village, u["village_code"], u["town_code"])
    u["level"] = np.where(by_village, "village", "town")
    g = (u.groupby(["reason", "county_code", "town_code", "place_code", "level"], sort=True)
         .agg(households=("household_id", "size"), home_only_members=("home_only_members", "sum"))
         .reset_index().sort_values(["households", "place_code", "reason"], ascending=[False, True, True]))
    out = []
    for r in g.head(limit).itertuples(index=False):
        out.append({"reason": r.reason, "county_code": r.county_code, "town_code": r.town_code,
                    "town_name": place_name(r.town_code), "level": r.level, "place_code": r.place_code,
                    "place_name": place_name(r.place_code), "households": int(r.households),
                    "home_only_members": int(r.home_only_members), "action": ACTIONS[r.reason]})
    return out


def _summary(engine, rows, uncovered, hh, covered_h, grads, cands, method, optimality, seconds,
             limit: int = 50, hmask: np.ndarray | None = None, wmask: np.ndarray | None = None) -> dict:
    """The plan's figures; with ``hmask`` (households) and ``wmask`` (workers), those of that part alone
    (``rows`` and ``uncovered`` then already cut to it)."""
    kinds = list(KIND_CODES)
    placed = rows["kind"].value_counts().reindex(kinds, fill_value=0)
    subsidy = rows.groupby("kind")["subsidy_yuan"].sum().reindex(kinds, fill_value=0)
    if hmask is not None:
        hh = _Households(hh.code, hh.ids, hh.coverable & hmask)
        covered_h = covered_h & hmask
    if wmask is not None:
        grads = grads & wmask
    coverable = int(hh.coverable.sum())
    covered = int(covered_h.sum())
    reasons = uncovered["reason"].value_counts().reindex(list(UNCOVERED_REASONS), fill_value=0)
    return {
        "method": method,
        "model_version": engine.model.version,
        "households": {"coverable": coverable, "covered": covered, "uncovered": coverable - covered,
                       "covered_share": round(covered / coverable, 4) if coverable else None},
        "graduates": {"available": int(grads.sum()), "placed": int(rows["graduate"].sum()),
                      "with_eligible_job": int((grads & (cands.eligible > 0)).sum())},
        "people_placed": int(len(rows)),
        "placed_by_kind": {k: int(placed[k]) for k in kinds},
        "expected_hires": round(float(rows["score"].sum()), 2),
        "subsidy_yuan": int(subsidy.sum()),
        "subsidy_by_kind": {k: int(subsidy[k]) for k in kinds},
        "uncovered": {"total": int(len(uncovered)),
                      "by_reason": {k: int(reasons[k]) for k in UNCOVERED_REASONS},
                      "reason_text": UNCOVERED_REASONS,
                      "where": _where(uncovered, limit)},
        "optimality": optimality,
        "seconds": seconds,
    }


def format_summary(summary: dict, where: int = 10) -> str:
    """The summary as lines a person reads (the CLI prints this)."""
    h, g = summary["households"], summary["graduates"]
    share = f" ({h['covered_share']:.1%})" if h["covered_share"] is not None else ""
    kinds = ", ".join(f"{k} {n:,}" for k, n in summary["placed_by_kind"].items() if n)
    subs = ", ".join(f"{k} {n:,}" for k, n in summary["subsidy_by_kind"].items() if n)
    u = summary["uncovered"]
    why = ", ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in u["by_reason"].items())
    opt = summary["optimality"]
    lines = [
        f"households covered: {h['covered']:,} of {h['coverable']:,} coverable{share}",
        f"graduates placed: {g['placed']:,} of {g['available']:,} ({g['with_eligible_job']:,} with an eligible job)",
        f"people placed: {summary['people_placed']:,}" + (f" ({kinds})" if kinds else ""),
        f"expected hires: {summary['expected_hires']:,.2f}",
        f"subsidies owed: {summary['subsidy_yuan']:,} yuan" + (f" ({subs})" if subs else ""),
        f"households left uncovered: {u['total']:,} ({why})",
    ]
    for p in u["where"][:where]:
        lines.append(f"  {p['place_name']} ({p['place_code']}): {p['households']:,} households, "
                     f"{p['reason'].replace('_', ' ')} -> {p['action']}")
    exact = "every eligible pair" if opt.get("top_n") is None else f"each worker's top {opt['top_n']} arcs"
    cert = "; households and graduates certified optimal" if opt.get("certified") and not opt.get("exact") else ""
    lines.append(f"solver: {opt['method']} over {exact} ({opt['arcs']:,} arcs){cert}")
    return "\n".join(lines)


__all__ = ["Allocation", "AllocationError", "Arcs", "Candidates", "PLAN_COLUMNS", "ROW_COLUMNS",
           "UNCOVERED_REASONS", "allocate", "arc_values", "format_summary", "greedy", "households", "plan_arcs", "Duals",
           "score_candidates"]
