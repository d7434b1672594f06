"""Small factories for hand-built worlds: each returns valid rows, override what a test pins down."""

from __future__ import annotations

import itertools

import pandas as pd

from matcher.schema import COLUMNS, World, parse_table, to_csv_frame

_ids = itertools.count(1)

# Two real places in 东港区 (Donggang), about 11 km apart.
TOWN = "371102107"          # 陈疃镇 35.50472, 119.26694
VILLAGE = "371102107201"  # 惠家庄村委会
HOME = (35.50472, 119.26694)


def household(**kw) -> dict:
    row = dict(household_id=f"H{next(_ids)}", county_code="371102", town_code=TOWN, village_code=VILLAGE,
               lat=HOME[0], lon=HOME[1])
    row.update(kw)
    return row


def worker(household_id: str, **kw) -> dict:
    row = dict(worker_id=f"W{next(_ids)}", household_id=household_id, age=35, sex="F", disability="none",
               disability_grade="", labour_capacity="full", wants="job", skills="", education="junior",
               max_commute_km="", home_only=False, will_migrate=False, graduate=False, employed=False)
    row.update(kw)
    return row


def job(**kw) -> dict:
    row = dict(job_id=f"J{next(_ids)}", employer="陈疃镇扶贫车间", title="缝纫工", kind="workshop_factory",
               lat=HOME[0], lon=HOME[1], county_code="371102", town_code=TOWN, village_code=VILLAGE,
               skills="", min_age=18, max_age=60, physical_demand="light", requires="", slots=5, filled=0,
               monthly_wage=2500, posted_on="2026-01-05", status="open")
    row.update(kw)
    return row


def referral(worker_id: str, job_id: str, **kw) -> dict:
    row = dict(referral_id=f"R{next(_ids)}", worker_id=worker_id, job_id=job_id, referred_on="2026-02-01",
               outcome="hired", retained_6m="")
    row.update(kw)
    return row


def _raw(name: str, rows: list[dict]) -> pd.DataFrame:
    def cell(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return ";".join(v)
        return "" if v is None else str(v)
    return pd.DataFrame([{c: cell(r.get(c, "")) for c in COLUMNS[name]} for r in rows], columns=COLUMNS[name])


def table(name: str, rows: list[dict]) -> pd.DataFrame:
    """Validated, typed frame from dict rows (values as a CSV would hold them)."""
    return parse_table(name, _raw(name, rows))


def world(households: list[dict], workers: list[dict], jobs: list[dict], referrals: list[dict] | None = None) -> World:
    return World(table("households", households), table("workers", workers), table("jobs", jobs),
                 table("referrals", referrals or []))


def write_csv(directory, name: str, rows: list[dict]) -> None:
    _raw(name, rows).to_csv(directory / f"{name}.csv", index=False)


def write_world_rows(directory, households, workers, jobs, referrals=None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_csv(directory, "households", households)
    write_csv(directory, "workers", workers)
    write_csv(directory, "jobs", jobs)
    write_csv(directory, "referrals", referrals or [])


__all__ = ["household", "worker", "job", "referral", "table", "world", "write_csv", "write_world_rows",
           "to_csv_frame"]
