"""Benchmark: ranking and plan quality against the truth the generator owns.

For each seed a default-size world (``generate_world(d, seed=s)``) is generated and its hidden
process read back (``matcher.generate.load_truth``): every pair's true P(hire). Models are fitted as
``matcher train`` fits them (``matcher.model.fit``: referrals before the policy's cut; the rest held
out). Then, over the world's eligible pairs (SPEC section 3):

- **top-1 / top-5 expected hires**: per worker with an eligible pair, the true P(hire) of the first one
  (first five) jobs ``matcher recommend`` lists for the scorer (its order: market first, welfare posts
  only for fallback-eligible workers with no viable market job), summed over workers, divided by the
  oracle's: the sum over workers of their true top-1 (top-5) over every eligible pair.
- **plan**: the true expected hires (sum of true P(hire) over placements) of the city-wide plan
  (``matcher.allocation.allocate``) built on the scorer, divided by those of the plan built on the true
  probabilities themselves (same graduates-then-households-then-hires objective).
- **calibration**: expected calibration error (10 bins) on the held-out referrals, overall and per
  fairness-audit group (``matcher.evaluation``) with at least 300 held-out referrals.
- **cold start**: the top-1 ratio restricted to jobs with no referral before the cut (and to jobs whose
  employer had none), and held-out log loss on referrals to such jobs.

Scorers: the model (pair features and track record), the previous model (pair features only, as before
the track record: ``fit(..., track_record=False)``), the prior scorer, nearest eligible first and skill
overlap only.

    .venv/bin/python bench/bench_quality.py [--seeds 0 1 2] [--worlds DIR]

writes bench/quality.md and prints it; raw figures go to bench/quality.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from matcher import evaluation as ev  # noqa: E402
from matcher import metrics as mx  # noqa: E402
from matcher import model as m  # noqa: E402
from matcher.allocation import allocate  # noqa: E402
from matcher.eligibility import KIND  # noqa: E402
from matcher.generate import generate_world, load_truth  # noqa: E402
from matcher.policy import load_policy  # noqa: E402
from matcher.ranking import Engine  # noqa: E402
from matcher.schema import load_world  # noqa: E402

SCORERS = ("model", "previous", "prior", "nearest_first", "skill_overlap")
LABEL = {"model": "model (track record)", "previous": "previous model", "prior": "prior scorer",
         "nearest_first": "nearest first", "skill_overlap": "skill overlap", "truth": "true probabilities"}
MIN_N = 300


class TruthModel(m.MatchModel):
    """Scores pairs with the generator's true P(hire): the oracle as a model, for the plan."""

    def __init__(self, truth):
        super().__init__(hire=None, kind="truth", version="truth")
        self.truth = truth

    def matrix(self, W, J, p, covered=None, base=None):
        self._ids = (np.asarray(W.ids, dtype=object), np.asarray(J.ids, dtype=object))
        return np.column_stack([p.w, p.j]).astype(np.float64)

    def score(self, X, threads=1):
        w_ids, j_ids = self._ids
        X = np.asarray(X)
        return self.truth.hire_probability(w_ids[X[:, 0].astype(np.int64)], j_ids[X[:, 1].astype(np.int64)])


def listed(W, J, pairs, score, policy, k):
    """Per worker, the rows of its first k listed jobs (recommend's order) and their rank."""
    rows = ev.top_k_rows(W, J, pairs, score, policy, k)            # sorted by worker, market first, best first
    w = pairs.w[rows]
    starts = np.r_[True, w[1:] != w[:-1]] if len(w) else np.zeros(0, bool)
    rank = np.arange(len(w)) - np.maximum.accumulate(np.where(starts, np.arange(len(w)), 0))
    return rows[rank < k]


def oracle_top(pairs, truth_p, k, subset=None):
    """Sum over workers of their true top-k over eligible pairs (optionally a subset of pairs)."""
    idx = np.arange(len(pairs)) if subset is None else np.flatnonzero(subset)
    w, t = pairs.w[idx], truth_p[idx]
    order = np.lexsort((-t, w))
    w, t = w[order], t[order]
    starts = np.r_[True, w[1:] != w[:-1]] if len(w) else np.zeros(0, bool)
    rank = np.arange(len(w)) - np.maximum.accumulate(np.where(starts, np.arange(len(w)), 0))
    return float(t[rank < k].sum())


def scorer_top(pairs, score, truth_p, k, subset=None):
    """Sum over workers of the true P(hire) of the scorer's first k (by score alone, within a subset)."""
    idx = np.arange(len(pairs)) if subset is None else np.flatnonzero(subset)
    w, s, t = pairs.w[idx], score[idx], truth_p[idx]
    order = np.lexsort((-s, w))
    w, t = w[order], t[order]
    starts = np.r_[True, w[1:] != w[:-1]] if len(w) else np.zeros(0, bool)
    rank = np.arange(len(w)) - np.maximum.accumulate(np.where(starts, np.arange(len(w)), 0))
    return float(t[rank < k].sum())


def plan_hires(engine, truth_p_of) -> float:
    a = allocate(engine, reasons=False)
    rows = a.rows
    return float(truth_p_of(rows["worker_id"].to_numpy(object), rows["job_id"].to_numpy(object)).sum())


def one_seed(seed: int, worlds: Path, policy) -> dict:
    d = worlds / f"quality-seed{seed}"
    if not (d / "generator.json").exists():
        generate_world(d, seed=seed)
    truth = load_truth(d)
    world = load_world(d)
    t0 = time.perf_counter()
    models = {}
    models["model"], metrics = m.fit(world, policy, track_record=True)
    fit_s = time.perf_counter() - t0
    models["previous"], _ = m.fit(world, policy, track_record=False)
    models["prior"] = m.prior_model()
    models["nearest_first"] = m.MatchModel(hire=m.NearestFirst(), kind="baseline")
    models["skill_overlap"] = m.MatchModel(hire=m.SkillOverlapOnly(), kind="baseline")
    cut = metrics["data"]["cut"]
    out = {"seed": seed, "cut": cut, "fit_seconds": fit_s, "n_train": metrics["data"]["n_train"],
           "n_test": metrics["data"]["n_test"], "track_record": metrics["data"].get("track_record")}

    # eligible pairs and the truth of each
    base = Engine.build(world, models["model"], policy)
    sc = base.score(ordered=False)
    pairs = sc.pairs
    W, J = base.W, base.J
    t = truth.hire_probability(np.asarray(W.ids, dtype=object)[pairs.w], np.asarray(J.ids, dtype=object)[pairs.j])
    scores = {"model": sc.score}
    for name in SCORERS[1:]:
        scores[name] = models[name].score(models[name].matrix(W, J, pairs, sc.covered))
    out["eligible_pairs"] = int(len(pairs))
    out["workers"] = int(len(np.unique(pairs.w)))
    oracle = {k: oracle_top(pairs, t, k) for k in (1, 5)}
    out["oracle"] = oracle
    out["recommend"] = {}
    for name in SCORERS:
        r = {}
        for k in (1, 5):
            rows = listed(W, J, pairs, scores[name], policy, k)
            r[f"top{k}"] = float(t[rows].sum()) / oracle[k]
        out["recommend"][name] = r

    # cold start: jobs with no referral before the cut; jobs whose employer had none
    track = models["model"].track
    no_job = track.job.lookup(J.ids[pairs.j]) < 0
    no_emp = track.employer.lookup(J.employer[pairs.j]) < 0
    cold = {"pairs_new_job": int(no_job.sum()), "pairs_new_employer": int(no_emp.sum())}
    for label, subset in (("new_job", no_job), ("new_employer", no_emp)):
        if subset.any():
            o = oracle_top(pairs, t, 1, subset)
            cold[label] = {name: scorer_top(pairs, scores[name], t, 1, subset) / o for name in ("model", "previous", "prior")}

    # the city plan against the plan on the true probabilities
    def truth_of(w_ids, j_ids):
        return truth.hire_probability(w_ids, j_ids)
    plan = {"truth": plan_hires(Engine.build(world, TruthModel(truth), policy), truth_of)}
    for name in ("model", "previous", "prior"):
        plan[name] = plan_hires(Engine.build(world, models[name], policy), truth_of) / plan["truth"]
    out["plan"] = plan

    # calibration on the held-out referrals, overall and per group
    ts = m.training_set(world, policy)
    cal = {}
    for name in ("model", "previous"):
        h = ev.holdout(world, policy, models[name], cut, ts)
        by = ev.calibration_by_group(h, policy)
        rows = {"all": (by["all"]["n"], by["all"]["ece"], by["all"]["mean_score"], by["all"]["hire_rate"])}
        for attr in ev.GROUPS:
            for g, c in by[attr].items():
                rows[g] = (c["n"], c.get("ece"), c.get("mean_score"), c.get("hire_rate"))
        cal[name] = rows
        if name == "model":
            test = np.flatnonzero((ts.dates >= np.datetime64(cut)) & ts.open_then)
            before = models["model"].track_cut               # the tables the held-out referrals are scored with
            held_new = before.job.lookup(ts.job_ids[test]) < 0
            held_new_emp = before.employer.lookup(ts.J.employer[ts.pairs.j[test]]) < 0
        hs = h.scores["model"]
        for label, mask in (("new_job", held_new), ("new_employer", held_new_emp)):
            if mask.sum() and len(np.unique(h.y[mask])) == 2:
                cold.setdefault(f"holdout_{label}", {})[name] = {
                    "n": int(mask.sum()),
                    "log_loss": m.binary_metrics(h.y[mask], hs[mask])["log_loss"],
                    "auc": m.binary_metrics(h.y[mask], hs[mask])["auc"],
                    "ece": mx.expected_calibration_error(h.y[mask], hs[mask])}
    h_truth = truth.hire_probability(h.worker_ids, h.job_ids)
    rows = {"all": (len(h.y), mx.expected_calibration_error(h.y, h_truth), float(h_truth.mean()), float(h.y.mean()))}
    for attr, g, mask in ev._group_masks(h.groups):
        rows[g] = (int(mask.sum()), mx.expected_calibration_error(h.y[mask], h_truth[mask]) if mask.any() else None,
                   float(h_truth[mask].mean()) if mask.any() else None, float(h.y[mask].mean()) if mask.any() else None)
    cal["truth"] = rows
    out["calibration"] = cal
    out["cold_start"] = cold
    return out


def render(results: list[dict], meta: dict) -> str:
    def med(values):
        v = [x for x in values if x is not None]
        return (float(np.median(v)), float(min(v)), float(max(v))) if v else (None, None, None)

    def cell(values, digits=3):
        mid, lo, hi = med(values)
        return "n/a" if mid is None else f"**{mid:.{digits}f}** ({lo:.{digits}f}-{hi:.{digits}f})"

    seeds = [r["seed"] for r in results]
    top1 = med([r["recommend"]["model"]["top1"] for r in results])[0]
    plan = med([r["plan"]["model"] for r in results])[0]
    ece_all = med([r["calibration"]["model"]["all"][1] for r in results])[0]
    worst_group = max((v[1] for r in results for g, v in r["calibration"]["model"].items()
                       if g != "all" and v[0] >= MIN_N and v[1] is not None), default=None)
    lines = [
        "# Quality against the truth",
        "",
        f"Written by `bench/bench_quality.py` ({meta['when']}); rerun with "
        f"`.venv/bin/python bench/bench_quality.py --seeds {' '.join(map(str, seeds))}`.",
        "",
        f"Worlds: default size (6,800 households), seeds {', '.join(map(str, seeds))}; every figure is the "
        "median over the seeds, with the range in brackets. Models are fitted as `matcher train` fits them "
        "(referrals before the policy's cut; the later ones held out). The truth is the generator's hidden "
        "P(hire) of every pair (`matcher.generate.load_truth`).",
        "",
        f"**Top-1 expected hires {top1:.3f} of the oracle (target 0.95: {'met' if top1 >= 0.95 else 'not met'}); "
        f"plan {plan:.3f} of the true-probability plan (target 0.95: {'met' if plan >= 0.95 else 'not met'}); "
        f"held-out ECE {ece_all:.3f} overall, at most {worst_group or 0:.3f} in a group of {MIN_N}+ referrals "
        f"in any seed (target 0.03: {'met' if ece_all <= 0.03 and (worst_group or 0) <= 0.03 else 'not met'}).**",
        "",
        "## Recommendations: expected hires against the oracle",
        "",
        "The true P(hire) of the first (first five) jobs `recommend` lists, summed over workers with an "
        "eligible pair, divided by the oracle's (each worker's true best one or five over every eligible pair).",
        "",
        "| scorer | top-1 | top-5 |",
        "|---|---:|---:|",
    ]
    for name in SCORERS:
        lines.append(f"| {LABEL[name]} | {cell([r['recommend'][name]['top1'] for r in results])} | "
                     f"{cell([r['recommend'][name]['top5'] for r in results])} |")
    lines += ["", "## The city plan", "",
              "True expected hires of the plan (`matcher.allocation.allocate`) built on each scorer, divided by "
              "those of the plan built on the true probabilities (same objective: graduates, then households, "
              "then expected hires).", "",
              "| scorer | plan / true-probability plan |", "|---|---:|"]
    for name in ("model", "previous", "prior"):
        lines.append(f"| {LABEL[name]} | {cell([r['plan'][name] for r in results])} |")
    lines.append(f"| (true-probability plan, expected hires) | {cell([r['plan']['truth'] for r in results], 1)} |")
    lines += ["", "## Calibration on the held-out referrals", "",
              f"ECE over 10 bins; groups of the fairness audit (`matcher.evaluation.GROUPS`); a group is judged "
              f"with at least {MIN_N} held-out referrals (n is the median). Mean score against hire rate shows "
              f"the direction.", "",
              "ECE of the true probabilities themselves on the same referrals is the floor that sampling noise "
              "alone puts under any model's.", "",
              "| group | n | ECE model | ECE previous | ECE truth | mean score model | hire rate |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for g in results[0]["calibration"]["model"]:
        n = med([r["calibration"]["model"][g][0] for r in results])[0]
        lines.append(f"| {g} | {n:,.0f} | {cell([r['calibration']['model'][g][1] for r in results])} | "
                     f"{cell([r['calibration']['previous'][g][1] for r in results])} | "
                     f"{cell([r['calibration']['truth'][g][1] for r in results])} | "
                     f"{cell([r['calibration']['model'][g][2] for r in results])} | "
                     f"{cell([r['calibration']['model'][g][3] for r in results])} |")
    lines += ["", "## Cold start", "",
              "Top-1 expected hires against the oracle over the eligible pairs of jobs with no referral before "
              "the cut (of jobs whose employer had none), each worker's best by the scorer among those; and "
              "held-out referrals to such jobs.", "",
              "| subset | model | previous model | prior scorer |", "|---|---:|---:|---:|"]
    for label in ("new_job", "new_employer"):
        have = [r for r in results if label in r["cold_start"]]
        if have:
            lines.append(f"| top-1, {label.replace('_', ' ')} ({int(np.median([r['cold_start']['pairs_' + label] for r in have])):,} pairs) | "
                         + " | ".join(cell([r["cold_start"][label][n] for r in have]) for n in ("model", "previous", "prior")) + " |")
    for label in ("new_job", "new_employer"):
        key = f"holdout_{label}"
        have = [r for r in results if key in r["cold_start"] and "model" in r["cold_start"][key]
                and "previous" in r["cold_start"][key]]
        if have:
            for metric in ("log_loss", "auc", "ece"):
                n = int(np.median([r["cold_start"][key]["model"]["n"] for r in have]))
                lines.append(f"| held-out {metric}, {label.replace('_', ' ')} (n {n}) | "
                             + " | ".join(cell([r["cold_start"][key][s][metric] for r in have]) for s in ("model", "previous"))
                             + " | |")
    lines += ["", "## Track record", "",
              "Prior strengths (pseudo-referrals) the empirical Bayes step estimated, per seed: "
              + "; ".join(f"seed {r['seed']}: " + ", ".join(f"{k} {v:.0f}" for k, v in ((r['track_record'] or {}).get('serving') or {}).get('prior_strength', {}).items())
                          for r in results) + ".",
              f"Fitting the model (track record included) took {cell([r['fit_seconds'] for r in results], 1)} s.",
              "", f"Machine: {meta['machine']}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--worlds", type=Path, default=None)
    args = ap.parse_args(argv)
    worlds = args.worlds or Path(tempfile.mkdtemp(prefix="matcher-quality-"))
    policy = load_policy()
    results = []
    for s in args.seeds:
        t0 = time.perf_counter()
        results.append(one_seed(s, worlds, policy))
        print(f"seed {s}: {time.perf_counter() - t0:.0f} s "
              f"top1 {results[-1]['recommend']['model']['top1']:.3f} plan {results[-1]['plan']['model']:.3f}",
              file=sys.stderr, flush=True)
    import sklearn
    meta = {"when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
                       f"numpy {np.__version__}"}
    (HERE / "quality.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=float) + "\n")
    text = render(results, meta)
    (HERE / "quality.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
