"""Big worlds on a Dask cluster (SPEC section 9): the per-pair work spread over the cluster's workers,
partitioned by place; what must be solved whole (the pruned flow) solved in this process.

A **partition** is a tile of job seekers: a township's (neighbouring townships of one county packed
together up to ``size`` seekers; a township with more cut into strips south to north), with the open jobs
within reach of any of them (located work within the tile's spread plus its longest commute, home work
within its spread plus the delivery reach: a superset, by the triangle inequality) and every open
out-of-county job. Inside a partition the work is the one process's own code on a slice of the world's
arrays (:class:`matcher.ranking.Engine`, :func:`matcher.eligibility.candidate_pairs`,
:func:`matcher.allocation.score_candidates`): a worker's eligible pairs, features and scores do not
depend on workers or jobs outside its reach, so each worker gets the same pairs and the same scores to
the bit. The model and the policy are scattered once to every Dask worker; a partition's slice travels
with its task, so that a task lost with its worker can be run again elsewhere (the scheduler keeps it).

- :func:`recommend` writes each partition's rows to the CSV as they come back, in partition order (the
  same rows as one process, byte for byte, in another order of workers).
- :func:`allocate` scores and prunes the pairs on the cluster, where the held-out pairs stay; the flow is
  solved here over the kept arcs, and each round of the certificate prices the held-out pairs against
  the flow's potentials on the cluster, partition by partition (:class:`ClusterHeld`), until certified.

Dask is imported only here, and only by :func:`connect`: the plain install needs none of it.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd

from matcher import allocation as al
from matcher.eligibility import KIND, JobArrays, WorkerArrays
from matcher.errors import MatcherError
from matcher.geo import haversine_km
from matcher.ranking import RECOMMEND_COLUMNS, Engine

PARTITION_SIZE = 1_000      # job seekers a partition (memory: see README, "Big worlds on a cluster")
REACH_MARGIN_KM = 0.01      # slack against rounding: a superset is all a tile needs (each pair is checked)


class SchedulerError(MatcherError):
    """The --scheduler address is malformed or unreachable, or Dask is not installed."""

    code = "scheduler_unavailable"


# -- the cluster ----------------------------------------------------------------------------------------

def local_workers(address: str) -> int | None:
    """N for ``local:N``, None for a scheduler's address; a malformed one is a :class:`SchedulerError`."""
    address = address.strip()
    if not address:
        raise SchedulerError("scheduler address is empty: give tcp://HOST:PORT or local:N")
    if not address.startswith("local"):
        return None
    m = re.fullmatch(r"local:(\d+)", address)
    if not m or int(m[1]) < 1:
        raise SchedulerError(f"scheduler {address!r}: write local:N with N >= 1 worker processes")
    return int(m[1])


@contextmanager
def connect(address: str):
    """A Dask client for ``address``: a scheduler (``tcp://host:8786``, ``host:8786``) or ``local:N``, a
    LocalCluster of N worker processes of one thread each, started here and stopped on leaving."""
    n = local_workers(address)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SchedulerError("--scheduler needs Dask: pip install 'matcher[distributed]'") from None
    address = address.strip()
    cluster = None
    if n is not None:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        try:
            client = Client(address, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerError(f"could not reach the Dask scheduler at {address}: {exc}") from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# -- partitions ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    """A tile of job seekers (global worker rows, ascending) and the open jobs within their reach
    (global job rows, ascending)."""

    index: int
    place: str                 # the township code, with the strip when a township is cut
    rows: np.ndarray
    jobs: np.ndarray


class Slice:
    """A partition's slice of the world's arrays, as a task carries it. Its repr names sizes only (a
    failed task's arguments can end up in a worker's log; people's data must not)."""

    def __init__(self, W: WorkerArrays, J: JobArrays, rows: np.ndarray, jobs: np.ndarray):
        self.W, self.J, self.rows, self.jobs = W, J, rows, jobs

    def __repr__(self) -> str:
        return f"Slice({len(self.rows)} workers, {len(self.jobs)} jobs)"


def take(arrays, idx: np.ndarray):
    """Rows ``idx`` of a :class:`WorkerArrays` or :class:`JobArrays` (its derived fields computed again:
    job id ranks keep their order, so ties break as in the whole world)."""
    n = len(arrays)
    kw = {}
    for f in fields(arrays):
        if not f.init:
            continue
        v = getattr(arrays, f.name)
        if isinstance(v, pd.DataFrame):
            v = v.iloc[idx].reset_index(drop=True)
        elif isinstance(v, np.ndarray) and v.ndim and len(v) == n:
            v = v[idx]
        kw[f.name] = v
    return type(arrays)(**kw)


def partitions(W: WorkerArrays, J: JobArrays, policy, size: int = PARTITION_SIZE) -> list[Partition]:
    """The world's job seekers in tiles of townships (module docstring), each with the jobs in reach."""
    if size < 1:
        raise SchedulerError(f"partition size must be at least 1 job seeker, got {size}")
    seekers = np.flatnonzero(W.available)
    if not len(seekers):
        return []
    town_code, towns = pd.factorize(pd.Series(W.town[seekers], dtype=object).astype(str), sort=True)
    order = np.lexsort((W.lon[seekers], W.lat[seekers], town_code))
    seekers, town_code = seekers[order], town_code[order]
    bounds = np.flatnonzero(np.r_[True, town_code[1:] != town_code[:-1], True])
    groups: list[tuple[str, np.ndarray]] = []
    pending: list[np.ndarray] = []
    pending_county = None

    def flush():
        nonlocal pending
        if pending:
            rows = np.concatenate(pending)
            groups.append((str(W.town[rows[0]]), rows))
            pending = []

    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = seekers[a:b]
        county = W.county[rows[0]]
        if len(rows) > size:
            flush()
            pieces = np.array_split(rows, math.ceil(len(rows) / size))     # strips, south to north
            groups += [(f"{W.town[rows[0]]}/{k + 1}", piece) for k, piece in enumerate(pieces)]
            continue
        if pending and (county != pending_county or sum(map(len, pending)) + len(rows) > size):
            flush()
        pending.append(rows)
        pending_county = county
    flush()
    return [Partition(i, place, np.sort(rows), jobs_within_reach(W, J, policy, np.sort(rows)))
            for i, (place, rows) in enumerate(groups)]


def jobs_within_reach(W: WorkerArrays, J: JobArrays, policy, rows: np.ndarray) -> np.ndarray:
    """Open jobs any of ``rows`` could be eligible for, by distance: located work within the tile's spread
    from its centre plus its longest commute, home work within the spread plus the delivery reach, and
    out-of-county work when one of them would migrate."""
    lat, lon = W.lat[rows], W.lon[rows]
    clat, clon = float(lat.mean()), float(lon.mean())
    spread = float(np.max(haversine_km(clat, clon, lat, lon))) + REACH_MARGIN_KM
    _, near = J.near_index.within([clat], [clon], [spread + float(W.commute_km[rows].max())])
    _, home = J.home_index.within([clat], [clon], [spread + policy.commute.home_delivery_km])
    ooc = np.flatnonzero(J.kind == KIND["out_of_county"]) if W.will_migrate[rows].any() else np.zeros(0, np.int64)
    jobs = np.unique(np.concatenate([near, home, ooc]).astype(np.int64))
    return jobs[J.open[jobs]]


def _slices(W, J, parts: list[Partition]):
    for p in parts:
        yield p, Slice(take(W, p.rows), take(J, p.jobs), p.rows, p.jobs)


# -- recommend -----------------------------------------------------------------------------------------

def _recommend_part(part: Slice, model, policy, k: int) -> tuple[str, int, int, float]:
    """One partition's top-k, as the CSV rows (no header) one process writes for these workers, with its
    row and worker counts and its seconds."""
    t0 = time.perf_counter()
    recs = Engine(part.W, part.J, model, policy).recommend(k=k)
    text = recs.to_csv(index=False, header=False, lineterminator="\n")
    return text, len(recs), int(recs["worker_id"].nunique()), time.perf_counter() - t0


def recommend(client, W: WorkerArrays, J: JobArrays, model, policy, out_path, *, k: int = 10,
              size: int = PARTITION_SIZE, progress: bool = False) -> dict:
    """Every worker's top-k (:meth:`Engine.recommend`) into ``out_path``, a partition at a time as each
    comes back (in partition order; nothing is gathered whole), written atomically. Returns counts."""
    from tqdm import tqdm
    t0 = time.perf_counter()
    parts = partitions(W, J, policy, size)
    model_f, policy_f = client.scatter([model, policy], broadcast=True, hash=False)
    run = uuid.uuid4().hex[:8]
    futures = [client.submit(_recommend_part, s, model_f, policy_f, k, key=f"matcher-recommend-{p.index}-{run}",
                             pure=False)
               for p, s in _slices(W, J, parts)]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    rows = workers = 0
    sizes = []
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(RECOMMEND_COLUMNS) + "\n")
            for p, f in zip(parts, tqdm(futures, desc="partitions", unit="partition", disable=not progress,
                                        leave=False)):
                text, n, nw, seconds = f.result()
                fh.write(text)
                rows, workers = rows + n, workers + nw
                sizes.append({"place": p.place, "workers": int(len(p.rows)), "jobs": int(len(p.jobs)), "rows": n,
                              "seconds": round(seconds, 3)})
                f.release()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        for f in futures:
            f.cancel()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        model_f.release()
        policy_f.release()
    return {"rows": rows, "workers": workers, "partitions": sizes, "seconds": round(time.perf_counter() - t0, 3)}


# -- allocate -----------------------------------------------------------------------------------------

@dataclass(repr=False)
class Scored:
    """A partition's scoring, kept on the cluster: its held-out pairs (in the partition's own rows), the
    global rows of its workers and jobs, and what the flow needs of it (:func:`_summary_task`)."""

    held: list
    rows: np.ndarray
    jobs: np.ndarray
    summary: tuple

    def __repr__(self) -> str:
        return f"Scored({len(self.rows)} workers, {sum(len(h) for h in self.held)} held-out pairs)"


def _score_task(part: Slice, model, policy, top_n: int, scale: int, job_quota) -> Scored:
    """Score a partition as one process scores the world (:func:`matcher.allocation.score_candidates`):
    each worker's best ``top_n`` pairs kept, the rest held out, and each job's best held-out workers of
    the partition (a job's best over the world are among the partitions' bests, ranked as one process
    ranks them: by value, then the lower worker row, which a partition's order keeps)."""
    t0 = time.perf_counter()
    engine = Engine(part.W, part.J, model, policy)
    c = al.score_candidates(engine, top_n=top_n, job_quota=None, scale=scale, threads=1)
    s = Scored(c.held, part.rows, part.jobs, ())
    pool, keys = _held_arcs(s)
    if job_quota is None or not len(pool):
        pool, keys = al.Arcs.concat([]), np.zeros(0, np.int64)
    else:
        best = al.best_per_job(pool, al.job_quotas(part.J, job_quota))
        pool, keys = pool.take(best), keys[best]
    s.summary = (_globalise(c.arcs, s), _globalise(pool, s), keys, c.eligible[:len(part.rows)],
                 c.market[:len(part.rows)], c.pairs_total, time.perf_counter() - t0)
    return s


def _summary_task(s: Scored) -> tuple:
    return s.summary


def _held_task(s: Scored) -> tuple[al.Arcs, np.ndarray]:
    a, keys = _held_arcs(s)
    return _globalise(a, s), keys


def _globalise(a: al.Arcs, s: Scored) -> al.Arcs:
    return al.Arcs(s.rows[a.w], s.jobs[a.j], a.distance_km, a.score, a.covered, a.value)


def _held_arcs(s: Scored) -> tuple[al.Arcs, np.ndarray]:
    """Every held-out pair as an arc (the partition's rows, unscored) and its key in the partition."""
    a = al.Arcs.concat([al.Arcs.unscored(h.w, h.j, h.value) for h in s.held])
    return a, a.w * len(s.jobs) + a.j


def _with_taken(h: al.Held, taken: np.ndarray, nj: int) -> al.Held:
    """``h`` with ``taken`` marking the pairs whose keys are already arcs (a copy: results stay as made)."""
    return replace(h, taken=al._contains(taken, h.w * nj + h.j))


def _picked(s: Scored, taken: np.ndarray, pick) -> tuple[al.Arcs, np.ndarray]:
    """The held-out pairs ``pick(part)`` chooses in each part, as arcs (global rows) and their keys."""
    nj = len(s.jobs)
    out, keys = [], []
    for h in s.held:
        h = _with_taken(h, taken, nj)
        idx = pick(h)
        w = h.w[idx]
        out.append(al.Arcs.unscored(s.rows[w], s.jobs[h.j[idx]], h.value[idx]))
        keys.append(w * nj + h.j[idx])
    return al.Arcs.concat(out), (np.concatenate(keys) if keys else np.zeros(0, np.int64))


def _price_task(s: Scored, d_worker, d_job, taken, per_worker: int, levels: int):
    return _picked(s, taken, lambda h: al.held_violations(h, d_worker, d_job, per_worker, levels))


def _misfit_task(s: Scored, on_welfare, left, kind, taken):
    return _picked(s, taken, lambda h: al.held_misfits(h, on_welfare, left, kind))


def _gain_task(s: Scored, d_worker, d_job, taken) -> int:
    nj = len(s.jobs)
    return sum(al.held_gain(_with_taken(h, taken, nj), d_worker, d_job) for h in s.held)


class ClusterHeld:
    """:class:`matcher.allocation.HeldOut` on a cluster: each partition's held-out pairs stay where they
    were scored and are priced there, against the potentials of its own workers and jobs. Which pairs are
    already arcs is kept here, as sorted keys per partition, and sent with each task: a task's result is
    never changed in place, so a partition lost with its worker is scored again from its slice."""

    def __init__(self, client, parts: list[Partition], scored: list, taken: list[np.ndarray], held_pairs: int,
                 keep: list = ()):
        self.client, self.parts, self.scored = client, parts, scored
        self.keep = list(keep)      # the scattered model and policy: a lost partition is scored again with them
        self.taken = [np.sort(t) for t in taken]
        self.held_pairs = held_pairs
        self.run = uuid.uuid4().hex[:8]
        self.calls = 0
        self.seconds = 0.0          # spent pricing on the cluster (the rest of the certificate is here)

    def __bool__(self) -> bool:
        return self.held_pairs > 0

    def _map(self, name: str, fn, args_of):
        t0 = time.perf_counter()
        self.calls += 1
        futures = [self.client.submit(fn, s, *args_of(p, i), key=f"matcher-{name}-{self.calls}-{p.index}-{self.run}",
                                      pure=False)
                   for i, (p, s) in enumerate(zip(self.parts, self.scored))]
        try:
            return self.client.gather(futures)
        finally:
            for f in futures:
                f.release()
            self.seconds += time.perf_counter() - t0

    def _added(self, results) -> al.Arcs:
        out = []
        for i, (arcs, keys) in enumerate(results):
            if len(keys):
                self.taken[i] = np.union1d(self.taken[i], keys)
                out.append(arcs)
        return al.Arcs.concat(out)

    def violations(self, d_worker, d_job, per_worker: int, levels: int) -> al.Arcs:
        return self._added(self._map("price", _price_task, lambda p, i: (
            d_worker[p.rows], d_job[p.jobs], self.taken[i], per_worker, levels)))

    def misfits(self, on_welfare, left, kind) -> al.Arcs:
        return self._added(self._map("misfits", _misfit_task, lambda p, i: (
            on_welfare[p.rows], left[p.jobs], kind[p.jobs], self.taken[i])))

    def gain(self, d_worker, d_job) -> int:
        return int(sum(self._map("gain", _gain_task, lambda p, i: (d_worker[p.rows], d_job[p.jobs], self.taken[i]))))

    def release(self) -> None:
        for f in self.scored + self.keep:
            f.release()


def score_candidates(client, engine: Engine, *, top_n: int | None = None, max_arcs: int = al.DEFAULT_MAX_ARCS,
                     pruned_arcs: int = al.PRUNED_ARCS, job_quota: float | None = al.JOB_QUOTA,
                     scale: int = al.DEFAULT_SCALE, size: int = PARTITION_SIZE,
                     progress: bool = False) -> tuple[al.Candidates, al.HeldOut | ClusterHeld, dict]:
    """:func:`matcher.allocation.score_candidates` on the cluster: the same arcs and held-out pairs
    (every pair an arc up to ``max_arcs``, else each worker's best ``top_n``, the same ``top_n``, and each
    job's best workers), the held-out pairs left on the cluster. Returns the candidates, their pricer for
    :func:`matcher.allocation.allocate`, and the partitions' figures."""
    from tqdm import tqdm
    t0 = time.perf_counter()
    W, J = engine.W, engine.J
    parts = partitions(W, J, engine.policy, size)
    n_rows = int(W.available.sum())
    forced = top_n is not None
    keep_n = top_n if forced else max(al.MIN_TOP_N, pruned_arcs // max(n_rows, 1))
    model_f, policy_f = client.scatter([engine.model, engine.policy], broadcast=True, hash=False)
    run = uuid.uuid4().hex[:8]
    scored, summaries = [], []
    for p, s in _slices(W, J, parts):
        f = client.submit(_score_task, s, model_f, policy_f, keep_n, scale, job_quota,
                          key=f"matcher-score-{p.index}-{run}", pure=False)
        scored.append(f)
        summaries.append(client.submit(_summary_task, f, key=f"matcher-summary-{p.index}-{run}", pure=False))
    kept, pools, pool_keys = [], [], []
    eligible = np.zeros(len(W), np.int64)
    market = np.zeros(len(W), np.int64)
    total = 0
    sizes = []
    for p, f in zip(parts, tqdm(summaries, desc="scoring partitions", unit="partition", disable=not progress,
                                leave=False)):
        arcs, pool, keys, el, mk, pairs, seconds = f.result()
        f.release()
        kept.append(arcs)
        pools.append(pool)
        pool_keys.append(keys)
        eligible[p.rows] = el
        market[p.rows] = mk
        total += pairs
        sizes.append({"place": p.place, "workers": int(len(p.rows)), "jobs": int(len(p.jobs)), "pairs": int(pairs),
                      "seconds": round(seconds, 3)})
    taken = [np.zeros(0, np.int64) for _ in parts]
    if not forced and total <= max_arcs:
        # every pair an arc: bring the held-out pairs back whole, nothing is left to price
        futures = [client.submit(_held_task, f, key=f"matcher-held-{p.index}-{run}", pure=False)
                   for p, f in zip(parts, scored)]
        back = []
        for f in futures:
            back.append(f.result()[0])
            f.release()
        for f in scored:
            f.release()
        arcs = al.Arcs.concat(kept + back)
        held: al.HeldOut | ClusterHeld = al.HeldOut([])
        top_n_used = None
    else:
        arcs = al.Arcs.concat(kept)
        if job_quota is not None:
            pool = al.Arcs.concat(pools)
            owner = np.repeat(np.arange(len(parts)), [len(x) for x in pools])
            keys = np.concatenate(pool_keys) if pool_keys else np.zeros(0, np.int64)
            best = al.best_per_job(pool, al.job_quotas(J, job_quota)) if len(pool) else np.zeros(0, np.int64)
            arcs = al.Arcs.concat([arcs, pool.take(best)])
            for i in range(len(parts)):
                taken[i] = keys[best[owner[best] == i]]
        held_pairs = total - len(arcs)
        held = ClusterHeld(client, parts, scored, taken, held_pairs, keep=[model_f, policy_f])
        top_n_used = keep_n
    seconds = time.perf_counter() - t0
    cands = al.Candidates(arcs, [], eligible, market, total, top_n_used, scale, seconds)
    return cands, held, {"partitions": sizes, "seconds": round(seconds, 3)}


def allocate(client, engine: Engine, *, top_n: int | None = None, max_arcs: int = al.DEFAULT_MAX_ARCS,
             size: int = PARTITION_SIZE, reasons: bool = True, progress: bool = False) -> al.Allocation:
    """:func:`matcher.allocation.allocate` with the per-pair work on the cluster (module docstring); the
    summary's ``distributed`` holds the partitions' sizes and the cluster's seconds."""
    cands, held, figures = score_candidates(client, engine, top_n=top_n, max_arcs=max_arcs, size=size,
                                            progress=progress)
    try:
        plan = al.allocate(engine, candidates=cands, held=held, reasons=reasons, progress=progress)
    finally:
        if isinstance(held, ClusterHeld):
            held.release()
            figures["pricing_seconds"] = round(held.seconds, 3)
            figures["pricing_calls"] = held.calls
    plan.summary["distributed"] = figures
    return plan


__all__ = ["ClusterHeld", "PARTITION_SIZE", "Partition", "SchedulerError", "allocate", "connect", "partitions",
           "recommend", "score_candidates"]
