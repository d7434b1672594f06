"""The model: pipeline, training on referral history, the prior scorer, artifact + manifest I/O.

A model is a :class:`MatchModel`: a P(hire) scorer (a calibrated scikit-learn Pipeline,
or the documented :class:`PriorScorer` when there is no usable history) and, when the
history has enough six-month retention labels, a P(retained | hired) pipeline. It is saved
with joblib next to a JSON manifest (SPEC section 6); loading checks the artifact's
SHA-256 and the library versions against the manifest *before* unpickling.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline

from matcher.eligibility import JobArrays, Pairs, WorkerArrays, pair_distance
from matcher.errors import ModelError
from matcher.features import FEATURE_INDEX, FEATURES, QuantileClipper, pair_features
from matcher.history import TRACK_FEATURES, TRACK_MONOTONIC, TrackRecord, out_of_fold, track_features
from matcher.policy import Policy
from matcher.schema import World, to_csv_frame
from matcher.skills import SkillIndex

PRODUCTION_POINTER = "production"
CHECKED_LIBRARIES = ("scikit-learn", "numpy", "joblib")


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "joblib": joblib.__version__}


# -- scorers ---------------------------------------------------------------------------------

class PriorScorer:
    """The documented score used when there is no referral history to learn from.

    logit = -1.2 + 2.0 * skill_coverage - 0.06 * distance_km + 0.5 * (wage - 2,500) / 1,000
            + 0.4 if a workshop job (at the door, on-the-job training)
    distance counts as 0 for out-of-county work. It says what a volunteer would say:
    skills that fit, a short way and a better wage raise the chance of a hire. It is
    not learned, and the manifest says so (``kind: prior``).
    """

    kind = "prior"

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        col = FEATURE_INDEX
        dist = np.nan_to_num(X[:, col["distance_km"]], nan=0.0)
        z = (-1.2 + 2.0 * X[:, col["skill_coverage"]] - 0.06 * dist
             + 0.5 * (X[:, col["monthly_wage"]] - 2500.0) / 1000.0
             + 0.4 * (X[:, col["kind_workshop_factory"]] + X[:, col["kind_workshop_home"]]))
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p, p])


class NearestFirst:
    """Baseline: the nearest eligible job first (out-of-county last)."""

    kind = "baseline"

    def predict_proba(self, X):
        d = np.nan_to_num(np.asarray(X, float)[:, FEATURE_INDEX["distance_km"]], nan=1e4)
        p = 1.0 / (1.0 + d)
        return np.column_stack([1 - p, p])


class SkillOverlapOnly:
    """Baseline: the share of the job's required skills the worker has, nothing else."""

    kind = "baseline"

    def predict_proba(self, X):
        p = np.clip(np.asarray(X, float)[:, FEATURE_INDEX["skill_coverage"]], 0, 1)
        return np.column_stack([1 - p, p])


LARGE_TRAINING_SET = 200_000


def build_pipeline(policy: Policy, random_state: int = 0, n_samples: int | None = None,
                   features: tuple[str, ...] = FEATURES) -> Pipeline:
    """QuantileClipper -> monotone gradient boosting, calibrated (isotonic, cross-validated).

    Small trees, many of them, strongly regularised: most of what decides a hire (a
    worker's motivation, a job's appeal) is not observed, and deeper trees overfit the
    rest. Chosen on generated worlds of 1,500 and 6,800 households, later referrals held
    out: 100 trees at rate 0.15 score as well as 300 at 0.05 (AUC 0.709/0.703 against
    0.703/0.703) and a household is scored three times faster.

    Monotonic constraints come from the policy; isotonic calibration is monotone too,
    so the constraints hold for the calibrated probability.

    From ``LARGE_TRAINING_SET`` training rows on (``n_samples``), the isotonic step is fitted
    on one stratified fifth held out instead of three cross-validation folds: 40,000 or
    more referrals calibrate as well (AUC, Brier, ECE unchanged at 300k) and the fit costs
    a third, which brings a million referrals under a minute (bench/train.md).
    """
    unknown = set(policy.model.monotonic) - set(FEATURES) - set(TRACK_FEATURES)
    if unknown:
        raise ModelError(f"policy model.monotonic names unknown features: {sorted(unknown)}")
    monotonic = {**TRACK_MONOTONIC, **policy.model.monotonic}
    cst = [monotonic.get(name, 0) for name in features]
    hgb = HistGradientBoostingClassifier(
        learning_rate=0.15, max_iter=100, max_leaf_nodes=7, min_samples_leaf=80,
        l2_regularization=3.0, monotonic_cst=cst, early_stopping=False, random_state=random_state)
    if n_samples is not None and n_samples >= LARGE_TRAINING_SET:
        from sklearn.model_selection import StratifiedShuffleSplit
        split = StratifiedShuffleSplit(n_splits=1, test_size=0.2, random_state=random_state)
        calibrated = CalibratedClassifierCV(hgb, method="isotonic", cv=split, ensemble=True)
    else:
        calibrated = CalibratedClassifierCV(hgb, method="isotonic", cv=3, ensemble=False)
    return Pipeline([("clip", QuantileClipper()), ("classifier", calibrated)])


BINNED_FROM = 4_096        # rows from which binning once beats comparing raw values in every tree
BLOCK = 65_536            # rows walked through all the trees at a time


class FastPipeline:
    """The fitted QuantileClipper -> HistGradientBoosting -> isotonic pipeline, evaluated
    without scikit-learn's per-call input checks.

    One household's pairs are a few hundred rows; for them the wrappers' validation
    (array checks, label encoders) cost more than the trees. This calls the same fitted
    tree predictors and the same isotonic thresholds directly. It is built only when
    the pipeline has exactly the expected shape, and kept only if it reproduces the
    pipeline's probabilities on a probe matrix (to 1e-9); otherwise the pipeline itself
    is used.
    """

    def __init__(self, pipeline: Pipeline):
        clip = pipeline.named_steps["clip"]
        calibrated = pipeline.named_steps["classifier"]
        (cc,) = calibrated.calibrated_classifiers_
        (iso,) = cc.calibrators
        hgb = cc.estimator
        if cc.method != "isotonic" or hgb.n_trees_per_iteration_ != 1 or list(calibrated.classes_) != [0, 1]:
            raise TypeError("not a binary isotonic-calibrated boosting pipeline")
        self.lower, self.upper = clip.lower_, clip.upper_
        self.baseline = float(np.ravel(hgb._baseline_prediction)[0])
        self.trees = [it[0] for it in hgb._predictors]
        self.bitsets, self.f_idx_map = hgb._bin_mapper.make_known_categories_bitsets()
        self.bin_mapper, self.missing_bin = hgb._bin_mapper, hgb._bin_mapper.missing_values_bin_idx_
        # Binning makes clipping redundant for a column whose bin thresholds all lie strictly inside its
        # clip bounds: a value beyond a bound falls in the same (first or last) bin as the bound itself.
        # The other columns are binned again from their clipped values.
        self.clip_before_binning = np.array([
            not ((np.isneginf(lo) or (t > lo).all()) and (np.isposinf(hi) or (t < hi).all()))
            for lo, hi, t in zip(self.lower, self.upper, self.bin_mapper.bin_thresholds_)], dtype=bool)
        self.x_min, self.x_max = float(iso.X_min_), float(iso.X_max_)
        self.x_thr, self.y_thr = np.asarray(iso.X_thresholds_, float), np.asarray(iso.y_thresholds_, float)

    def positive(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """P(class 1) per row."""
        X = np.asarray(X, dtype=np.float64)
        if len(X) <= BINNED_FROM:
            X = np.clip(X, self.lower, self.upper)
            raw = np.full(len(X), self.baseline)
            for tree in self.trees:
                raw += tree.predict(X, self.bitsets, self.f_idx_map, threads)
        else:
            with _controller().limit(limits=threads, user_api="openmp") if threads > 1 else nullcontext():
                raw = np.concatenate([self._raw_binned(X[i:i + BLOCK], threads)
                                      for i in range(0, len(X), BLOCK)])
        return np.interp(np.clip(raw, self.x_min, self.x_max), self.x_thr, self.y_thr)

    def predict_proba(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        p = self.positive(X, threads)
        return np.column_stack([1.0 - p, p])

    def _raw_binned(self, X: np.ndarray, threads: int) -> np.ndarray:
        """Many rows: bin them once with the model's own bin mapper (a value goes left at a split exactly
        when its bin does, missing values to the missing bin), then walk every tree over the small uint8
        matrix, a block at a time so it stays in cache. Same leaves, same sums: the same result."""
        binned = self.bin_mapper.transform(X)         # on the threads the caller's limit allows
        for k in np.flatnonzero(self.clip_before_binning):
            col = np.clip(X[:, k], self.lower[k], self.upper[k])
            # the bin mapper's rule: the number of thresholds below the value; missing to the missing bin
            b = np.searchsorted(self.bin_mapper.bin_thresholds_[k], col, side="left")
            binned[:, k] = np.where(np.isnan(col), self.missing_bin, b)
        raw = np.full(len(X), self.baseline)
        for tree in self.trees:
            raw += tree.predict_binned(binned, self.missing_bin, threads)
        return raw

    @classmethod
    def verified(cls, pipeline, probe: np.ndarray):
        try:
            fast = cls(pipeline)
        except (AttributeError, KeyError, TypeError, ValueError):
            return None
        expected = pipeline.predict_proba(probe)
        if not np.allclose(fast.predict_proba(probe), expected, rtol=0, atol=1e-9):
            return None
        many = np.tile(probe, (BINNED_FROM // len(probe) + 1, 1))         # the binned path, checked too
        if not np.allclose(fast.predict_proba(many), np.tile(expected, (BINNED_FROM // len(probe) + 1, 1)),
                           rtol=0, atol=1e-9):
            return None
        return fast


def probe_matrix(n: int = 512, seed: int = 0, features: tuple[str, ...] = FEATURES) -> np.ndarray:
    """Feature rows spanning plausible ranges (with missing distances), to check a fast path."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(0, 30, n)] + [rng.integers(0, 6, n).astype(float)
                                                      for _ in range(len(FEATURES) - 1)])
    X[:, FEATURE_INDEX["skill_coverage"]] = rng.uniform(0, 1, n)
    X[:, FEATURE_INDEX["monthly_wage"]] = rng.uniform(400, 8000, n)
    X[:, FEATURE_INDEX["age"]] = rng.integers(16, 65, n)
    X[rng.random(n) < 0.1, FEATURE_INDEX["distance_km"]] = np.nan
    if len(features) > len(FEATURES):           # track-record columns: counts, and rates in [0, 1]
        T = rng.uniform(0, 1, (n, len(TRACK_FEATURES)))
        for i, name in enumerate(TRACK_FEATURES):
            if name.endswith("_referrals"):
                T[:, i] = rng.integers(0, 40, n)
        X = np.column_stack([X, T])
    return X


@dataclass
class MatchModel:
    """What an artifact holds: the hire scorer, an optional retention scorer, and facts about them."""

    hire: object
    retain: object | None = None
    kind: str = "learned"                 # learned | prior
    features: tuple[str, ...] = FEATURES
    version: str = ""
    info: dict = field(default_factory=dict)
    # The track-record tables (then features end in TRACK_FEATURES): ``track`` of every referral the
    # model was given, for serving; ``track_cut`` of those before its held-out cut, for measuring it.
    track: TrackRecord | None = None
    track_cut: TrackRecord | None = None

    def matrix(self, W: WorkerArrays, J: JobArrays, p: Pairs, covered: np.ndarray | None = None,
               base: np.ndarray | None = None, held_out: bool = False) -> np.ndarray:
        """The feature matrix this model scores for pairs p: the pair features (``base`` when
        already computed), then the track-record columns from the artifact's own tables: those of
        every referral it was given when serving, those before its cut when ``held_out`` (scoring
        the referrals it is measured on, whose own outcomes must not be in the tables)."""
        X = pair_features(W, J, p, covered) if base is None else base
        if self.track is None:
            return X
        track = self.track_cut if held_out and self.track_cut is not None else self.track
        return np.column_stack([X, track_features(track, W, J, p)])

    def __post_init__(self):
        self._fast = {}

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_fast", None)
        return state

    def __setstate__(self, state):
        self.__dict__.setdefault("track", None)
        self.__dict__.setdefault("track_cut", None)
        self.__dict__.update(state)
        self._fast = {}

    def _scorer(self, name: str):
        """The verified fast path of a fitted pipeline, else the scorer itself."""
        est = getattr(self, name)
        if name not in self._fast:
            fast = (FastPipeline.verified(est, probe_matrix(features=tuple(self.features)))
                    if isinstance(est, Pipeline) else None)
            self._fast[name] = fast or est
        return self._fast[name]

    def score(self, X: np.ndarray, threads: int = 1) -> np.ndarray:
        """P(hire) per row. ``threads`` > 1 lets the verified fast path walk the trees on that many
        threads: for large batch jobs (the city-wide plan), never for one household's request."""
        if len(X) == 0:
            return np.zeros(0)
        with _one_thread():
            scorer = self._scorer("hire")
            if isinstance(scorer, FastPipeline):
                return scorer.positive(X, threads=threads)
            return scorer.predict_proba(X)[:, 1]

    def retention(self, X: np.ndarray) -> np.ndarray | None:
        if self.retain is None or len(X) == 0:
            return None
        with _one_thread():
            return self._scorer("retain").predict_proba(X)[:, 1]


@lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


def _one_thread():
    """Scoring runs on one thread. For one household's pairs, waking an OpenMP team costs
    more than it saves; on a busy 2-core machine spinning threads made a household's p99
    730 ms against 26 ms, and scoring the whole city 9 s against 2.4 s. The service gets
    its parallelism from several worker processes instead. Input validation is skipped
    (matcher builds the matrix itself), which halves the cost of a small call."""
    from contextlib import ExitStack
    stack = ExitStack()
    stack.enter_context(_controller().limit(limits=1))
    stack.enter_context(sklearn.config_context(assume_finite=True, skip_parameter_validation=True))
    return stack


def prior_model() -> MatchModel:
    return MatchModel(hire=PriorScorer(), kind="prior", version="prior")


# -- training data -----------------------------------------------------------------------

@dataclass
class TrainingSet:
    X: np.ndarray
    hired: np.ndarray
    retained: np.ndarray          # 1/0, or -1 when unknown / not hired
    dates: np.ndarray
    worker_ids: np.ndarray
    job_ids: np.ndarray
    household_ids: np.ndarray
    W: WorkerArrays | None = None
    J: JobArrays | None = None
    pairs: Pairs | None = None
    outcome: np.ndarray | None = None
    open_then: np.ndarray | None = None     # the job still had a slot no earlier hire had taken

    def matrix(self, model: "MatchModel", rows: np.ndarray) -> np.ndarray:
        """The matrix ``model`` scores for the referrals ``rows`` (a boolean mask or indices): the
        track-record columns come from the model's own tables, fitted before its cut."""
        idx = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return model.matrix(self.W, self.J, self.pairs.take(idx), base=self.X[idx], held_out=True)


def referral_pairs(world: World, policy: Policy) -> tuple[WorkerArrays, JobArrays, Pairs, pd.DataFrame]:
    """The logged referrals as pairs over the world's workers and jobs (eligible or not)."""
    J = JobArrays.build(world.jobs, SkillIndex())
    W = WorkerArrays.build(world.workers, world.households, policy, J.skill_index, J.words)
    ref = world.referrals.reset_index(drop=True)
    w = pd.Index(W.ids).get_indexer(ref["worker_id"])
    j = pd.Index(J.ids).get_indexer(ref["job_id"])
    if (w < 0).any() or (j < 0).any():
        raise ModelError("a referral names a worker or job that is not in the world")
    d = pair_distance(W, J, w, j)
    return W, J, Pairs(w.astype(np.int64), j.astype(np.int64), d), ref


def training_set(world: World, policy: Policy) -> TrainingSet:
    W, J, p, ref = referral_pairs(world, policy)
    X = pair_features(W, J, p)
    retained = ref["retained_6m"].astype("float").fillna(-1).to_numpy()
    hired = (ref["outcome"] == "hired").to_numpy(np.int64)
    retained = np.where(hired == 1, retained, -1).astype(np.int64)
    return TrainingSet(X=X, hired=hired, retained=retained, open_then=open_then(ref, world.jobs),
                       dates=ref["referred_on"].to_numpy("datetime64[ns]"),
                       worker_ids=W.ids[p.w], job_ids=J.ids[p.j], household_ids=W.household[p.w],
                       W=W, J=J, pairs=p, outcome=ref["outcome"].to_numpy(object))


def open_then(ref: pd.DataFrame, jobs: pd.DataFrame) -> np.ndarray:
    """Per referral: did its job still have a free slot, counting the hires of earlier days?

    A referral to a job whose slots earlier hires had already taken can only end in a rejection
    (position filled): it says nothing about the pair, and the service never proposes such a job
    (eligibility asks for a free slot). Training and the held-out test leave these referrals out.
    Only outcomes of strictly earlier days count, so a referral's own outcome never decides it.
    """
    if not len(ref):
        return np.zeros(0, bool)
    slots = ref["job_id"].map(jobs.set_index("job_id")["slots"]).to_numpy(float)
    day = ref["referred_on"].to_numpy("datetime64[D]").astype(np.int64)
    code, _ = pd.factorize(ref["job_id"])
    hired = (ref["outcome"] == "hired").to_numpy(np.int64)
    order = np.lexsort((day, code))
    c, d, h = code[order], day[order], hired[order]
    before = np.cumsum(h) - h
    idx = np.arange(len(c))
    key_start = np.maximum.accumulate(np.where(np.r_[True, c[1:] != c[:-1]], idx, 0))
    day_start = np.maximum.accumulate(np.where(np.r_[True, (c[1:] != c[:-1]) | (d[1:] != d[:-1])], idx, 0))
    earlier = np.empty(len(c), np.int64)
    earlier[order] = before[day_start] - before[key_start]
    return ~(earlier >= slots)


def time_split(dates: np.ndarray, holdout_fraction: float, cut: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Train on earlier referrals, test on later ones: by a cut date or by the latest share."""
    if cut:
        t = np.datetime64(pd.Timestamp(cut).to_datetime64())
    else:
        t = np.sort(dates)[int(len(dates) * (1 - holdout_fraction))] if len(dates) else None
    test = dates >= t if t is not None else np.zeros(len(dates), bool)
    return ~test, test


def data_hash(world: World) -> str:
    """SHA-256 over the world's four tables as their CSV text: which data trained a model."""
    h = hashlib.sha256()
    for name, df in world.tables().items():
        h.update(name.encode())
        h.update(to_csv_frame(name, df, personal=False).to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return h.hexdigest()


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    if len(y) == 0 or len(np.unique(y)) < 2:
        return {"n": int(len(y)), "auc": None, "brier": None, "log_loss": None}
    return {"n": int(len(y)), "auc": float(roc_auc_score(y, p)), "brier": float(brier_score_loss(y, p)),
            "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6)))}


def fit(world: World, policy: Policy, cut: str | None = None, random_state: int = 0,
        track_record: bool = False, data_sha256: str | None = None) -> tuple[MatchModel, dict]:
    """Fit on referrals before the cut, measure on those after; the prior when history is thin.

    The returned model is the one measured: it has not seen the held-out referrals, so
    its manifest's metrics are honest for it. With ``track_record`` the model also sees each
    pair's track record (:mod:`matcher.history`): out of fold for the training referrals,
    from the tables of every training referral for the held-out ones and at serving time;
    those tables are part of the artifact. Off by default: on the measured worlds it does not
    improve the ranking or the plan and costs a third more training time (bench/quality.md,
    bench/train.md); ``matcher train --track-record`` turns it on.
    """
    from matcher.metrics import precision_at_k
    import time

    clock = {"start": time.perf_counter()}
    ts = training_set(world, policy)
    clock["features"] = time.perf_counter()
    train, test = time_split(ts.dates, policy.model.holdout_fraction, cut)
    first_test = str(pd.Timestamp(ts.dates[test].min()).date()) if test.any() else None
    info_filled = int((~ts.open_then).sum())
    train, test = train & ts.open_then, test & ts.open_then
    enough = train.sum() >= policy.model.min_referrals and len(np.unique(ts.hired[train])) == 2
    info = {"n_referrals": int(len(ts.hired)), "n_train": int(train.sum()), "n_test": int(test.sum()),
            "cut": first_test, "left_out_position_filled": info_filled}
    if not enough:
        model = prior_model()
        info["why_prior"] = (f"{int(train.sum())} labelled referrals before the cut; the policy asks for at "
                             f"least {policy.model.min_referrals} with both hires and non-hires")
    else:
        track = track_cut = None
        features, X_train = FEATURES, ts.X[train]
        if track_record:
            tr_idx = np.flatnonzero(train)
            p_train = ts.pairs.take(tr_idx)
            sha = data_sha256 or data_hash(world)
            track_cut = TrackRecord.from_pairs(ts.W, ts.J, p_train, ts.outcome[tr_idx])
            track_cut.cut, track_cut.data_sha256 = info["cut"], sha
            every = np.flatnonzero(train | test)
            track = TrackRecord.from_pairs(ts.W, ts.J, ts.pairs.take(every), ts.outcome[every])
            track.data_sha256 = sha
            features = FEATURES + TRACK_FEATURES
            X_train = np.column_stack([X_train, out_of_fold(ts.W, ts.J, p_train, ts.outcome[tr_idx],
                                                            seed=random_state)])
            info["track_record"] = {"serving": track.summary(), "before_cut": track_cut.summary()}
        clock["track_record"] = time.perf_counter()
        with _controller().limit(limits=1):   # see _one_thread: 1M rows in 21 s on one thread, 33 s on two
            pipe = build_pipeline(policy, random_state, int(train.sum()), features).fit(X_train, ts.hired[train])
        clock["hire_model"] = time.perf_counter()
        retain = None
        known = (ts.retained[train] >= 0)
        if known.sum() >= 50 and len(np.unique(ts.retained[train][known])) == 2:
            # calibrated on a held-out fifth when the hire model is (a large history): the retention
            # labels are then 100,000+ hires, plenty for it, and three folds would cost four fits
            n_retain = int(known.sum()) if train.sum() < LARGE_TRAINING_SET else LARGE_TRAINING_SET
            with _controller().limit(limits=1):
                retain = build_pipeline(policy, random_state, n_retain, features).fit(
                    X_train[known], ts.retained[train][known])
        model = MatchModel(hire=pipe, retain=retain, kind="learned", features=features, track=track,
                           track_cut=track_cut)
        clock["retention_model"] = time.perf_counter()
        marks = list(clock.items())
        info["seconds"] = {name: round(t - marks[i][1], 2) for i, (name, t) in enumerate(marks[1:])}
    metrics = {}
    scorers = {"model": model, "nearest_first": NearestFirst(), "skill_overlap": SkillOverlapOnly(),
               "prior": PriorScorer()}
    X_test = ts.X[test]
    for name, scorer in scorers.items():
        if not test.any():
            break
        p = (model.score(ts.matrix(model, test)) if name == "model"
             else scorer.predict_proba(X_test)[:, 1])
        m = binary_metrics(ts.hired[test], p)
        m["precision_at_5"] = precision_at_k(ts.hired[test], p, ts.job_ids[test], k=5)
        metrics[name] = m
    return model, {"holdout": metrics, "data": info}


# -- artifacts ---------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(model: MatchModel, out_dir: str | Path, *, metrics: dict, data_sha256: str,
         now: datetime | None = None) -> Path:
    """Write ``<version>.joblib`` and ``<version>.json``; return the artifact's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    now = now or datetime.now(timezone.utc)
    version = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{model.kind}-{data_sha256[:8]}"
    model.version = version
    tmp = out / f".{version}.joblib.tmp"
    joblib.dump(model, tmp, compress=3)
    artifact = out / f"{version}.joblib"
    os.replace(tmp, artifact)
    manifest = {
        "version": version,
        "created": now.isoformat(),
        "kind": model.kind,
        "libraries": library_versions(),
        "features": list(model.features),
        "training_data_sha256": data_sha256,
        "metrics": metrics,
        "retention_model": model.retain is not None,
        "artifact": artifact.name,
        "artifact_sha256": _sha256(artifact),
    }
    _atomic_write(out / f"{version}.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))
    return artifact


def manifest_path(path: str | Path) -> Path:
    p = Path(path)
    return p if p.suffix == ".json" else p.with_suffix(".json")


def read_manifest(path: str | Path) -> dict:
    m = manifest_path(path)
    try:
        return json.loads(m.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"model manifest {m} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"model manifest {m} is not valid JSON: {exc}") from None


def load(path: str | Path) -> tuple[MatchModel, dict]:
    """Load an artifact after checking its SHA-256 and library versions against the manifest."""
    manifest = read_manifest(path)
    artifact = manifest_path(path).parent / str(manifest.get("artifact", ""))
    if not artifact.is_file():
        raise ModelError(f"model artifact {artifact} does not exist")
    digest = _sha256(artifact)
    if digest != manifest.get("artifact_sha256"):
        raise ModelError(f"model artifact {artifact.name} does not match its manifest's SHA-256 "
                         f"(file {digest[:12]}…, manifest {str(manifest.get('artifact_sha256'))[:12]}…); refused")
    have = library_versions()
    want = manifest.get("libraries", {})
    for lib in CHECKED_LIBRARIES:
        if want.get(lib) != have[lib]:
            raise ModelError(f"model {manifest.get('version')} was built with {lib} {want.get(lib)}, "
                             f"this service runs {have[lib]}; refused")
    try:
        model = joblib.load(artifact)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable artifact
        raise ModelError(f"model artifact {artifact.name} could not be loaded: {type(exc).__name__}") from None
    expected = FEATURES + (TRACK_FEATURES if getattr(model, "track", None) is not None else ())
    if not isinstance(model, MatchModel) or tuple(model.features) != expected:
        raise ModelError(f"model artifact {artifact.name} does not hold a matcher model with this feature list")
    model.version = manifest["version"]
    model.info = {k: manifest.get(k) for k in ("created", "kind", "metrics", "training_data_sha256")}
    return model, manifest


def production_path(models_dir: str | Path) -> Path | None:
    """The production model: the promoted one if a pointer exists, else the newest manifest."""
    d = Path(models_dir)
    pointer = d / PRODUCTION_POINTER
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if name:
            return d / name
    manifests = sorted(p for p in d.glob("*.json") if not p.name.startswith("."))
    return manifests[-1] if manifests else None


def set_production(models_dir: str | Path, manifest: str | Path) -> None:
    """Point production at a manifest, atomically (write a temp file, then rename)."""
    _atomic_write(Path(models_dir) / PRODUCTION_POINTER, (manifest_path(manifest).name + "\n").encode())
