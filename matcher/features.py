"""Pair features: what the model sees of a (worker, job) pair, and the transformers it uses.

:func:`pair_features` turns candidate pairs into one numeric matrix whose columns are
:data:`FEATURES`, vectorised over pairs. Transformers here are proper scikit-learn
estimators (they pass ``parametrize_with_checks``) so they sit in the model's Pipeline.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from matcher.eligibility import KIND, KIND_CODES, JobArrays, Pairs, WorkerArrays
from matcher.skills import popcount

FEATURES: tuple[str, ...] = (
    "distance_km",        # great-circle km; NaN for out-of-county work (no commute)
    "skill_coverage",     # share of the job's required skills the worker has (1 when none required)
    "missing_skills",     # required skills the worker lacks
    "required_skills",
    "worker_skills",      # the worker's skills that some job asks for
    "monthly_wage",
    "age",
    "age_room",           # years inside the job's age band, from the nearer bound
    "female",
    "disabled",
    "disability_grade",   # 1 most severe .. 4; 0 when not disabled
    "education",          # 0 none .. 5 college
    "partial_capacity",
    "demand_slack",       # heaviest demand allowed minus the job's demand (>= 0 when eligible)
    "physical_demand",
    "functions_required",
    "home_only",
    "will_migrate",
    "graduate",
    "fallback_eligible",  # disabled or 4050
    "same_village",       # the job is in the worker's own village
    "same_town",
    "functions_lacking",  # functions the job needs that the worker lacks (0 for eligible pairs)
    "distance_over",      # km beyond the worker's reach (0 for eligible pairs)
    *(f"kind_{k}" for k in KIND_CODES),
)
FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}
# Not a feature: a job's free slots. The store holds today's count, which the logged
# hires themselves filled, so it would leak the outcome into the history it learns from.


def skill_overlap(W: WorkerArrays, J: JobArrays, p: Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Covered and required skill counts per pair (a popcount over bit masks)."""
    covered = popcount(W.skills[p.w] & J.skills[p.j])
    return covered, J.n_required[p.j]


def coverage_share(covered: np.ndarray, required: np.ndarray) -> np.ndarray:
    return np.where(required > 0, covered / np.maximum(required, 1), 1.0)


def pair_features(W: WorkerArrays, J: JobArrays, p: Pairs, covered: np.ndarray | None = None) -> np.ndarray:
    """The (n_pairs, len(FEATURES)) float matrix for candidate pairs.

    ``covered`` overrides the covered-skill counts (used to ask "what if the worker
    learned this skill").
    """
    w, j = p.w, p.j
    n = len(p)
    required = J.n_required[j]
    if covered is None:
        covered, _ = skill_overlap(W, J, p)
    X = np.empty((n, len(FEATURES)), dtype=np.float64, order="F")     # filled a column at a time
    col = FEATURE_INDEX
    X[:, col["distance_km"]] = p.distance_km
    X[:, col["skill_coverage"]] = coverage_share(covered, required)
    X[:, col["missing_skills"]] = required - covered
    X[:, col["required_skills"]] = required
    X[:, col["worker_skills"]] = W.n_skills[w]
    X[:, col["monthly_wage"]] = J.wage[j]
    age = W.age[w]
    X[:, col["age"]] = age
    X[:, col["age_room"]] = np.minimum(age - J.min_age[j], J.max_age[j] - age)
    X[:, col["female"]] = W.female[w]
    X[:, col["disabled"]] = W.disabled[w]
    X[:, col["disability_grade"]] = W.grade[w]
    X[:, col["education"]] = W.education[w]
    X[:, col["partial_capacity"]] = W.partial[w]
    X[:, col["demand_slack"]] = W.max_demand[w] - J.demand[j]
    X[:, col["physical_demand"]] = J.demand[j]
    X[:, col["functions_required"]] = J.n_requires[j]
    X[:, col["home_only"]] = W.home_only[w]
    X[:, col["will_migrate"]] = W.will_migrate[w]
    X[:, col["graduate"]] = W.graduate[w]
    X[:, col["fallback_eligible"]] = W.fallback[w]
    jv = J.village_key[j]
    X[:, col["same_village"]] = (jv != -1) & (jv == W.village_key[w])
    jt = J.town_key[j]
    X[:, col["same_town"]] = (jt != -1) & (jt == W.town_key[w])
    X[:, col["functions_lacking"]] = np.bitwise_count((J.requires[j] & W.lost[w]).astype(np.uint64))
    kind = J.kind[j]
    with np.errstate(invalid="ignore"):
        over = np.nan_to_num(p.distance_km, nan=0.0) - np.where(kind == KIND["workshop_home"], W.home_delivery_km, W.commute_km[w])
    X[:, col["distance_over"]] = np.maximum(over, 0.0)
    for i, k in enumerate(KIND_CODES):
        X[:, col[f"kind_{k}"]] = kind == i
    return X


class QuantileClipper(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Clip each column to quantiles learned in ``fit``; missing values pass through.

    A wage typed with three extra zeros or a commute of 20,000 km should not stretch
    the model's view of the range. Clipping is monotone, so the monotonic constraints
    of the classifier after it still hold end to end.

    Parameters
    ----------
    lower : float, default=0.001
        Quantile below which values are raised to it.
    upper : float, default=0.999
        Quantile above which values are lowered to it.
    """

    def __init__(self, lower: float = 0.001, upper: float = 0.999):
        self.lower = lower
        self.upper = upper

    def fit(self, X, y=None):
        if not 0.0 <= self.lower < self.upper <= 1.0:
            raise ValueError(f"need 0 <= lower < upper <= 1, got lower={self.lower}, upper={self.upper}")
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                lo = np.nanquantile(X, self.lower, axis=0)
                hi = np.nanquantile(X, self.upper, axis=0)
        self.lower_ = np.where(np.isnan(lo), -np.inf, lo)
        self.upper_ = np.where(np.isnan(hi), np.inf, hi)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64, reset=False, copy=True)
        return np.clip(X, self.lower_, self.upper_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
