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


def _counts(keys: np.ndarray, outcome: np.ndarray) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    code, uniq = pd.factorize(pd.Series(keys, dtype=object), sort=True)
    n = np.bincount(code, minlength=len(uniq))
    counts = np.column_stack([np.bincount(code, weights=(outcome == r), minlength=len(uniq)) for r in RATES])
    return pd.Index(uniq, dtype=object), n, counts


def _level(keys, outcome, prior: np.ndarray, strength: float | None = None) -> _Level:
    """Shrunk rates of the entities ``keys``; ``prior`` is (rows x RATES) or one row for all."""
    index, n, counts = _counts(keys, outcome)
    a = _strength(counts[:, 0], n) if strength is None else strength
    rates = (counts + a * np.broadcast_to(prior, counts.shape)) / (n[:, None] + a)
    return _Level(index, n, rates, a)


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
    def fit(cls, referrals: pd.DataFrame) -> "TrackRecord":
        """Tables from referral rows with columns worker_id, job_id, employer, kind (index into
        KIND_CODES), place and outcome."""
        outcome = referrals["outcome"].to_numpy(object)
        n = len(outcome)
        overall = np.array([(outcome == r).mean() if n else 0.0 for r in RATES])
        kind = referrals["kind"].to_numpy(np.int64)
        k_n = np.bincount(kind, minlength=len(KIND_CODES))
        k_counts = np.column_stack([np.bincount(kind, weights=(outcome == r), minlength=len(KIND_CODES))
                                    for r in RATES])
        a_kind = 20.0                  # five kinds: too few to estimate a prior from, and each has plenty
        kind_rates = (k_counts + a_kind * overall) / (k_n[:, None] + a_kind)
        worker = _level(referrals["worker_id"].to_numpy(object), outcome, overall)
        place = _level(referrals["place"].to_numpy(object), outcome, overall)
        # an employer's prior is its kind's (an employer's jobs are of one kind, or the first one's)
        emp_keys = referrals["employer"].to_numpy(object)
        e_index, _, _ = _counts(emp_keys, outcome)
        first_kind = pd.Series(kind).groupby(pd.Series(emp_keys, dtype=object)).first().reindex(e_index).to_numpy()
        employer = _level(emp_keys, outcome, kind_rates[first_kind])
        # a job's prior is its employer's shrunk rate
        job_keys = referrals["job_id"].to_numpy(object)
        j_index, _, _ = _counts(job_keys, outcome)
        job_emp = pd.Series(emp_keys).groupby(pd.Series(job_keys, dtype=object)).first().reindex(j_index).to_numpy()
        job = _level(job_keys, outcome, employer.rates[employer.lookup(job_emp)])
        return cls(overall=overall, kind=kind_rates, worker=worker, job=job, employer=employer, place=place,
                   n_referrals=int(n))

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


def referral_rows(W, J, p, outcome: np.ndarray) -> pd.DataFrame:
    """Referral pairs as the rows TrackRecord.fit reads."""
    return pd.DataFrame({
        "worker_id": np.asarray(W.ids, dtype=object)[p.w], "job_id": np.asarray(J.ids, dtype=object)[p.j],
        "employer": np.asarray(J.employer, dtype=object)[p.j], "kind": np.asarray(J.kind)[p.j],
        "place": job_place(J.village, J.town)[p.j], "outcome": np.asarray(outcome, dtype=object)})


def out_of_fold(W, J, p, outcome: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Track-record columns for each referral from the tables of the other folds (random folds)."""
    rows = referral_rows(W, J, p, outcome)
    fold = np.random.default_rng(seed).integers(0, folds, len(rows))
    X = np.empty((len(rows), len(TRACK_FEATURES)), dtype=np.float64, order="F")
    place = job_place(J.village, J.town)
    for k in range(folds):
        inside = fold == k
        if not inside.any():
            continue
        tr = TrackRecord.fit(rows[~inside])
        w, j = p.w[inside], p.j[inside]
        uw, wi = np.unique(w, return_inverse=True)
        uj, ji = np.unique(j, return_inverse=True)
        wb = tr.worker_block(np.asarray(W.ids, dtype=object)[uw])
        jb = tr.job_block(np.asarray(J.ids, dtype=object)[uj], np.asarray(J.employer, dtype=object)[uj],
                          np.asarray(J.kind)[uj], place[uj])
        X[inside] = _gather(wb, jb, wi, ji)
    return X

