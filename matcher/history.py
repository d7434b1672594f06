"""The track record: what the referral history says about particular workers, jobs, employers and places.

A :class:`TrackRecord` holds, for each worker, job, employer and job place (village, else town) of a
referral history, how many referrals it had and its outcome rates (hired, declined, no-show; rejected is
the rest), each shrunk towards its parent's rate by how much history it has (empirical Bayes,
beta-binomial): a job towards its employer's, an employer towards its kind's, a kind, a place and a
worker towards the whole history's. A job with no history takes its employer's rate, an employer with
none its kind's. The strength of each level's prior (``a`` pseudo-referrals) is estimated from the
history by the method of moments: ``a = p (1 - p) / var - 1`` with ``var`` the between-entity variance
of the hire rate beyond what binomial noise explains.

:func:`track_features` turns a table and the pairs' workers and jobs into the columns of
:data:`TRACK_FEATURES`; the model appends them to :func:`matcher.features.pair_features` (training and
serving use this one function). In training, :func:`out_of_fold` computes them for each referral from
the tables of the *other* folds, so a referral never sees its own outcome; the tables saved in the
artifact are fitted on every training referral, and a job posted after training borrows its employer's
(or its kind's) rate at serving time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from matcher.eligibility import KIND_CODES

RATES = ("hired", "declined", "no_show")        # rejected is what is left
TRACK_FEATURES: tuple[str, ...] = (
    "worker_referrals", "worker_hired", "worker_declined", "worker_no_show",
    "job_referrals", "job_hired", "job_declined", "job_no_show",
    "employer_referrals", "employer_hired", "employer_declined", "employer_no_show",
    "place_referrals", "place_hired",
)
TRACK_INDEX = {name: i for i, name in enumerate(TRACK_FEATURES)}
# More hires in a track record never lower the chance of a hire.
TRACK_MONOTONIC = {"worker_hired": 1, "job_hired": 1, "employer_hired": 1, "place_hired": 1}
FOLDS = 5
MIN_STRENGTH, MAX_STRENGTH = 1.0, 500.0


def _strength(counts: np.ndarray, n: np.ndarray) -> float:
    """Beta-binomial prior strength of one level from its entities' hire counts (method of moments)."""
    keep = n > 0
    counts, n = counts[keep], n[keep].astype(float)
    if len(n) < 2 or n.sum() == 0:
        return MAX_STRENGTH
    p = counts.sum() / n.sum()
    if p <= 0 or p >= 1:
        return MAX_STRENGTH
    rate = counts / n
    # between-entity variance: observed variance of rates minus the binomial part, weighted by size
    w = n / n.sum()
    observed = float(np.sum(w * (rate - p) ** 2))
    noise = float(np.sum(w * p * (1 - p) / n))
    between = observed - noise
    if between <= 0:
        return MAX_STRENGTH
    return float(np.clip(p * (1 - p) / between - 1.0, MIN_STRENGTH, MAX_STRENGTH))


@dataclass
class _Level:
    """One level's entities: key -> row, referral counts, shrunk rates (rows x RATES)."""

    index: pd.Index
    n: np.ndarray
    rates: np.ndarray
    strength: float

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        return self.index.get_indexer(np.asarray(keys, dtype=object))


def job_place(village: np.ndarray, town: np.ndarray) -> np.ndarray:
    """A job's place key: its village code, else its town code, else '' (out of county)."""
    village = np.asarray(village, dtype=object)
    town = np.asarray(town, dtype=object)
    return np.where(village != "", village, np.where(town != "", town, "")).astype(object)


@dataclass
class TrackRecord:
    """Track-record tables fitted on a referral history (see the module docstring)."""

    overall: np.ndarray            # (RATES,)
    kind: np.ndarray               # (len(KIND_CODES), RATES)
    worker: _Level
    job: _Level
    employer: _Level
    place: _Level
    n_referrals: int
    cut: str | None = None         # the first date the tables did not see
    data_sha256: str | None = None

    @classmethod
    def from_pairs(cls, W, J, p, outcome: np.ndarray) -> "TrackRecord":
        """Tables of the referrals p (pairs over arrays W and J) with their outcomes."""
        c = _Coded(W, J, p, outcome)
        t = c.tables(np.ones(len(c.w), bool))
        def level(code_names, n, rates, a):
            present = np.flatnonzero(n > 0)
            return _Level(pd.Index(np.asarray(code_names, dtype=object)[present], dtype=object), n[present],
                          rates[present], a)
        return cls(overall=t["overall"], kind=t["kind"],
                   worker=level(c.worker_names, *t["worker"]), job=level(c.job_names, *t["job"]),
                   employer=level(c.employer_names, *t["employer"]), place=level(c.place_names, *t["place"]),
                   n_referrals=int(len(c.w)))

    # -- features ---------------------------------------------------------------------------

    def worker_block(self, worker_ids: np.ndarray) -> np.ndarray:
        """(n, 4) worker columns: referrals, then the RATES (the overall rate when unknown)."""
        r = self.worker.lookup(worker_ids)
        known = r >= 0
        out = np.empty((len(r), 1 + len(RATES)))
        out[:, 0] = np.where(known, self.worker.n[np.maximum(r, 0)], 0)
        out[:, 1:] = np.where(known[:, None], self.worker.rates[np.maximum(r, 0)], self.overall)
        return out

    def job_block(self, job_ids, employers, kinds, places) -> np.ndarray:
        """(n, 10) job, employer and place columns; unknown jobs borrow the employer's rates, unknown
        employers the kind's, unknown places the overall rate."""
        kinds = np.asarray(kinds, np.int64)
        e = self.employer.lookup(employers)
        e_known = e >= 0
        e_rates = np.where(e_known[:, None], self.employer.rates[np.maximum(e, 0)], self.kind[kinds])
        j = self.job.lookup(job_ids)
        j_known = j >= 0
        j_rates = np.where(j_known[:, None], self.job.rates[np.maximum(j, 0)], e_rates)
        pl = self.place.lookup(places)
        p_known = pl >= 0
        out = np.empty((len(j), 10))
        out[:, 0] = np.where(j_known, self.job.n[np.maximum(j, 0)], 0)
        out[:, 1:4] = j_rates
        out[:, 4] = np.where(e_known, self.employer.n[np.maximum(e, 0)], 0)
        out[:, 5:8] = e_rates
        out[:, 8] = np.where(p_known, self.place.n[np.maximum(pl, 0)], 0)
        out[:, 9] = np.where(p_known, self.place.rates[np.maximum(pl, 0), 0], self.overall[0])
        return out

    def summary(self) -> dict:
        return {"referrals": self.n_referrals, "cut": self.cut, "data_sha256": self.data_sha256,
                "workers": int(len(self.worker.index)), "jobs": int(len(self.job.index)),
                "employers": int(len(self.employer.index)), "places": int(len(self.place.index)),
                "prior_strength": {"worker": self.worker.strength, "job": self.job.strength,
                                   "employer": self.employer.strength, "place": self.place.strength},
                "overall": dict(zip(RATES, map(float, self.overall)))}


def _gather(worker_block: np.ndarray, job_block: np.ndarray, w: np.ndarray, j: np.ndarray) -> np.ndarray:
    X = np.empty((len(w), len(TRACK_FEATURES)), dtype=np.float64, order="F")
    X[:, :4] = worker_block[w]
    X[:, 4:] = job_block[j]
    return X


def _cached(arrays, attr: str, track: TrackRecord, build):
    """Per-row blocks of a WorkerArrays / JobArrays for one track record, computed once per arrays."""
    hit = getattr(arrays, attr, None)
    if hit is not None and hit[0] is track and hit[1] is arrays.ids:
        return hit[2]
    block = build()
    setattr(arrays, attr, (track, arrays.ids, block))
    return block


def track_features(track: TrackRecord, W, J, p) -> np.ndarray:
    """The (n_pairs, len(TRACK_FEATURES)) columns of pairs ``p`` over arrays W and J."""
    wb = _cached(W, "_track_rows", track, lambda: track.worker_block(W.ids))
    jb = _cached(J, "_track_rows", track, lambda: track.job_block(J.ids, J.employer, J.kind,
                                                                  job_place(J.village, J.town)))
    return _gather(wb, jb, p.w, p.j)


class _Coded:
    """Referrals as integer codes (worker row, job row, employer, place, kind) and outcome indicators, so
    that tables are bincounts: fast enough to fit once per fold over a million referrals."""

    def __init__(self, W, J, p, outcome: np.ndarray):
        outcome = np.asarray(outcome, dtype=object)
        e_code, self.employer_names = pd.factorize(pd.Series(np.asarray(J.employer, dtype=object)))
        pl_code, self.place_names = pd.factorize(pd.Series(job_place(J.village, J.town)))
        self.worker_names, self.job_names = np.asarray(W.ids, dtype=object), np.asarray(J.ids, dtype=object)
        self.n_workers, self.n_jobs = len(W.ids), len(J.ids)
        self.n_employers, self.n_places = len(self.employer_names), len(self.place_names)
        job_kind = np.asarray(J.kind, np.int64)
        self.job_employer, self.job_place, self.job_kind = e_code, pl_code, job_kind
        # an employer's kind (for its prior): the kind of its first job
        first = np.full(self.n_employers, -1, np.int64)
        first[e_code[::-1]] = np.arange(len(e_code))[::-1]
        self.employer_kind = job_kind[first]
        self.w, self.j = np.asarray(p.w, np.int64), np.asarray(p.j, np.int64)
        self.e, self.pl, self.kind = e_code[self.j], pl_code[self.j], job_kind[self.j]
        self.Y = np.column_stack([(outcome == r) for r in RATES]).astype(np.float64)

    def tables(self, rows: np.ndarray) -> dict:
        """Dense tables (count, shrunk rates, prior strength) over every code, from the referrals ``rows``."""
        Y = self.Y[rows]
        n_all = len(Y)
        overall = Y.mean(axis=0) if n_all else np.zeros(len(RATES))

        def counts(code, size):
            n = np.bincount(code, minlength=size)
            c = np.column_stack([np.bincount(code, weights=Y[:, r], minlength=size) for r in range(len(RATES))])
            return n, c

        def shrunk(n, c, prior, a=None):
            a = _strength(c[:, 0], n) if a is None else a
            return n, (c + a * prior) / (n[:, None] + a), a

        k_n, k_c = counts(self.kind[rows], len(KIND_CODES))
        kind = shrunk(k_n, k_c, overall, 20.0)[1]      # five kinds: too few to estimate a prior from
        worker = shrunk(*counts(self.w[rows], self.n_workers), overall)
        place = shrunk(*counts(self.pl[rows], self.n_places), overall)
        employer = shrunk(*counts(self.e[rows], self.n_employers), kind[self.employer_kind])
        job = shrunk(*counts(self.j[rows], self.n_jobs), employer[1][self.job_employer])
        return {"overall": overall, "kind": kind, "worker": worker, "job": job, "employer": employer,
                "place": place}

    def features(self, t: dict, rows: np.ndarray) -> np.ndarray:
        """Track-record columns of the referrals ``rows`` from dense tables t (as TrackRecord's blocks)."""
        w, j, e, pl, k = self.w[rows], self.j[rows], self.e[rows], self.pl[rows], self.kind[rows]
        X = np.empty((len(w), len(TRACK_FEATURES)), dtype=np.float64, order="F")
        n_w, r_w, _ = t["worker"]
        n_j, r_j, _ = t["job"]
        n_e, r_e, _ = t["employer"]
        n_p, r_p, _ = t["place"]
        e_rates = np.where((n_e[e] > 0)[:, None], r_e[e], t["kind"][k])
        X[:, 0] = n_w[w]
        X[:, 1:4] = r_w[w]
        X[:, 4] = n_j[j]
        X[:, 5:8] = np.where((n_j[j] > 0)[:, None], r_j[j], e_rates)
        X[:, 8] = n_e[e]
        X[:, 9:12] = e_rates
        X[:, 12] = n_p[pl]
        X[:, 13] = r_p[pl, 0]
        return X


def out_of_fold(W, J, p, outcome: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Track-record columns for each referral from the tables of the other folds (random folds)."""
    c = _Coded(W, J, p, outcome)
    fold = np.random.default_rng(seed).integers(0, folds, len(c.w))
    X = np.empty((len(c.w), len(TRACK_FEATURES)), dtype=np.float64, order="F")
    for k in range(folds):
        inside = fold == k
        if inside.any():
            X[inside] = c.features(c.tables(~inside), inside)
    return X
