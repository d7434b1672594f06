"""The capacity pages of the report (SPEC section 8): households covered over the simulated days, and the
suggested sites on the map beside the households the plan leaves uncovered. Matplotlib figures in the style
of :mod:`matcher.evaluation`'s report (its figure and PNG helpers), as self-contained HTML pages."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from matcher.evaluation import _figure, _png
from matcher.model import _atomic_write

POLICY_COLORS = {"greedy": "#ff7f0e", "plan": "#1f77b4", "dual": "#2ca02c"}


def plot_coverage(runs: list[dict]):
    """Households covered at the end of each day, one line a policy, the hindsight optimum as a dashed line."""
    fig = _figure(7, 4)
    ax = fig.subplots()
    best = None
    for out in runs:
        daily = out["daily_households_covered"]
        ax.plot(np.arange(1, len(daily) + 1), daily, color=POLICY_COLORS.get(out["policy"]), label=out["policy"])
        best = out["hindsight_optimum"]["households_covered"]
    if best is not None:
        ax.axhline(best, color="black", linestyle="--", linewidth=0.8, label=f"hindsight optimum ({best:,})")
    ax.set_xlabel("day")
    ax.set_ylabel("households covered")
    ax.set_title("Households with a member placed, as jobs arrive", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    return fig


def plot_sites(world, sites: pd.DataFrame, uncovered_ids):
    """The suggested sites (numbered by rank) over the uncovered households (approximate places)."""
    fig = _figure(8, 7)
    ax = fig.subplots()
    hh = world.households.set_index("household_id")
    ax.scatter(hh["lon"], hh["lat"], s=2, color="#bbbbbb", alpha=0.4, label=f"households ({len(hh):,})")
    u = hh.loc[hh.index.intersection(pd.Index(list(uncovered_ids)))]
    ax.scatter(u["lon"], u["lat"], s=10, color="#d62728", label=f"uncovered by the plan ({len(u):,})")
    ax.scatter(sites["lon"], sites["lat"], s=120, marker="*", color="#1f77b4", edgecolor="black", linewidth=0.5,
               label="suggested sites")
    for r in sites.itertuples(index=False):
        ax.annotate(f"{r.rank} (+{r.households_covered})", (r.lon, r.lat), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect(1 / np.cos(np.radians(35.4)))
    ax.set_title("Where a new workshop would cover the most households (rank, + households)", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    return fig


def _page(title: str, intro: str, png: bytes, table: str) -> str:
    img = base64.b64encode(png).decode("ascii")
    return (f'<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            '<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}'
            'table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:right}'
            f'</style></head><body><h1>{html.escape(title)}</h1><p>{intro}</p>'
            f'<img alt="{html.escape(title)}" src="data:image/png;base64,{img}" style="max-width:100%">'
            f'{table}</body></html>\n')


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_simulation(runs: list[dict], out_dir) -> Path:
    """simulate.png and simulate.html in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = _png(plot_coverage(runs))
    _atomic_write(out / "simulate.png", png)
    first = runs[0]
    rows = [{"policy": r["policy"], **{k: r["result"][k] for k in ("households_covered", "expected_hires",
                                                                     "households_expected_hired")},
             "share of hindsight (households)": r["share_of_hindsight"]["households_covered"]} for r in runs]
    best = first["hindsight_optimum"]
    rows.append({"policy": "hindsight optimum", "households_covered": best["households_covered"],
                 "expected_hires": best["expected_hires"], "households_expected_hired": best["households_expected_hired"],
                 "share of hindsight (households)": 1.0})
    intro = (f"{first['days']} days from {html.escape(first['start'])}, households visited every "
             f"{first['cycle_days']} days; chances of a hire: {html.escape(first['hire_chances'])}.")
    page = _page("模拟：岗位陆续到来 Jobs arriving over time", intro, png,
                 _table(rows, list(rows[0].keys())))
    _atomic_write(out / "simulate.html", page.encode("utf-8"))
    return out / "simulate.html"


def write_sites(world, sites: pd.DataFrame, summary: dict, uncovered_ids, out_dir) -> Path:
    """sites.png and sites.html in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    png = _png(plot_sites(world, sites, uncovered_ids))
    _atomic_write(out / "sites.png", png)
    intro = (f"{summary['n']} sites of kind {html.escape(summary['kind'])}, {summary['slots']} slots each "
             f"({html.escape(summary['method'])}): households covered {summary['households_covered_before']:,} "
             f"-> {summary['households_covered_after']:,}.")
    page = _page("送企进村：新车间选址 Where to open the next workshop", intro, png,
                 _table(sites.to_dict("records"), list(sites.columns)))
    _atomic_write(out / "sites.html", page.encode("utf-8"))
    return out / "sites.html"
