"""Offline evaluation: an honest time split, the model beside its baselines with bootstrap
intervals, calibration and fairness by group, congestion and coverage of the
recommendations, the promotion gate, and the report a bureau official can read.

The flow is one way: world + model -> the held-out referrals and their scores -> metrics
(plain dicts, JSON as they are) -> gate decisions and the report. The metrics themselves
are free functions in :mod:`matcher.metrics`.

Choices worth knowing (the report repeats them):

- The test split is every referral on or after the cut; the model must not have been
  trained on any of them. By default the cut is the one the model was trained with (its
  manifest's ``metrics.data.cut``); an earlier cut on the same data is refused.
- Bootstrap intervals resample whole groups, seeded: jobs for AUC, Brier, log loss and
  the job-list ranking metrics (a job's referrals share the job), households for
  household success@k. The same resamples are used for every scorer, so the interval of
  the model's difference from a baseline is paired; "better" means that interval lies
  wholly on the better side of zero.
- The baselines are rankers, not probabilities: their Brier score and log loss say that
  they are not calibrated, not that they rank worse.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from matcher import metrics as mx
from matcher import model as m
from matcher.eligibility import KIND, KIND_CODES
from matcher.errors import MatcherError
from matcher.features import pair_features
from matcher.policy import Policy
from matcher.schema import World

SCORERS = ("model", "nearest_first", "skill_overlap", "prior")
BASELINES = SCORERS[1:]
SCORER_LABEL = {"model": "model", "nearest_first": "nearest eligible first",
                "skill_overlap": "skill overlap only", "prior": "prior scorer"}
SCORER_ZH = {"model": "模型", "nearest_first": "就近优先", "skill_overlap": "仅看技能匹配", "prior": "先验评分"}
HIGHER_IS_BETTER = {"auc": True, "brier": False, "log_loss": False, "precision": True, "ndcg": True, "success": True}
METRIC_ZH = {"auc": "区分能力 AUC", "brier": "Brier 分数（越低越好）", "log_loss": "对数损失（越低越好）",
             "precision": "岗位前k名录用率", "ndcg": "岗位排序质量 NDCG", "success": "家庭前k名至少一人录用"}

# Attribute -> (the group it marks, the rest). The 4050 ages are the policy's fallback ages.
GROUPS = {"disability": ("disabled", "not_disabled"), "age_4050": ("4050", "younger"),
          "sex": ("women", "men"), "graduate": ("graduates", "others")}
GROUP_ZH = {"disabled": "残疾人", "not_disabled": "非残疾人", "4050": "大龄（女40+/男50+）", "younger": "较年轻",
            "women": "女性", "men": "男性", "graduates": "特困家庭高校毕业生", "others": "非毕业生"}
# A group needs this many held-out referrals before the gate judges its calibration error.
# ECE over ten bins is biased upwards in small samples: for a perfectly calibrated model with
# this world's score levels it exceeds 0.10 in 30% of samples of 50, 6% of 100, 0.2% of 200.
# (A candidate for the policy file.)
MIN_GROUP_N = 200
RECOMMEND_K = 10
FOUR_FIFTHS = 0.8
COUNTY_LABEL = {"371102": "Donggang", "371103": "Lanshan", "371121": "Wulian", "371122": "Ju County",
                "371171": "Dev. Zone"}


def baseline_scorers() -> dict:
    return {"nearest_first": m.NearestFirst(), "skill_overlap": m.SkillOverlapOnly(), "prior": m.PriorScorer()}


def metric_name(metric: str, k: int) -> str:
    return f"{metric}_at_{k}" if metric in ("precision", "ndcg", "success") else metric


def worker_groups(workers: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """One boolean column per attribute of :data:`GROUPS` (True: the first group), by worker_id."""
    female = (workers["sex"] == "F").to_numpy()
    age = workers["age"].to_numpy()
    fb = policy.fallback
    return pd.DataFrame({
        "disability": (workers["disability"] != "none").to_numpy(),
        "age_4050": np.where(female, age >= fb.women_min_age, age >= fb.men_min_age),
        "sex": female,
        "graduate": workers["graduate"].to_numpy(bool),
    }, index=workers["worker_id"].to_numpy())


# -- the split -------------------------------------------------------------------------------

def trained_cut(manifest: dict | None) -> str | None:
    """The first date the model did not train on (its manifest's held-out cut), if it says."""
    if not manifest:
        return None
    return ((manifest.get("metrics") or {}).get("data") or {}).get("cut")


def check_split(manifest: dict | None, world_sha256: str, cut: str) -> list[str]:
    """Refuse a test split holding referrals the model was trained on; return warnings.

    On the model's own data (same SHA-256) a cut before its training cut is refused. On
    other data the overlap cannot be checked, so it is a warning.
    """
    if not manifest or manifest.get("kind") == "prior":
        return []
    same = manifest.get("training_data_sha256") == world_sha256
    tcut = trained_cut(manifest)
    name = manifest.get("version", "the model")
    if tcut is None:
        if same:
            raise MatcherError(f"{name} was trained on every referral of this world (no held-out cut): "
                               f"nothing is left to test it on; retrain with `matcher train --cut DATE`")
        return [f"{name} holds no training cut; this world is not its training data, so overlap is not checked"]
    if pd.Timestamp(cut) < pd.Timestamp(tcut):
        if same:
            raise MatcherError(f"test split from {cut} overlaps the referrals {name} was trained on (before {tcut}); "
                               f"use --cut {tcut} or later")
        return [f"this world is not {name}'s training data, and the test split starts ({cut}) before its training "
                f"cut ({tcut}): if the worlds share referrals, the model has seen some of the test"]
    if not same:
        return [f"this world is not {name}'s training data (SHA-256 differs); its referrals before {tcut} were "
                f"the model's, these are not checked"]
    return []


def choose_cut(dates: np.ndarray, policy: Policy, manifest: dict | None = None, cut: str | None = None) -> str:
    """The cut asked for, else the model's training cut, else the policy's latest share."""
    if cut:
        try:
            return str(pd.Timestamp(cut).date())
        except (ValueError, TypeError):
            raise MatcherError(f"--cut must be a date YYYY-MM-DD, got {cut!r}", field="cut") from None
    tcut = trained_cut(manifest)
    if tcut:
        return tcut
    _, test = m.time_split(dates, policy.model.holdout_fraction)
    if not test.any():
        raise MatcherError("the world has no referrals to hold out")
    return str(pd.Timestamp(dates[test].min()).date())


@dataclass
class Holdout:
    """The held-out referrals (on or after ``cut``) and what every scorer made of them."""

    cut: str
    n_train: int
    y: np.ndarray
    scores: dict[str, np.ndarray]
    worker_ids: np.ndarray
    job_ids: np.ndarray
    household_ids: np.ndarray
    groups: pd.DataFrame            # one row per held-out referral, columns of GROUPS


def holdout(world: World, policy: Policy, model: m.MatchModel, cut: str,
            ts: m.TrainingSet | None = None) -> Holdout:
    ts = ts or m.training_set(world, policy)
    train, test = m.time_split(ts.dates, policy.model.holdout_fraction, cut)
    test &= ts.open_then                # referrals to a job already full say nothing of the pair (model.open_then)
    if not test.any():
        raise MatcherError(f"no referral on or after {cut} to test on")
    if len(np.unique(ts.hired[test])) < 2:
        raise MatcherError(f"the referrals from {cut} on are all {'hires' if ts.hired[test][0] else 'non-hires'}: "
                           f"nothing to tell apart; choose an earlier --cut")
    X = ts.X[test]
    scores = {"model": model.score(ts.matrix(model, test))}
    scores.update({name: s.predict_proba(X)[:, 1] for name, s in baseline_scorers().items()})
    groups = worker_groups(world.workers, policy).reindex(ts.worker_ids[test]).reset_index(drop=True)
    return Holdout(cut=cut, n_train=int((train & ts.open_then).sum()), y=ts.hired[test], scores=scores,
                   worker_ids=ts.worker_ids[test], job_ids=ts.job_ids[test],
                   household_ids=ts.household_ids[test], groups=groups)


# -- the model beside its baselines ------------------------------------------------------------

def _per_group(values: pd.Series, index: pd.Index) -> np.ndarray:
    return values.reindex(index.astype(str)).to_numpy(float)


def _scorer_statistics(h: Holdout, s: np.ndarray, k: int, household_k: int, job_code, jobs, hh_code, hhs) -> dict:
    """metric -> (point value, statistic over resample counts, which resample: 'job' or 'household')."""
    y = h.y.astype(float)
    n_jobs = len(jobs)
    rows_per_job = np.bincount(job_code, minlength=n_jobs).astype(float)

    def auc(w=None):
        return mx.roc_auc(y, s, None if w is None else w[job_code])

    def mean_loss(loss):
        per_job = np.bincount(job_code, weights=loss, minlength=n_jobs)
        return (float(loss.mean()),
                lambda w: float(np.dot(w, per_job) / np.dot(w, rows_per_job)) if np.dot(w, rows_per_job) else None)

    p = np.clip(s, 1e-6, 1 - 1e-6)
    brier = mean_loss((s - y) ** 2)
    logl = mean_loss(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    out = {"auc": (auc(), auc, "job"), "brier": (*brier, "job"), "log_loss": (*logl, "job")}
    for metric, fn, code_index, unit in (("precision", mx.precision_at_k, jobs, "job"),
                                         ("ndcg", mx.ndcg_at_k, jobs, "job"),
                                         ("success", mx.success_at_k, hhs, "household")):
        groups = h.job_ids if unit == "job" else h.household_ids
        per = _per_group(fn(h.y, s, groups, k if unit == "job" else household_k, return_groups=True), code_index)
        point = float(np.nanmean(per)) if np.isfinite(per).any() else None
        out[metric] = (point, (lambda per: lambda w: mx.weighted_mean(per, w))(per), unit)
    return out


def _verdict(diff_ci, higher_is_better: bool) -> str:
    if diff_ci is None:
        return "not measurable"
    lo, hi = diff_ci
    if (lo > 0 and higher_is_better) or (hi < 0 and not higher_is_better):
        return "better"
    if (hi < 0 and higher_is_better) or (lo > 0 and not higher_is_better):
        return "worse"
    return "no clear difference"


def compare_scorers(h: Holdout, k: int = 5, household_k: int = 1, n_boot: int = 200, seed: int = 0,
                    alpha: float = 0.05) -> dict:
    """Every metric for every scorer with its interval, and the model's paired difference
    from each baseline with a verdict.

    Job lists are cut at ``k``; household lists at ``household_k`` (default 1): most
    households have one to four held-out referrals, and only where a list is longer than
    the cut can a scorer's order change anything.
    """
    job_code, jobs = pd.factorize(pd.Series(h.job_ids).astype(str))
    hh_code, hhs = pd.factorize(pd.Series(h.household_ids).astype(str))
    weights = {"job": mx.bootstrap_weights(len(jobs), n_boot, seed),
               "household": mx.bootstrap_weights(len(hhs), n_boot, seed + 1)}
    reps: dict[str, dict[str, np.ndarray]] = {}
    values: dict[str, dict[str, dict]] = {}
    for name in SCORERS:
        stats = _scorer_statistics(h, h.scores[name], k, household_k, job_code, jobs, hh_code, hhs)
        for metric, (point, statistic, unit) in stats.items():
            r = mx.bootstrap_replicates(statistic, weights[unit]) if point is not None else np.full(n_boot, np.nan)
            reps.setdefault(metric, {})[name] = r
            ci = mx.percentile_interval(r, alpha) if point is not None else None
            values.setdefault(metric, {})[name] = {"value": point, "ci": list(ci) if ci else None}
    comparison = {}
    for metric, by_scorer in reps.items():
        comparison[metric] = {}
        for b in BASELINES:
            v_m, v_b = values[metric]["model"]["value"], values[metric][b]["value"]
            if v_m is None or v_b is None:
                comparison[metric][b] = {"difference": None, "ci": None, "verdict": "not measurable"}
                continue
            ci = mx.percentile_interval(by_scorer["model"] - by_scorer[b], alpha)
            comparison[metric][b] = {"difference": v_m - v_b, "ci": list(ci) if ci else None,
                                     "verdict": _verdict(ci, HIGHER_IS_BETTER[metric])}
    rename = {metric: metric_name(metric, household_k if metric == "success" else k) for metric in values}
    return {"metrics": {rename[a]: v for a, v in values.items()},
            "comparison": {rename[a]: v for a, v in comparison.items()},
            "bootstrap": {"resamples": n_boot, "seed": seed, "level": 1 - alpha,
                          "unit": {rename[a]: ("household" if a == "success" else "job") for a in values},
                          "jobs": int(len(jobs)), "households": int(len(hhs))}}


# -- calibration and fairness by group ----------------------------------------------------------

def _group_masks(frame: pd.DataFrame):
    for attr, (yes, no) in GROUPS.items():
        col = frame[attr].to_numpy(bool)
        yield attr, yes, col
        yield attr, no, ~col


def calibration_by_group(h: Holdout, policy: Policy, scorer: str = "model", n_bins: int = 10) -> dict:
    """Per group of held-out referrals: size, hire rate, mean score, ECE and its curve, AUC,
    and precision and recall when a score at the viability threshold counts as a hire."""
    s = h.scores[scorer]
    thr = policy.fallback.viability_threshold
    out: dict = {"all": _calibration(h.y, s, thr, n_bins)}
    for attr, name, mask in _group_masks(h.groups):
        out.setdefault(attr, {})[name] = _calibration(h.y[mask], s[mask], thr, n_bins)
    return out


def _calibration(y: np.ndarray, s: np.ndarray, threshold: float, n_bins: int) -> dict:
    n = int(len(y))
    if n == 0:
        return {"n": 0}
    pr = mx.precision_recall(y, s, threshold)
    return {"n": n, "hires": int(y.sum()), "hire_rate": float(y.mean()), "mean_score": float(s.mean()),
            "ece": mx.expected_calibration_error(y, s, n_bins),
            "auc": mx.roc_auc(y, s),
            "precision": pr["precision"], "recall": pr["recall"],
            "judged": n >= MIN_GROUP_N,
            "curve": mx.calibration_curve(y, s, n_bins).to_dict(orient="records")}


# -- recommendations: who gets them, and how they spread over jobs ----------------------------

def top_k_rows(W, J, pairs, score: np.ndarray, policy: Policy, k: int) -> np.ndarray:
    """Indices of the pairs :meth:`Engine.recommend` lists for these scores: per worker the
    top k market jobs, then the top k public-welfare posts when the worker needs them."""
    if not len(pairs):
        return np.zeros(0, np.int64)
    welfare = J.kind[pairs.j] == KIND["public_welfare"]
    order = np.lexsort((J.id_rank[pairs.j], -score, welfare, pairs.w))
    w, wf, s = pairs.w[order], welfare[order], score[order]
    n = len(order)
    starts = np.r_[True, (w[1:] != w[:-1]) | (wf[1:] != wf[:-1])]
    rank = np.arange(n) - np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    viable = np.zeros(len(W), dtype=np.int64)
    np.add.at(viable, w[~wf], s[~wf] >= policy.fallback.viability_threshold)
    from matcher.ranking import fallback_reasons
    needs = fallback_reasons(W, policy, np.bincount(w[~wf], minlength=len(W)), viable) != None  # noqa: E711
    return order[(rank < k) & (~wf | needs[w])]


def _job_top_k(pairs, score: np.ndarray, k: int) -> np.ndarray:
    """Indices of each job's k best-scored eligible candidates (what a recruiter sees first)."""
    order = np.lexsort((pairs.w, -score, pairs.j))
    j = pairs.j[order]
    starts = np.r_[True, j[1:] != j[:-1]] if len(j) else np.zeros(0, bool)
    rank = np.arange(len(j)) - np.maximum.accumulate(np.where(starts, np.arange(len(j)), 0))
    return order[rank < k]


def congestion(J, rows_j: np.ndarray) -> dict:
    """Coverage and concentration of recommendations over the open jobs with a free slot."""
    open_rows = np.flatnonzero(J.open)
    counts = np.bincount(rows_j, minlength=len(J))[open_rows]
    free = J.free[open_rows].astype(float)
    per_slot = counts / np.maximum(free, 1)
    return {
        "open_jobs": int(len(open_rows)),
        "free_slots": int(free.sum()),
        "recommendations": int(counts.sum()),
        "jobs_recommended_share": float((counts > 0).mean()) if len(counts) else None,
        "gini": mx.gini(counts),
        "candidates_per_free_slot": {
            "overall": float(counts.sum() / free.sum()) if free.sum() else None,
            "median": float(np.median(per_slot)) if len(per_slot) else None,
            "p90": float(np.quantile(per_slot, 0.9)) if len(per_slot) else None,
            "max": float(per_slot.max()) if len(per_slot) else None,
        },
    }


@dataclass
class Recommendations:
    """Eligible pairs of the world, every scorer's score for them, and each scorer's top-k rows."""

    W: object
    J: object
    pairs: object
    scores: dict[str, np.ndarray]
    rows: dict[str, np.ndarray]
    k: int


def recommendations(world: World, policy: Policy, model: m.MatchModel, k: int = RECOMMEND_K) -> Recommendations:
    from matcher.ranking import Engine
    engine = Engine.build(world, model, policy)
    sc = engine.score()
    X = pair_features(engine.W, engine.J, sc.pairs, sc.covered)
    scores = {"model": sc.score}
    scores.update({name: s.predict_proba(X)[:, 1] for name, s in baseline_scorers().items()})
    rows = {name: top_k_rows(engine.W, engine.J, sc.pairs, s, policy, k) for name, s in scores.items()}
    return Recommendations(engine.W, engine.J, sc.pairs, scores, rows, k)


def recommendation_audit(rec: Recommendations, world: World, policy: Policy) -> dict:
    """Each group's share among the model's top-k recommendations against its share among
    eligible workers; coverage and congestion for the model and for each baseline."""
    W, p = rec.W, rec.pairs
    groups = worker_groups(world.workers, policy).reindex(W.ids).reset_index(drop=True)
    eligible_workers = np.unique(p.w)
    top = rec.rows["model"]
    s = rec.scores["model"]
    viable = top[s[top] >= policy.fallback.viability_threshold]
    job_top = _job_top_k(p, s, rec.k)
    shares: dict = {}
    for attr, name, mask in _group_masks(groups):
        def share(idx):
            return float(mask[idx].mean()) if len(idx) else None
        e = share(eligible_workers)
        t = share(p.w[top])
        shares.setdefault(attr, {})[name] = {
            "eligible_workers": e,
            "top_k_recommendations": t,
            "viable_top_k_recommendations": share(p.w[viable]),
            "eligible_candidates": share(p.w),
            "job_top_k_candidates": share(p.w[job_top]),
            "ratio": (t / e) if e and t is not None else None,
            "mean_score_eligible": float(s[mask[p.w]].mean()) if mask[p.w].any() else None,
        }
    return {
        "k": rec.k,
        "eligible_workers": int(len(eligible_workers)),
        "eligible_pairs": int(len(p)),
        "group_shares": shares,
        "under_represented": under_represented(shares),
        "congestion": {name: congestion(rec.J, p.j[rows]) for name, rows in rec.rows.items()},
        "eligible_candidates_per_free_slot": congestion(rec.J, p.j)["candidates_per_free_slot"],
    }


def under_represented(shares: dict, floor: float = FOUR_FIFTHS) -> list[str]:
    """Groups whose share at the top is below ``floor`` times their share of those eligible
    (the four-fifths rule of thumb for adverse impact), worker side and recruiter side."""
    out = []
    for attr, by in shares.items():
        for name, d in by.items():
            for top, base, where in (("top_k_recommendations", "eligible_workers", "workers' top-k job lists"),
                                     ("job_top_k_candidates", "eligible_candidates", "jobs' top-k candidate lists")):
                t, b = d.get(top), d.get(base)
                if t is not None and b and t < floor * b:
                    out.append(f"{name}: {100 * t:.1f}% of {where} against {100 * b:.1f}% of those eligible "
                               f"(ratio {t / b:.2f})")
    return out


# -- the whole evaluation ---------------------------------------------------------------------

@dataclass
class Evaluation:
    metrics: dict
    holdout: Holdout
    recommendations: Recommendations | None
    world: World = field(repr=False)


def evaluate(world: World, policy: Policy, model: m.MatchModel | None = None, manifest: dict | None = None, *,
             cut: str | None = None, k: int = 5, household_k: int = 1, n_boot: int = 200, seed: int = 0, alpha: float = 0.05,
             recommend_k: int = RECOMMEND_K, audit_recommendations: bool = True) -> Evaluation:
    """Evaluate ``model`` (fitted here on the referrals before the cut when None) on the
    referrals on or after the cut, beside the baselines; see the module docstring."""
    ts = m.training_set(world, policy)
    sha = m.data_hash(world)
    cut = choose_cut(ts.dates, policy, manifest, cut)
    warnings = check_split(manifest, sha, cut)
    about = {"version": getattr(model, "version", None), "kind": getattr(model, "kind", None),
             "trained_cut": trained_cut(manifest),
             "training_data_sha256": (manifest or {}).get("training_data_sha256")}
    if model is None:
        model, fit_metrics = m.fit(world, policy, cut=cut, random_state=seed)
        about = {"version": "fitted-here", "kind": model.kind, "trained_cut": cut, "training_data_sha256": sha,
                 "note": f"no model given: fitted here on the {fit_metrics['data']['n_train']} referrals before {cut}"}
    h = holdout(world, policy, model, cut, ts)
    test_dates = pd.Series(ts.dates[ts.dates >= np.datetime64(pd.Timestamp(cut))])
    busiest = test_dates.value_counts()
    if len(busiest) and busiest.iloc[0] > 0.5 * len(test_dates) and len(busiest) > 1:
        warnings.append(f"{busiest.iloc[0]} of the {len(test_dates)} test referrals fall on one day "
                        f"({pd.Timestamp(busiest.index[0]).date()}): the history looks piled up at that date, so the "
                        f"test is mostly one day; consider an earlier --cut")
    elif len(busiest) == 1 and len(test_dates) > 50:
        warnings.append(f"all {len(test_dates)} test referrals fall on {pd.Timestamp(busiest.index[0]).date()}: "
                        f"the test is one day of history; consider an earlier --cut")
    out = {
        "model": about,
        "world": {"data_sha256": sha, "referrals": int(len(ts.hired)), "workers": int(len(world.workers)),
                  "jobs": int(len(world.jobs))},
        "split": {"cut": cut, "n_train": h.n_train, "n_test": int(len(h.y)), "test_hires": int(h.y.sum()),
                  "test_hire_rate": float(h.y.mean()), "rule": "test = referrals on or after the cut"},
        "warnings": warnings,
        "k": k,
    }
    out["household_k"] = household_k
    out.update(compare_scorers(h, k, household_k, n_boot, seed, alpha))
    out["calibration"] = {"model": calibration_by_group(h, policy),
                          "baselines_ece": {b: mx.expected_calibration_error(h.y, h.scores[b]) for b in BASELINES},
                          "bins": 10, "min_group_n": MIN_GROUP_N,
                          "viability_threshold": policy.fallback.viability_threshold,
                          "max_group_ece": policy.gate.max_group_ece}
    rec = None
    if audit_recommendations:
        rec = recommendations(world, policy, model, recommend_k)
        out["recommendations"] = recommendation_audit(rec, world, policy)
    out["summary"] = summary(out)
    return Evaluation(metrics=_jsonable(out), holdout=h, recommendations=rec, world=world)


def summary(out: dict) -> dict:
    """Plain sentences: where the model beats every baseline, and where it does not."""
    beats, not_beats = [], []
    for metric, by_b in out["comparison"].items():
        for b, c in by_b.items():
            v = out["metrics"][metric]
            line = (f"{metric}: model {_fmt(v['model']['value'])} vs {SCORER_LABEL[b]} {_fmt(v[b]['value'])} "
                    f"(difference {_fmt(c['difference'], sign=True)}, {_ci(c['ci'])})")
            (beats if c["verdict"] == "better" else not_beats).append(
                line if c["verdict"] == "better" else f"{line}: {c['verdict']}")
    return {"beats": beats, "does_not_beat": not_beats}


def _fmt(v, sign: bool = False) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.3f}" if sign else f"{v:.3f}"


def _ci(ci) -> str:
    return "interval n/a" if not ci else f"95% interval {ci[0]:+.3f} to {ci[1]:+.3f}"


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    return x


# -- the promotion gate ---------------------------------------------------------------------

@dataclass
class GateResult:
    ok: bool
    reasons: list[str]
    checks: dict

    @property
    def message(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "passes the gate"


def gate_numbers(h: Holdout, policy: Policy) -> dict:
    """What the gate looks at, for the model of a holdout: AUC, precision@5, ECE per group."""
    cal = calibration_by_group(h, policy)
    ece = {"all": (cal["all"]["ece"], cal["all"]["n"])}
    for attr in GROUPS:
        for name, c in cal[attr].items():
            ece[name] = (c.get("ece"), c["n"])
    return {"auc": mx.roc_auc(h.y, h.scores["model"]),
            "precision_at_5": mx.precision_at_k(h.y, h.scores["model"], h.job_ids, 5),
            "group_ece": ece,
            "baseline_auc": {b: mx.roc_auc(h.y, h.scores[b]) for b in BASELINES}}


def gate(candidate: dict, production: dict | None, policy: Policy) -> GateResult:
    """Refuse a candidate worse than production beyond the policy's tolerance on AUC or
    precision@5, or with any judged group's ECE above the policy's limit.

    With no production model the candidate must beat every baseline on AUC instead: a
    first model has nothing to be compared with but what the bureau would do without one.
    """
    g = policy.gate
    reasons = []
    for name, (ece, n) in candidate["group_ece"].items():
        if ece is not None and n >= MIN_GROUP_N and ece > g.max_group_ece:
            reasons.append(f"calibration error for {name} is {ece:.3f} (n={n}), above the limit {g.max_group_ece}")
    if production is None:
        best = max(candidate["baseline_auc"], key=candidate["baseline_auc"].get)
        if candidate["auc"] <= candidate["baseline_auc"][best]:
            reasons.append(f"AUC {candidate['auc']:.3f} does not beat the {SCORER_LABEL[best]} baseline "
                           f"({candidate['baseline_auc'][best]:.3f}) and there is no production model to compare with")
    else:
        if candidate["auc"] < production["auc"] - g.auc_tolerance:
            reasons.append(f"AUC {candidate['auc']:.3f} is below production's {production['auc']:.3f} "
                           f"by more than {g.auc_tolerance}")
        cp, pp = candidate["precision_at_5"], production["precision_at_5"]
        if cp is not None and pp is not None and cp < pp - g.precision_at_5_tolerance:
            reasons.append(f"precision@5 {cp:.3f} is below production's {pp:.3f} by more than "
                           f"{g.precision_at_5_tolerance}")
    return GateResult(ok=not reasons, reasons=reasons,
                      checks=_jsonable({"candidate": candidate, "production": production}))


def promote(world: World, policy: Policy, candidate_path: str | Path, models_dir: str | Path) -> tuple[GateResult, Path]:
    """Gate the candidate against the production model of ``models_dir`` on the same test
    split (on or after the later of the two training cuts, so neither has seen it) and,
    when it passes, point production at it atomically.

    The production model is the one the pointer file names. Without a pointer nothing has
    passed the gate yet (and the newest-manifest fallback would usually be the candidate
    itself), so the candidate is checked against the baselines and the ECE limit only; the
    same when the named model can no longer be loaded.
    """
    models_dir = Path(models_dir)
    cand, cand_manifest = m.load(candidate_path)
    pointer = models_dir / m.PRODUCTION_POINTER
    prod = prod_manifest = None
    unusable = []
    if pointer.is_file() and pointer.read_text(encoding="utf-8").strip():
        prod_path = m.production_path(models_dir)
        try:
            prod, prod_manifest = m.load(prod_path)
        except MatcherError as exc:
            # A production model the service cannot load (say, after a library upgrade) serves
            # nobody; it must not block its replacement, which then faces the first-model gate.
            unusable.append(f"the production model cannot be loaded ({exc}); the candidate is gated against the "
                            f"baselines only")
    ts = m.training_set(world, policy)
    sha = m.data_hash(world)
    cuts = [c for c in (trained_cut(cand_manifest), trained_cut(prod_manifest)) if c]
    cut = max(cuts) if cuts else choose_cut(ts.dates, policy)
    warnings = unusable + [w for mf in (cand_manifest, prod_manifest) for w in check_split(mf, sha, cut)]
    h = holdout(world, policy, cand, cut, ts)
    candidate = gate_numbers(h, policy)
    production = None
    if prod is not None:
        production = gate_numbers(holdout(world, policy, prod, cut, ts), policy)
        production["version"] = prod_manifest["version"]
    result = gate(candidate, production, policy)
    result.checks["cut"] = cut
    result.checks["n_test"] = int(len(h.y))
    result.checks["warnings"] = warnings
    target = models_dir / m.manifest_path(candidate_path).name
    if result.ok:
        if m.manifest_path(candidate_path).resolve() != target.resolve():
            _copy_model(Path(candidate_path), cand_manifest, models_dir)
        m.set_production(models_dir, target)
    return result, target


def _copy_model(path: Path, manifest: dict, models_dir: Path) -> None:
    """Bring an artifact and its manifest into the models folder (temp file, then rename)."""
    src = m.manifest_path(path).parent
    for name in (manifest["artifact"], m.manifest_path(path).name):
        m._atomic_write(models_dir / name, (src / name).read_bytes())


# -- the report -------------------------------------------------------------------------------

def _figure(w: float = 7.0, h: float = 4.0):
    from matplotlib.figure import Figure
    return Figure(figsize=(w, h), dpi=110, layout="constrained")


PLOT_COLORS = {"model": "#1f77b4", "nearest_first": "#ff7f0e", "skill_overlap": "#2ca02c", "prior": "#9467bd"}


def plot_metric_bars(metrics: dict):
    names = list(metrics["metrics"])
    fig = _figure(10, 6)
    axes = fig.subplots(2, (len(names) + 1) // 2).ravel()
    for ax, name in zip(axes, names):
        by = metrics["metrics"][name]
        vals = [by[s]["value"] if by[s]["value"] is not None else np.nan for s in SCORERS]
        err = np.array([[v - by[s]["ci"][0], by[s]["ci"][1] - v] if by[s]["ci"] and np.isfinite(v) else [0, 0]
                        for s, v in zip(SCORERS, vals)]).T
        ax.bar(range(len(SCORERS)), vals, yerr=np.clip(err, 0, None), capsize=4,
               color=[PLOT_COLORS[s] for s in SCORERS])
        ax.set_xticks(range(len(SCORERS)), ["model", "nearest", "skills", "prior"], fontsize=8)
        better = "higher is better" if HIGHER_IS_BETTER[name.split("_at_")[0]] else "lower is better"
        ax.set_title(f"{name} ({better})", fontsize=9)
        if name == "log_loss":
            ax.set_yscale("log")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    fig.suptitle("Held-out referrals: model vs baselines (bars: 95% bootstrap intervals)", fontsize=10)
    return fig


def plot_calibration(metrics: dict):
    cal = metrics["calibration"]["model"]
    fig = _figure(10, 7.5)
    axes = fig.subplots(2, 2).ravel()
    for ax, attr in zip(axes, GROUPS):
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="perfect")
        for name, c in cal[attr].items():
            if not c.get("n"):
                continue
            curve = pd.DataFrame(c["curve"])
            ece = c["ece"]
            ax.plot(curve["mean_predicted"], curve["observed_rate"], marker="o",
                    markersize=np.clip(np.sqrt(curve["n"]), 3, 12).mean(),
                    label=f"{name} (n={c['n']}, ECE={ece:.3f})" if ece is not None else name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted P(hire)")
        ax.set_ylabel("observed hire rate")
        ax.set_title(f"Calibration by group: {attr}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    return fig


def plot_score_distributions(h: Holdout, rec: Recommendations | None):
    fig = _figure(10, 4)
    ax1, ax2 = fig.subplots(1, 2)
    bins = np.linspace(0, 1, 26)
    s = h.scores["model"]
    ax1.hist(s[h.y == 0], bins=bins, alpha=0.6, density=True, label=f"not hired (n={int((h.y == 0).sum())})")
    ax1.hist(s[h.y == 1], bins=bins, alpha=0.6, density=True, label=f"hired (n={int(h.y.sum())})")
    ax1.set_xlabel("model score: predicted P(hire)")
    ax1.set_ylabel("density")
    ax1.set_title("Held-out referrals by outcome", fontsize=10)
    ax1.legend(fontsize=8)
    if rec is not None and len(rec.pairs):
        ax2.hist(rec.scores["model"], bins=bins, color="#1f77b4", alpha=0.8, label="all eligible pairs")
        top = rec.rows["model"]
        ax2.hist(rec.scores["model"][top], bins=bins, color="#d62728", alpha=0.6, label=f"top-{rec.k} per worker")
        ax2.set_xlabel("model score")
        ax2.set_ylabel("pairs")
        ax2.set_title("Scores of eligible (worker, job) pairs today", fontsize=10)
        ax2.legend(fontsize=8)
    else:
        ax2.set_visible(False)
    return fig


def plot_map(world: World, rec: Recommendations | None):
    fig = _figure(8, 7)
    ax = fig.subplots()
    hh = world.households.set_index("household_id")
    w = world.workers.join(hh[["lat", "lon", "county_code"]], on="household_id")
    counties = sorted(set(w["county_code"].astype(str)) | set(world.jobs["county_code"].dropna().astype(str)) - {""})
    cmap = {c: f"C{i % 10}" for i, c in enumerate(counties)}
    for c in counties:
        sel = w[w["county_code"].astype(str) == c]
        ax.scatter(sel["lon"], sel["lat"], s=3, alpha=0.35, color=cmap[c],
                   label=f"workers, {COUNTY_LABEL.get(c, c)} ({len(sel)})")
    jobs = world.jobs[world.jobs["lat"].notna() & (world.jobs["status"] == "open")]
    counts = None
    if rec is not None:
        counts = pd.Series(np.bincount(rec.pairs.j[rec.rows["model"]], minlength=len(rec.J)), index=rec.J.ids)
    size = 20 + (counts.reindex(jobs["job_id"]).fillna(0).to_numpy() * 2 if counts is not None else 0)
    ax.scatter(jobs["lon"], jobs["lat"], s=np.clip(size, 20, 400), marker="^", facecolor="none",
               edgecolor="black", linewidth=0.8, label="open jobs (size: recommended workers)")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect(1 / np.cos(np.radians(35.4)))
    ax.set_title("Workers by county and open jobs (approximate places)", fontsize=10)
    legend = ax.legend(fontsize=7, loc="lower left")
    for handle in legend.legend_handles:
        handle.set_sizes([30])
        handle.set_alpha(1)
    return fig


def plot_group_shares(metrics: dict):
    shares = metrics["recommendations"]["group_shares"]
    labels = [yes for yes, _ in GROUPS.values()]
    d = [shares[attr][yes] for attr, (yes, _) in GROUPS.items()]
    fig = _figure(10, 4)
    left, right = fig.subplots(1, 2, sharey=True)
    x = np.arange(len(labels))
    for ax, base, top, title in (
            (left, ("eligible_workers", "share of workers with an eligible job"),
             ("top_k_recommendations", "share of the top-k jobs listed for workers"),
             "Worker side: each worker's top-k jobs"),
            (right, ("eligible_candidates", "share of eligible (worker, job) candidates"),
             ("job_top_k_candidates", "share of each job's top-k candidates"),
             "Recruiter side: each job's top-k candidates")):
        ax.bar(x - 0.2, [v[base[0]] or 0 for v in d], 0.4, label=base[1], color="#9ecae1")
        ax.bar(x + 0.2, [v[top[0]] or 0 for v in d], 0.4, label=top[1], color="#3182bd")
        ax.set_xticks(x, labels)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    left.set_ylabel("share")
    top = max([v[key] or 0 for v in d for key in ("eligible_workers", "top_k_recommendations",
                                                  "eligible_candidates", "job_top_k_candidates")] + [0.01])
    left.set_ylim(0, top * 1.35)
    fig.suptitle("Who the model puts at the top, against who is eligible", fontsize=10)
    return fig


def plot_congestion(rec: Recommendations):
    fig = _figure(8, 4)
    ax = fig.subplots()
    open_rows = np.flatnonzero(rec.J.open)
    for name in SCORERS:
        counts = np.sort(np.bincount(rec.pairs.j[rec.rows[name]], minlength=len(rec.J))[open_rows])
        if counts.sum() == 0:
            continue
        lorenz = np.r_[0, np.cumsum(counts) / counts.sum()]
        g = mx.gini(counts)
        ax.plot(np.linspace(0, 1, len(lorenz)), lorenz, color=PLOT_COLORS[name],
                label=f"{SCORER_LABEL[name]} (Gini {g:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="every job recommended equally")
    ax.set_xlabel("share of open jobs (fewest recommendations first)")
    ax.set_ylabel("share of recommendations")
    ax.set_title("Concentration of top-k recommendations over open jobs", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_report(ev: Evaluation, out_dir: str | Path) -> Path:
    """Write metrics.json, the PNGs and one self-contained report.html (images inlined)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = {"metrics.png": plot_metric_bars(ev.metrics), "calibration.png": plot_calibration(ev.metrics),
               "scores.png": plot_score_distributions(ev.holdout, ev.recommendations),
               "map.png": plot_map(ev.world, ev.recommendations)}
    if ev.recommendations is not None:
        figures["group_shares.png"] = plot_group_shares(ev.metrics)
        figures["congestion.png"] = plot_congestion(ev.recommendations)
    images = {}
    for name, fig in figures.items():
        data = _png(fig)
        m._atomic_write(out / name, data)
        images[name] = base64.b64encode(data).decode("ascii")
    m._atomic_write(out / "metrics.json", json.dumps(ev.metrics, indent=2, ensure_ascii=False).encode("utf-8"))
    page = render_html(ev.metrics, images)
    m._atomic_write(out / "report.html", page.encode("utf-8"))
    return out / "report.html"


def _e(x) -> str:
    return html.escape(str(x))


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _num(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def render_html(metrics: dict, images: dict[str, str]) -> str:
    ms = metrics
    split = ms["split"]
    k = ms["k"]
    hk = ms.get("household_k", 1)

    def img(name, alt):
        if name not in images:
            return ""
        return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{images[name]}"></figure>'

    rows = []
    for name, by in ms["metrics"].items():
        base = name.split("_at_")[0]
        cells = [f"<td>{_e(METRIC_ZH[base])}<br><small>{_e(name)}</small></td>"]
        for s in SCORERS:
            v = by[s]
            ci = v["ci"]
            cells.append(f"<td>{_num(v['value'])}<br><small>{'' if not ci else f'{ci[0]:.3f}–{ci[1]:.3f}'}</small></td>")
        verdicts = [ms["comparison"][name][b]["verdict"] for b in BASELINES]
        mark, cls = ("优于全部基线", "good") if all(v == "better" for v in verdicts) else (
            ("不如某一基线", "bad") if any(v == "worse" for v in verdicts) else ("未全部明显优于", "mixed"))
        cells.append(f'<td class="{cls}">{mark}<br><small>{_e(", ".join(verdicts))}</small></td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{_e(SCORER_ZH[s])}<br><small>{_e(SCORER_LABEL[s])}</small></th>" for s in SCORERS)
    metric_table = (f"<table><tr><th>指标 metric</th>{head}<th>结论 verdict</th></tr>{''.join(rows)}</table>")

    headline = []
    for name, by_b in ms["comparison"].items():
        base = name.split("_at_")[0]
        groups = {v: [SCORER_ZH[b] for b, c in by_b.items() if c["verdict"] == v]
                  for v in ("better", "no clear difference", "worse", "not measurable")}
        parts = []
        if groups["better"]:
            parts.append(f"优于{'、'.join(groups['better'])}")
        if groups["no clear difference"]:
            parts.append(f"与{'、'.join(groups['no clear difference'])}无明显差别")
        if groups["worse"]:
            parts.append(f"不如{'、'.join(groups['worse'])}")
        if groups["not measurable"]:
            parts.append(f"无法与{'、'.join(groups['not measurable'])}比较")
        headline.append(f"<li><b>{_e(METRIC_ZH[base])}</b> ({_e(name)})：{_e('；'.join(parts))}</li>")
    beats = "".join(f"<li>{_e(x)}</li>" for x in ms["summary"]["beats"]) or "<li>none / 无</li>"
    nots = "".join(f"<li>{_e(x)}</li>" for x in ms["summary"]["does_not_beat"]) or "<li>none / 无</li>"

    cal = ms["calibration"]["model"]
    grows = []
    shares = (ms.get("recommendations") or {}).get("group_shares", {})
    for attr, (yes, no) in GROUPS.items():
        for name in (yes, no):
            c = cal[attr][name]
            sh = shares.get(attr, {}).get(name, {})
            judged = "" if c.get("judged") else " <small>(样本少 too few to judge)</small>"
            grows.append(
                f"<tr><td>{_e(GROUP_ZH[name])}<br><small>{_e(name)}</small></td><td>{c.get('n', 0)}</td>"
                f"<td>{_pct(c.get('hire_rate'))}</td><td>{_pct(c.get('mean_score'))}</td>"
                f"<td>{_num(c.get('ece'))}{judged}</td><td>{_num(c.get('auc'))}</td>"
                f"<td>{_pct(c.get('precision'))}</td><td>{_pct(c.get('recall'))}</td>"
                f"<td>{_pct(sh.get('eligible_workers'))}</td><td>{_pct(sh.get('top_k_recommendations'))}</td>"
                f"<td>{_pct(sh.get('eligible_candidates'))}</td><td>{_pct(sh.get('job_top_k_candidates'))}</td></tr>")
    group_table = ("<table><tr><th>群体 group</th><th>测试推荐数 n</th><th>实际录用率</th><th>平均预测</th>"
                   "<th>校准误差 ECE</th><th>AUC</th><th>精确率 precision</th><th>召回率 recall</th>"
                   "<th>占有合适岗位人员<br><small>of workers with an eligible job</small></th>"
                   "<th>占前k推荐<br><small>of workers' top-k jobs</small></th>"
                   "<th>占岗位合格候选<br><small>of eligible candidates</small></th>"
                   "<th>占岗位前k候选<br><small>of jobs' top-k candidates</small></th></tr>" + "".join(grows) + "</table>")
    flags = (ms.get("recommendations") or {}).get("under_represented")
    if flags is None:
        flag_html = ""
    elif flags:
        flag_html = ("<div class=\"bad\"><b>推荐中占比偏低的群体 Groups the model under-represents at the top</b> "
                     "(share at the top below four fifths of their share among those eligible):<ul>"
                     + "".join(f"<li>{_e(x)}</li>" for x in flags) + "</ul></div>")
    else:
        flag_html = ("<div class=\"good\">No group's share at the top of the recommendations is below four fifths "
                     "of its share among those eligible. 各群体在推荐前列中的占比均不低于其合格占比的五分之四。</div>")
    ece_limit = ms["calibration"].get("max_group_ece")
    bad = [f"{name} ({c['ece']:.3f})" for attr in GROUPS for name, c in cal[attr].items()
           if c.get("judged") and ece_limit is not None and c.get("ece") is not None and c["ece"] > ece_limit]
    ece_line = (f"Groups whose calibration error exceeds the policy limit {ece_limit}: {', '.join(bad)}." if bad
                else f"No group with at least {ms['calibration']['min_group_n']} held-out referrals has a calibration "
                     f"error above the policy limit {ece_limit}.")

    cong_html = ""
    rec = ms.get("recommendations")
    if rec:
        crow = []
        for s in SCORERS:
            c = rec["congestion"][s]
            cps = c["candidates_per_free_slot"]
            crow.append(f"<tr><td>{_e(SCORER_ZH[s])} <small>{_e(SCORER_LABEL[s])}</small></td>"
                        f"<td>{_pct(c['jobs_recommended_share'])}</td><td>{_num(c['gini'], 2)}</td>"
                        f"<td>{_num(cps['overall'], 2)}</td><td>{_num(cps['median'], 2)}</td>"
                        f"<td>{_num(cps['max'], 1)}</td></tr>")
        c = rec["congestion"]["model"]
        others = {b: rec["congestion"][b]["gini"] for b in BASELINES if rec["congestion"][b]["gini"] is not None}
        if c["gini"] is not None and others:
            lo = min(others, key=others.get)
            spread = (f"The model concentrates its recommendations on fewer jobs than {SCORER_LABEL[lo]} (Gini "
                      f"{c['gini']:.2f} against {others[lo]:.2f}): more workers are pointed at the same popular "
                      f"jobs, so some will find them filled." if c["gini"] > others[lo] + 0.02 else
                      f"The model spreads recommendations over jobs about as evenly as the most even baseline "
                      f"(Gini {c['gini']:.2f} against {others[lo]:.2f} for {SCORER_LABEL[lo]}).")
        else:
            spread = ""
        cong_html = (
            f"<p>{c['open_jobs']} open jobs with {c['free_slots']} free slots; {rec['eligible_workers']} workers have "
            f"at least one eligible job ({rec['eligible_pairs']} eligible pairs). Each worker gets the top "
            f"{rec['k']} jobs. 有 {c['open_jobs']} 个在招岗位、{c['free_slots']} 个空缺。 {_e(spread)}</p>"
            "<table><tr><th>排序方法 scorer</th><th>至少推荐给一人的岗位占比<br><small>jobs recommended</small></th>"
            "<th>推荐集中度 Gini</th><th>每个空缺的候选人<br><small>per free slot, overall</small></th>"
            "<th>中位数 median</th><th>最多 max</th></tr>" + "".join(crow) + "</table>")

    warn = "".join(f"<li>{_e(w)}</li>" for w in ms.get("warnings", []))
    warn_html = f"<h2>注意 Warnings</h2><ul>{warn}</ul>" if warn else ""
    model = ms["model"]
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>匹配模型评估报告 Model evaluation report</title>
<style>
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.5; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: center; vertical-align: top; }}
th {{ background: #f3f3f3; }}
small {{ color: #666; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
.good {{ background: #eef8ee; padding: 0.5em 1em; }} .bad {{ background: #fdf1e8; padding: 0.5em 1em; }}
.mixed {{ background: #f7f7e8; }}
</style></head><body>
<h1>就业扶贫岗位匹配模型评估报告</h1>
<p><b>Model evaluation report.</b> Model <code>{_e(model.get('version'))}</code> ({_e(model.get('kind'))}).
Test split: the {split['n_test']} referrals on or after <b>{_e(split['cut'])}</b> ({split['test_hires']} hired,
{_pct(split['test_hire_rate'])}); the model learned only from the {split['n_train']} earlier ones.
测试集为 {_e(split['cut'])} 之后的 {split['n_test']} 条推荐记录，模型只用此前的 {split['n_train']} 条训练。</p>
{warn_html}
<h2>结论 What the numbers say</h2>
<ul>{''.join(headline)}</ul>
<div class="good"><b>模型优于基线之处 Where the model beats a baseline</b> (the 95% interval of the difference
excludes zero):<ul>{beats}</ul></div>
<div class="bad"><b>模型未优于基线之处 Where it does not</b>:<ul>{nots}</ul></div>
<p>Baselines: 就近优先 the nearest eligible job first; 仅看技能匹配 the share of required skills the worker has;
先验评分 the documented prior score used when there is no history. They order jobs but do not estimate
probabilities, so their Brier score and log loss only show they are not calibrated.</p>

<h2>一、模型与基线对比 Model vs baselines on held-out referrals</h2>
<p>AUC: how well the score separates hires from non-hires (0.5 is chance). Precision@{k} and NDCG@{k}: among
each job's referred workers, how many of the {k} the scorer puts first were hired (jobs with more than {k}
referrals). Household success@{hk}: share of households with more than {hk} held-out referral(s) that have a
hire among the {hk} the scorer puts first (most households have one to four held-out referrals, so only a short cut lets
the order matter). Intervals: 95% bootstrap over jobs (households for success), {ms['bootstrap']['resamples']}
resamples, seed {ms['bootstrap']['seed']}.</p>
{metric_table}
{img('metrics.png', 'metric bars with intervals')}
{img('scores.png', 'score distributions')}

<h2>二、分群体的校准与公平 Calibration and fairness by group</h2>
<p>校准：预测的录用概率与实际录用率是否一致。ECE is the average gap between predicted and observed hire
rates ({ms['calibration']['bins']} bins). Precision/recall count a score of at least the viability threshold
{ms['calibration']['viability_threshold']} as a predicted hire. The last four columns compare each group's
share of the model's recommendations (each worker's top-k jobs; each job's top-k candidates) with its share
of those eligible.
{_e(ece_line)}</p>
{group_table}
{flag_html}
{img('calibration.png', 'calibration by group')}
{img('group_shares.png', 'group shares')}

<h2>三、岗位覆盖与拥挤 Coverage and congestion</h2>
{cong_html}
{img('congestion.png', 'Lorenz curves of recommendations per job')}

<h2>四、地图 Map</h2>
{img('map.png', 'workers and jobs by county')}
<p><small>Coordinates are approximate (synthetic placement inside the real divisions). Worker features are
today's values for the whole history (age, and jobs' free slots), which can flatter any learned model.</small></p>
</body></html>
"""
