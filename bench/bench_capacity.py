"""Benchmark: jobs arriving over time (`matcher simulate`) and where to open the next workshop (`matcher sites`).

For each scale (1x and 10x the default world) and each seed, a world is generated with that seed
(``generate_world(households=scale * DEFAULT_HOUSEHOLDS, seed=seed)``, into ``--worlds``, reused when
there) and replayed over ``--days`` days under the three policies, with the generator's own chances of a
hire (``matcher.generate.load_truth``) and the households' visit days drawn with the same seed. Scores come
from one model trained on the default world (seed 0), the same artifact at every scale, as in
bench/bench_allocation.py. Reported: households covered by each policy as a share of the hindsight optimum
of the same arrivals (median over the seeds, and each seed's), expected hires likewise, and the time per
simulated day. Then `sites` at 1x (seed 0): time and the households the suggested sites add.

    .venv/bin/python bench/bench_capacity.py [--scales 1 10] [--seeds 0 1 2] [--days 90] [--worlds DIR]
    .venv/bin/python bench/bench_capacity.py --render        # the report again from the raw figures

writes bench/capacity.md (and its raw figures, bench/capacity.json, one entry per scale and seed, so that
a scale can be run alone and keeps the others' rows) and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "capacity.md"
RAW = HERE / "capacity.json"
POLICIES = ("greedy", "plan", "dual")


def world_dir(worlds: Path, scale: int, seed: int) -> Path:
    from matcher.generate import DEFAULT_HOUSEHOLDS, generate_world
    d = worlds / f"world-{scale}x-s{seed}"
    if not (d / "jobs.csv").exists():
        generate_world(d, households=scale * DEFAULT_HOUSEHOLDS, seed=seed)
    return d


def trained_model(worlds: Path):
    from matcher.model import data_hash, fit, load, save
    from matcher.policy import load_policy
    from matcher.schema import load_world
    out = worlds / "model"
    found = sorted(out.glob("*.json"))
    if not found:
        world = load_world(world_dir(worlds, 1, 0))
        model, metrics = fit(world, load_policy())
        save(model, out, metrics=metrics, data_sha256=data_hash(world))
        found = sorted(out.glob("*.json"))
    return load(found[-1])[0]


def simulate_one(worlds: Path, scale: int, seed: int, days: int, model, save=lambda out: None) -> dict:
    from matcher import simulate as S
    from matcher.policy import load_policy
    from matcher.ranking import Engine
    from matcher.schema import load_world
    d = world_dir(worlds, scale, seed)
    t0 = time.perf_counter()
    world = load_world(d)
    engine = Engine.build(world, model, load_policy())
    truth = S.truth_of(d)
    r = S.prepare(engine, world, days, truth=truth, seed=seed)
    prepare_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    best = S.hindsight(r)
    hindsight_s = time.perf_counter() - t1
    out = {"scale": scale, "seed": seed, "days": days, "hire_chances": r.truth_source,
           "households_coverable": int(r.hh.coverable.sum()), "pairs": int(len(r.arcs)),
           "jobs_arriving": int((r.arrive > 0).sum()), "jobs": int(len(r.arrive)),
           "prepare_s": round(prepare_s, 2), "hindsight_s": round(hindsight_s, 2), "hindsight": best,
           "measured": date.today().isoformat()}
    for p in POLICIES:
        got = S.run(r, p)
        daily = got.pop("daily_households_covered")
        got["share_households"] = round(got["households_covered"] / best["households_covered"], 4)
        got["share_expected_hires"] = round(got["expected_hires"] / best["expected_hires"], 4)
        got["final_day_households"] = daily[-1]
        out[p] = got
        save(out)                 # a long scale keeps what it measured, policy by policy
        print(f"  {scale}x seed {seed} {p}: {got['households_covered']:,} of {best['households_covered']:,} "
              f"({got['share_households']:.3f}), {got['seconds_per_day']:.3f} s/day", file=sys.stderr, flush=True)
    return out


def sites_one(worlds: Path, model, kind: str = "workshop_factory", slots: int = 10, n: int = 5) -> dict:
    from matcher import sites
    from matcher.policy import load_policy
    from matcher.ranking import Engine
    from matcher.schema import load_world
    world = load_world(world_dir(worlds, 1, 0))
    engine = Engine.build(world, model, load_policy())
    t0 = time.perf_counter()
    rows, summary = sites.suggest(engine, world, kind, slots, n)
    seconds = time.perf_counter() - t0
    return {"seconds": round(seconds, 2), "summary": summary, "sites": rows.to_dict("records"),
            "measured": date.today().isoformat()}


def _median(xs):
    return statistics.median(xs) if xs else float("nan")


def render(raw: dict) -> str:
    runs = raw.get("simulate", [])
    lines = [
        "# Capacity: jobs arriving over time, and where to open the next workshop",
        "",
        f"Measured by `bench/bench_capacity.py` on {raw.get('machine', '?')}. Each world is generated with its "
        "seed and replayed over its last 90 days of postings (jobs posted before are there on day 0; the "
        "others arrive on their `posted_on` day); households are visited every 30 days from a first day drawn "
        "with the same seed; a hire's chance is the generator's own (`load_truth`). The hindsight optimum is "
        "the plan over the same arrivals as if every job were there on day 0 (an upper bound for any "
        "policy). Scores: one model trained on the default world (seed 0). Repeat with "
        "`.venv/bin/python bench/bench_capacity.py --scales 1 10 --seeds 0 1 2`.",
        "",
        "## `simulate`: households covered as a share of the hindsight optimum",
        "",
        "| scale | seeds | coverable | hindsight covers | greedy | plan | dual | expected hires: greedy / plan / dual | s per day: greedy / plan / dual |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scale in sorted({r["scale"] for r in runs}):
        rs = sorted((r for r in runs if r["scale"] == scale), key=lambda r: r["seed"])
        share = {p: _median([r[p]["share_households"] for r in rs if p in r]) for p in POLICIES}
        hires = {p: _median([r[p]["share_expected_hires"] for r in rs if p in r]) for p in POLICIES}
        spd = {p: _median([r[p]["seconds_per_day"] for r in rs if p in r]) for p in POLICIES}
        lines.append(
            f"| {scale}x | {len(rs)} ({', '.join(str(r['seed']) for r in rs)}) | "
            f"{_median([r['households_coverable'] for r in rs]):,.0f} | "
            f"{_median([r['hindsight']['households_covered'] for r in rs]):,.0f} | "
            + " | ".join(f"{share[p]:.3f}" for p in POLICIES) + " | "
            + " / ".join(f"{hires[p]:.3f}" for p in POLICIES) + " | "
            + " / ".join(f"{spd[p]:.3f}" for p in POLICIES) + " |")
    lines += ["", "Medians over the seeds. Each run:", "",
              "| scale | seed | pairs | jobs (arriving) | hindsight: households, expected hires | greedy | plan | dual | plan solves | prepare s | measured |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(runs, key=lambda r: (r["scale"], r["seed"])):
        h = r["hindsight"]
        cell = {p: (f"{r[p]['households_covered']:,} ({r[p]['share_households']:.3f}), {r[p]['expected_hires']:,.0f} h"
                    if p in r else "not run") for p in POLICIES}
        lines.append(f"| {r['scale']}x | {r['seed']} | {r['pairs']:,} | {r['jobs']:,} ({r['jobs_arriving']:,}) | "
                     f"{h['households_covered']:,}, {h['expected_hires']:,.0f} | {cell['greedy']} | {cell['plan']} | "
                     f"{cell['dual']} | {r['plan']['solves'] if 'plan' in r else '-'} | {r['prepare_s']} | {r['measured']} |")
    s = raw.get("sites")
    if s:
        sm = s["summary"]
        lines += ["", "## `sites` at 1x (seed 0)", "",
                  f"{sm['n']} sites of kind `{sm['kind']}` with {sm['slots']} slots each, {sm['method']}: "
                  f"{s['seconds']} s (target: under 60 s) over {sm['candidates']:,} candidate villages "
                  f"({sm['candidates_that_could_gain']:,} could gain a household by the plan's price of a first "
                  f"slot). Households covered {sm['households_covered_before']:,} -> "
                  f"{sm['households_covered_after']:,}. Measured {s['measured']}.", "",
                  "| rank | village | households covered | workers placed |", "|---|---|---|---|"]
        for row in s["sites"]:
            lines.append(f"| {row['rank']} | {row['village_code']} | {row['households_covered']} | {row['workers_placed']} |")
    for note in raw.get("notes", []):
        lines += ["", note]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=int, nargs="*", default=[1, 10])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--worlds", type=Path, default=Path(tempfile.gettempdir()) / "matcher-bench-worlds")
    ap.add_argument("--no-sites", action="store_true")
    ap.add_argument("--render", action="store_true", help="only render bench/capacity.md from capacity.json")
    args = ap.parse_args()
    raw = json.loads(RAW.read_text()) if RAW.exists() else {}
    if not args.render:
        raw["machine"] = f"{platform.machine()} ({os.cpu_count()} CPUs), Python {platform.python_version()}"
        args.worlds.mkdir(parents=True, exist_ok=True)
        model = trained_model(args.worlds)
        runs = raw.setdefault("simulate", [])
        for scale in args.scales:
            for seed in args.seeds:
                def save(one, scale=scale, seed=seed):
                    runs[:] = [r for r in runs if (r["scale"], r["seed"]) != (scale, seed)] + [one]
                    RAW.write_text(json.dumps(raw, indent=1, ensure_ascii=False))
                save(simulate_one(args.worlds, scale, seed, args.days, model, save))
        if not args.no_sites:
            raw["sites"] = sites_one(args.worlds, model)
        RAW.write_text(json.dumps(raw, indent=1, ensure_ascii=False))
    text = render(raw)
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
