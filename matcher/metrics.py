"""Ranking metrics as free functions over logged referrals.

Each takes the outcome of every logged referral (1 hired, 0 not), the score a scorer
gave it, and the group its list belongs to (a job's candidate list, a household's
options). A group whose list is not longer than k cannot be reordered into or out of
the top k, so it says nothing about the ranking and is left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _ranked(y, scores, groups) -> pd.DataFrame:
    df = pd.DataFrame({"y": np.asarray(y, float), "s": np.asarray(scores, float),
                       "g": pd.Series(groups).astype(str).to_numpy()})
    # Ties broken by the order of the log, not by outcome: no scorer gets credit for luck.
    df["order"] = np.arange(len(df))
    df = df.sort_values(["g", "s", "order"], ascending=[True, False, True], kind="mergesort")
    df["rank"] = df.groupby("g").cumcount() + 1
    df["size"] = df.groupby("g")["y"].transform("size")
    return df


def precision_at_k(y, scores, groups, k: int = 5) -> float | None:
    """Mean over groups with more than k referrals of (hires among the top k) / k."""
    df = _ranked(y, scores, groups)
    df = df[df["size"] > k]
    if df.empty:
        return None
    top = df[df["rank"] <= k].groupby("g")["y"].sum() / k
    return float(top.mean())


def ndcg_at_k(y, scores, groups, k: int = 5) -> float | None:
    """Mean NDCG@k (binary gains) over groups with more than k referrals and at least one hire."""
    df = _ranked(y, scores, groups)
    df = df[df["size"] > k]
    df = df[df.groupby("g")["y"].transform("sum") > 0]
    if df.empty:
        return None
    disc = 1.0 / np.log2(df["rank"].to_numpy() + 1.0)
    df = df.assign(gain=np.where(df["rank"] <= k, df["y"] * disc, 0.0))
    dcg = df.groupby("g")["gain"].sum()
    hires = df.groupby("g")["y"].sum().clip(upper=k).astype(int)
    ideal = hires.map(lambda h: float(np.sum(1.0 / np.log2(np.arange(2, h + 2)))))
    return float((dcg / ideal).mean())


def success_at_k(y, scores, groups, k: int = 5) -> float | None:
    """Share of groups (households) with at least one hire among their top k (groups longer than k)."""
    df = _ranked(y, scores, groups)
    df = df[df["size"] > k]
    if df.empty:
        return None
    return float((df[df["rank"] <= k].groupby("g")["y"].max() > 0).mean())
