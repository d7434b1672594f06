"""Metrics as free functions: ranking over logged referrals, calibration, concentration,
and the bootstrap that puts an interval around any of them.

The ranking metrics take the outcome of every logged referral (1 hired, 0 not), the
score a scorer gave it, and the group its list belongs to (a job's candidate list, a
household's options). A group whose list is not longer than k cannot be reordered into
or out of the top k, so it says nothing about the ranking and is left out.

Ties are scored by their expectation under a random order of the tied items, never by
the order of the log: a scorer that gives many referrals the same score (the
skill-overlap baseline does) gets neither credit nor blame for the order the volunteers
happened to type them in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import hypergeom


def _ranked(y, scores, groups) -> pd.DataFrame:
    """One row per referral, sorted best first within its group, with its tie block.

    ``start``/``end`` are the 0-based positions the tie block spans within the group, so
    an item of the block sits at each of those positions with equal chance.
    """
    s = np.asarray(scores, float)
    df = pd.DataFrame({"y": np.asarray(y, float), "s": np.where(np.isnan(s), -np.inf, s),
                       "g": pd.Series(np.asarray(groups)).astype(str).to_numpy()})
    df = df.sort_values(["g", "s"], ascending=[True, False], kind="mergesort")
    df["pos"] = df.groupby("g").cumcount()
    df["size"] = df.groupby("g")["y"].transform("size")
    block = df.groupby(["g", "s"], sort=False)["pos"]
    df["start"] = block.transform("min")
    df["end"] = block.transform("max") + 1
    return df


def _top_share(df: pd.DataFrame, k: int) -> np.ndarray:
    """Chance each item lands in the top k (1 or 0 unless its tie block straddles position k)."""
    inside = np.clip(np.minimum(df["end"].to_numpy(), k) - df["start"].to_numpy(), 0, None)
    return inside / (df["end"] - df["start"]).to_numpy()


def _long(df: pd.DataFrame, k: int) -> pd.DataFrame:
    return df[df["size"] > k]


def _result(per_group: pd.Series, return_groups: bool):
    if return_groups:
        return per_group
    return None if per_group.empty else float(per_group.mean())


def precision_at_k(y, scores, groups, k: int = 5, *, return_groups: bool = False):
    """Mean over groups with more than k referrals of (hires among the top k) / k.

    With ``return_groups`` the per-group values (a Series indexed by group) instead.
    """
    df = _long(_ranked(y, scores, groups), k)
    hits = df["y"].to_numpy() * _top_share(df, k)
    per = pd.Series(hits, index=df.index).groupby(df["g"]).sum() / k
    return _result(per, return_groups)


def recall_at_k(y, scores, groups, k: int = 5, *, return_groups: bool = False):
    """Mean over groups with more than k referrals and a hire of (hires in the top k) / hires."""
    df = _long(_ranked(y, scores, groups), k)
    df = df[df.groupby("g")["y"].transform("sum") > 0]
    hits = pd.Series(df["y"].to_numpy() * _top_share(df, k), index=df.index).groupby(df["g"]).sum()
    per = hits / df.groupby("g")["y"].sum()
    return _result(per, return_groups)


def _discount_cumsum(n: int) -> np.ndarray:
    """D[m] = sum of 1 / log2(pos + 2) over positions 0 .. m-1."""
    return np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(n) + 2.0))]


def ndcg_at_k(y, scores, groups, k: int = 5, *, return_groups: bool = False):
    """Mean NDCG@k (binary gains) over groups with more than k referrals and at least one hire.

    A tied item's discount is the mean of the discounts of the positions its block spans
    (positions past k count 0), which is its expected discount under a random tie order.
    """
    df = _long(_ranked(y, scores, groups), k)
    df = df[df.groupby("g")["y"].transform("sum") > 0]
    if df.empty:
        return _result(pd.Series(dtype=float), return_groups)
    D = _discount_cumsum(k)
    start = np.minimum(df["start"].to_numpy(), k)
    end = np.minimum(df["end"].to_numpy(), k)
    expected_disc = (D[end] - D[start]) / (df["end"] - df["start"]).to_numpy()
    dcg = pd.Series(df["y"].to_numpy() * expected_disc, index=df.index).groupby(df["g"]).sum()
    hires = df.groupby("g")["y"].sum().clip(upper=k).astype(int)
    ideal = pd.Series(D[hires.to_numpy()], index=hires.index)
    return _result(dcg / ideal, return_groups)


def success_at_k(y, scores, groups, k: int = 5, *, return_groups: bool = False):
    """Share of groups (households) with at least one hire among their top k (groups longer than k).

    When a tie block straddles position k, the chance that the slots left for it draw at
    least one of its hires is hypergeometric.
    """
    df = _long(_ranked(y, scores, groups), k)
    if df.empty:
        return _result(pd.Series(dtype=float), return_groups)
    start, end = df["start"].to_numpy(), df["end"].to_numpy()
    sure = pd.Series((end <= k) & (df["y"].to_numpy() > 0), index=df.index).groupby(df["g"]).any()
    edge = df[(start < k) & (end > k)]
    p_edge = pd.Series(0.0, index=sure.index)
    if not edge.empty:
        blk = edge.groupby("g").agg(m=("y", "size"), h=("y", "sum"), start=("start", "first"))
        draws = (k - blk["start"]).to_numpy()
        p_none = hypergeom.pmf(0, blk["m"].to_numpy(), blk["h"].to_numpy().astype(int), draws)
        p_edge.loc[blk.index] = 1.0 - p_none
    per = sure.astype(float).where(sure, p_edge)
    return _result(per, return_groups)


# -- separation ----------------------------------------------------------------------------

def roc_auc(y, scores, sample_weight=None) -> float | None:
    """Area under the ROC curve (ties count one half), optionally weighted; None without both classes.

    The chance that a hire scores above a non-hire. A few times faster than scikit-learn's
    for the many resamples of a bootstrap.
    """
    y = np.asarray(y).astype(bool)
    s = np.asarray(scores, float)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    order = np.argsort(s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    block = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1 if len(s) else np.zeros(0, np.int64)
    pos = np.bincount(block, weights=w * y)
    neg = np.bincount(block, weights=w * ~y)
    P, N = pos.sum(), neg.sum()
    if P <= 0 or N <= 0:
        return None
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + 0.5 * neg)) / (P * N))


# -- calibration ---------------------------------------------------------------------------

def calibration_curve(y, p, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins over [0, 1]: per non-empty bin, its count, mean prediction and hire rate."""
    y = np.asarray(y, float)
    p = np.clip(np.asarray(p, float), 0.0, 1.0)
    b = np.minimum((p * n_bins).astype(int), n_bins - 1)
    df = pd.DataFrame({"bin": b, "y": y, "p": p})
    out = df.groupby("bin").agg(n=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    out["lower"] = out.index / n_bins
    out["upper"] = (out.index + 1) / n_bins
    return out.reset_index()[["bin", "lower", "upper", "n", "mean_predicted", "observed_rate"]]


def expected_calibration_error(y, p, n_bins: int = 10) -> float | None:
    """ECE: the count-weighted mean gap between mean prediction and hire rate over equal-width bins."""
    if len(np.asarray(y)) == 0:
        return None
    c = calibration_curve(y, p, n_bins)
    return float((c["n"] * (c["mean_predicted"] - c["observed_rate"]).abs()).sum() / c["n"].sum())


def precision_recall(y, p, threshold: float) -> dict:
    """Precision and recall when a score at or above ``threshold`` counts as a predicted hire."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(p, float) >= threshold
    tp = int((y & pred).sum())
    return {"precision": tp / int(pred.sum()) if pred.any() else None,
            "recall": tp / int(y.sum()) if y.any() else None,
            "predicted_hires": int(pred.sum()), "hires": int(y.sum())}


# -- concentration -------------------------------------------------------------------------

def gini(values) -> float | None:
    """Gini coefficient of non-negative amounts: 0 all equal, towards 1 all on one item."""
    x = np.sort(np.asarray(values, float))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return None if n == 0 else 0.0
    i = np.arange(1, n + 1)
    return float(2.0 * np.sum(i * x) / (n * x.sum()) - (n + 1.0) / n)


# -- intervals -----------------------------------------------------------------------------

def bootstrap_weights(n_groups: int, n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """(n_boot, n_groups) counts: how often each group is drawn in each resample of the groups."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=n_boot) if n_groups else \
        np.zeros((n_boot, 0), dtype=np.int64)


def bootstrap_replicates(statistic, weights: np.ndarray) -> np.ndarray:
    """``statistic(w)`` for every row ``w`` of ``weights`` (NaN where it returns None).

    ``statistic`` takes one resample as a count per group. Passing the same weights to
    several statistics pairs them, so their difference gets an honest interval too.
    """
    out = np.full(len(weights), np.nan)
    for i, w in enumerate(weights):
        v = statistic(w)
        if v is not None:
            out[i] = v
    return out


def percentile_interval(replicates: np.ndarray, alpha: float = 0.05) -> tuple[float, float] | None:
    """The (alpha/2, 1 - alpha/2) quantiles of the finite replicates; None when there are none."""
    r = np.asarray(replicates, float)
    r = r[np.isfinite(r)]
    if len(r) == 0:
        return None
    lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(statistic, weights: np.ndarray, alpha: float = 0.05) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic`` over resamples of the groups (see above)."""
    return percentile_interval(bootstrap_replicates(statistic, weights), alpha)


def weighted_mean(per_group: np.ndarray, w: np.ndarray) -> float | None:
    """The mean of per-group values under resample counts ``w`` (NaN groups ignored)."""
    ok = ~np.isnan(per_group) & (w > 0)
    return float(np.dot(per_group[ok], w[ok]) / w[ok].sum()) if ok.any() else None
