"""Visits to households and the services given at them (migration 0004), and the frames the 311
standard is computed from (:func:`matcher.service_standard.service_standard`)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from matcher.store.db import write_connection
from matcher.store.queries import in_places, record_change
from matcher.store.models import Base, utcnow

T = Base.metadata.tables
households, workers, referrals = T["households"], T["workers"], T["referrals"]
visits, visit_services = T["visits"], T["visit_services"]


def insert_visit(engine: Engine, *, visit_id: str, household_id: str, visited_on: dt.date, note: str | None,
                 services: list[tuple[str, str]], created_by: str | None, recorded_by: str | None) -> None:
    """A visit and its (worker_id, kind) services, in one transaction."""
    with write_connection(engine) as conn:
        conn.execute(visits.insert().values(visit_id=visit_id, household_id=household_id, visited_on=visited_on,
                                            note=note, created_by=created_by, recorded_by=recorded_by,
                                            created_at=utcnow()))
        if services:
            conn.execute(visit_services.insert(), [{"visit_id": visit_id, "worker_id": w, "kind": k}
                                                   for w, k in services])
        record_change(conn, "visits", visit_id)   # the members' 311 counts in their matches change


def household_visits(engine: Engine, household_id: str, visit_id: str | None = None) -> list[dict]:
    """A household's visits, newest first (or the one ``visit_id``), each with its services."""
    conds = [visits.c.household_id == household_id]
    if visit_id is not None:
        conds.append(visits.c.visit_id == visit_id)
    with engine.connect() as conn, conn.begin():
        rows = conn.execute(sa.select(visits.c.visit_id, visits.c.household_id, visits.c.visited_on, visits.c.note,
                                      visits.c.recorded_by).where(*conds)
                            .order_by(visits.c.visited_on.desc(), visits.c.created_at.desc(),
                                      visits.c.visit_id.desc())).mappings().all()
        ids = [r["visit_id"] for r in rows]
        given = conn.execute(sa.select(visit_services.c.visit_id, visit_services.c.worker_id, visit_services.c.kind)
                             .where(visit_services.c.visit_id.in_(ids))
                             .order_by(visit_services.c.id)).all() if ids else []
    by_visit: dict[str, list[dict]] = {}
    for v, w, k in given:
        by_visit.setdefault(v, []).append({"worker_id": w, "kind": k})
    return [dict(r, services=by_visit.get(r["visit_id"], [])) for r in rows]


def standard_frames(engine: Engine, year: int, *, county_code: str | None = None,
                    villages: tuple[str, ...] | None = None, household_id: str | None = None):
    """The workers (with their household's village), the year's referrals and the year's services of a
    county (narrowed to villages), or of one household: the inputs of the 311 standard."""
    conds = in_places(county_code, villages)
    if household_id is not None:
        conds.append(households.c.household_id == household_id)
    first, last = dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
    people = workers.join(households, households.c.household_id == workers.c.household_id)
    with engine.connect() as conn, conn.begin():
        w = pd.DataFrame(conn.execute(sa.select(workers.c.worker_id, workers.c.household_id, households.c.village_code,
                                                workers.c.labour_capacity, workers.c.wants, workers.c.employed)
                                      .select_from(people).where(*conds)).all(),
                         columns=["worker_id", "household_id", "village_code", "labour_capacity", "wants", "employed"])
        r = pd.DataFrame(conn.execute(sa.select(referrals.c.worker_id, referrals.c.referred_on)
                                      .select_from(referrals.join(people, workers.c.worker_id == referrals.c.worker_id))
                                      .where(*conds, referrals.c.referred_on.between(first, last))).all(),
                         columns=["worker_id", "referred_on"])
        s = pd.DataFrame(conn.execute(sa.select(visit_services.c.worker_id, visit_services.c.kind, visits.c.visited_on)
                                      .select_from(visit_services.join(visits, visits.c.visit_id == visit_services.c.visit_id)
                                                   .join(people, workers.c.worker_id == visit_services.c.worker_id))
                                      .where(*conds, visits.c.visited_on.between(first, last))).all(),
                         columns=["worker_id", "kind", "visited_on"])
    w["employed"] = w["employed"].astype(bool)
    return w, r, s
