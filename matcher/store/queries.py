"""The queries the HTTP service needs beyond whole-world import and export.

Rows come back as plain dicts with the CSV column names (lists as tuples of tags, empty
optional codes as None). Writes that must not race are single conditional statements:
a hire takes a slot with ``UPDATE jobs SET filled = filled + 1 WHERE ... AND filled < slots``.
"""

from __future__ import annotations

import datetime as dt
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from matcher.schema import COLUMNS
from matcher.store.db import write_connection
from matcher.store.models import Base, utcnow

T = Base.metadata.tables
households, workers, jobs, referrals = T["households"], T["workers"], T["jobs"], T["referrals"]
audit_log, allocations, allocation_rows = T["audit_log"], T["allocations"], T["allocation_rows"]
changes = T["changes"]

JOB_FIELDS = COLUMNS["jobs"] + ["owner"]
LIST_COLUMNS = ("skills", "requires")


def _tags(text: str | None) -> list[str]:
    return [t for t in (text or "").split(";") if t]


def _row(mapping, list_columns=LIST_COLUMNS) -> dict:
    out = dict(mapping)
    for c in list_columns:
        if c in out:
            out[c] = _tags(out[c])
    return out


# -- the change log -----------------------------------------------------------------------------

# Any constant will do: it orders the writers of one PostgreSQL database (see record_change).
_PG_CHANGES_LOCK = 7_302_115_043


def record_change(conn, table: str, row_id: str | None = None, *, worker_id: str | None = None,
                  job_id: str | None = None) -> None:
    """Log a write to the world inside its own transaction ``conn``, naming the worker and job rows it
    touched. On PostgreSQL the writers take one lock first (held until they commit), so ids are given
    in the order transactions commit: a process that has seen revision N never misses a change below N."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CHANGES_LOCK})
    conn.execute(changes.insert().values(at=utcnow(), table_name=table, row_id=row_id, worker_id=worker_id,
                                         job_id=job_id))


def revision(engine: Engine) -> int:
    """The store's revision: the newest change's id (0 before any). One cheap query."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(changes.c.id), 0))).scalar_one())


def changes_since(engine: Engine, after: int, limit: int) -> list[dict]:
    """The changes after revision ``after``, oldest first, at most ``limit``."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(changes.c.id, changes.c.table_name, changes.c.row_id, changes.c.worker_id,
                                      changes.c.job_id).where(changes.c.id > after)
                            .order_by(changes.c.id).limit(limit)).mappings()
        return [dict(r) for r in rows]


# -- jobs ----------------------------------------------------------------------------------------

def get_job(conn_or_engine, job_id: str) -> dict | None:
    stmt = sa.select(*(jobs.c[c] for c in JOB_FIELDS)).where(jobs.c.job_id == job_id)
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            row = conn.execute(stmt).mappings().first()
    else:
        row = conn_or_engine.execute(stmt).mappings().first()
    return _row(row) if row is not None else None


def list_jobs(engine: Engine, *, county_code=None, kind=None, status=None, owner=None, offset=0,
              limit=20) -> tuple[list[dict], int]:
    conds = []
    if county_code:
        conds.append(jobs.c.county_code == county_code)
    if kind:
        conds.append(jobs.c.kind == kind)
    if status:
        conds.append(jobs.c.status == status)
    if owner is not None:
        conds.append(jobs.c.owner == owner)
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*conds)).scalar_one()
        rows = conn.execute(sa.select(*(jobs.c[c] for c in JOB_FIELDS)).where(*conds)
                            .order_by(jobs.c.posted_on.desc(), jobs.c.job_id).offset(offset).limit(limit)).mappings()
        return [_row(r) for r in rows], int(total)


def insert_job(engine: Engine, row: dict) -> bool:
    """Insert one job row; False when its id is taken."""
    try:
        with write_connection(engine) as conn:
            conn.execute(jobs.insert().values(**row, created_at=utcnow()))
            record_change(conn, "jobs", row["job_id"], job_id=row["job_id"])
    except sa.exc.IntegrityError:
        return False
    return True


def update_job(engine: Engine, job_id: str, values: dict) -> str:
    """Change a job's fields in one statement. Returns 'ok', 'missing' or 'below_filled'.

    A new ``slots`` below ``filled`` is refused inside the statement, so a hire racing the
    change can never leave ``filled > slots``.
    """
    with write_connection(engine) as conn:
        conds = [jobs.c.job_id == job_id]
        if "slots" in values:
            conds.append(jobs.c.filled <= values["slots"])
        n = conn.execute(sa.update(jobs).where(*conds).values(**values, revision=jobs.c.revision + 1)).rowcount
        if n == 1:
            record_change(conn, "jobs", job_id, job_id=job_id)
            return "ok"
        exists = conn.execute(sa.select(jobs.c.job_id).where(jobs.c.job_id == job_id)).first()
        return "below_filled" if exists else "missing"


def reopen_job(engine: Engine, job_id: str) -> str:
    """Open a closed job that has a free slot, in one statement. Returns 'ok', 'missing', 'open' or 'full'."""
    with write_connection(engine) as conn:
        n = conn.execute(sa.update(jobs).where(jobs.c.job_id == job_id, jobs.c.status == "closed",
                                               jobs.c.filled < jobs.c.slots)
                         .values(status="open", revision=jobs.c.revision + 1)).rowcount
        if n == 1:
            record_change(conn, "jobs", job_id, job_id=job_id)
            return "ok"
        row = conn.execute(sa.select(jobs.c.status).where(jobs.c.job_id == job_id)).first()
        if row is None:
            return "missing"
        return "open" if row.status == "open" else "full"


# -- people --------------------------------------------------------------------------------------

def get_household(engine: Engine, household_id: str) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(*(households.c[c] for c in COLUMNS["households"]))
                           .where(households.c.household_id == household_id)).mappings().first()
    return dict(row) if row is not None else None


def household_members(engine: Engine, household_id: str) -> list[str]:
    """The worker ids of a household."""
    with engine.connect() as conn:
        return list(conn.execute(sa.select(workers.c.worker_id).where(workers.c.household_id == household_id)
                                 .order_by(workers.c.worker_id)).scalars())


def get_worker(engine: Engine, worker_id: str) -> dict | None:
    """A worker with the county and village of its household (``county_code``, ``village_code``)."""
    cols = [workers.c[c] for c in COLUMNS["workers"]] + [households.c.county_code, households.c.village_code]
    with engine.connect() as conn:
        row = conn.execute(sa.select(*cols).join(households, households.c.household_id == workers.c.household_id)
                           .where(workers.c.worker_id == worker_id)).mappings().first()
    return _row(row, ("skills",)) if row is not None else None


def insert_row(engine: Engine, table: str, row: dict) -> bool:
    """Insert one household or worker row; False when its id is taken."""
    try:
        with write_connection(engine) as conn:
            conn.execute(T[table].insert().values(**row))
            record_change(conn, table, row.get(f"{table[:-1]}_id"),
                          worker_id=row.get("worker_id") if table == "workers" else None)
    except sa.exc.IntegrityError:
        return False
    return True


# -- referrals -----------------------------------------------------------------------------------

REFERRAL_FIELDS = ("referral_id", "worker_id", "job_id", "referred_on", "outcome", "retained_6m", "reason")


def get_referral(engine: Engine, referral_id: str) -> dict | None:
    """A referral with the county and village of its worker's household (``county_code``, ``village_code``)
    and its job's ``owner``."""
    cols = [referrals.c[c] for c in REFERRAL_FIELDS] + [households.c.county_code, households.c.village_code,
                                                         jobs.c.owner]
    with engine.connect() as conn:
        row = conn.execute(sa.select(*cols)
                           .join(workers, workers.c.worker_id == referrals.c.worker_id)
                           .join(households, households.c.household_id == workers.c.household_id)
                           .join(jobs, jobs.c.job_id == referrals.c.job_id)
                           .where(referrals.c.referral_id == referral_id)).mappings().first()
    return dict(row) if row is not None else None


def in_places(county_code: str | None, villages: tuple[str, ...] | None) -> list:
    """Conditions on ``households`` for a county, narrowed to villages when given (a scope's places)."""
    conds = []
    if county_code is not None:
        conds.append(households.c.county_code == county_code)
    if villages:
        conds.append(households.c.village_code.in_(list(villages)))
    return conds


def pending_referrals(engine: Engine, *, county_code: str | None = None, villages: tuple[str, ...] | None = None,
                      owner: str | None = None, offset: int = 0, limit: int = 50) -> tuple[list[dict], int]:
    """Referrals awaiting an outcome, oldest first: of a county's households (narrowed to villages when
    given), or to the jobs of ``owner``. Each row carries the worker's, the household's and the job's
    fields a list needs, and the display name of the person who referred (null for a token)."""
    users = T["users"]
    conds = [referrals.c.outcome.is_(None), *in_places(county_code, villages)]
    if owner is not None:
        conds.append(jobs.c.owner == owner)
    joined = (referrals.join(workers, workers.c.worker_id == referrals.c.worker_id)
              .join(households, households.c.household_id == workers.c.household_id)
              .join(jobs, jobs.c.job_id == referrals.c.job_id)
              .outerjoin(users, users.c.login == referrals.c.created_by))
    cols = [referrals.c.referral_id, referrals.c.worker_id, referrals.c.job_id, referrals.c.referred_on,
            workers.c.household_id, workers.c.name.label("worker_name"), workers.c.age, workers.c.sex,
            workers.c.skills.label("worker_skills"), jobs.c.title.label("job_title"), jobs.c.employer, jobs.c.kind,
            jobs.c.skills.label("job_skills"), users.c.display_name.label("referred_by")]
    with engine.connect() as conn, conn.begin():
        total = conn.execute(sa.select(sa.func.count()).select_from(joined).where(*conds)).scalar_one()
        rows = conn.execute(sa.select(*cols).select_from(joined).where(*conds)
                            .order_by(referrals.c.referred_on, referrals.c.updated_at, referrals.c.referral_id)
                            .offset(offset).limit(limit)).mappings().all()
    return [_row(r, ("worker_skills", "job_skills")) for r in rows], int(total)


def insert_referral(engine: Engine, referral_id: str, worker_id: str, job_id: str, on: dt.date,
                    created_by: str | None) -> None:
    with write_connection(engine) as conn:
        conn.execute(referrals.insert().values(referral_id=referral_id, worker_id=worker_id, job_id=job_id,
                                               referred_on=on, outcome=None, retained_6m=None, reason=None,
                                               created_by=created_by, updated_at=utcnow()))
        record_change(conn, "referrals", referral_id)


def record_outcome(engine: Engine, referral_id: str, outcome: str, reason: str | None,
                   retained_6m: bool | None) -> str:
    """Record a referral's outcome; a hire takes one slot of the job in the same transaction.

    Returns 'ok', 'same' (the outcome was already this one; only reason and retention were
    updated), 'recorded' (another outcome is already recorded), 'full' (a hire, but the job
    is full or closed: nothing was written) or 'employed' (a hire, but the worker was hired
    through another referral already: nothing was written).
    """
    try:
        return _record_outcome(engine, referral_id, outcome, reason, retained_6m)
    except _Refused as exc:
        return exc.result


class _Refused(Exception):
    """Raised inside the transaction so that it rolls back whole."""

    def __init__(self, result: str):
        super().__init__(result)
        self.result = result


def _record_outcome(engine, referral_id, outcome, reason, retained_6m) -> str:
    with write_connection(engine) as conn:
        n = conn.execute(sa.update(referrals)
                         .where(referrals.c.referral_id == referral_id, referrals.c.outcome.is_(None))
                         .values(outcome=outcome, reason=reason, retained_6m=retained_6m,
                                 updated_at=utcnow())).rowcount
        if n == 0:
            current = conn.execute(sa.select(referrals.c.outcome).where(
                referrals.c.referral_id == referral_id)).scalar_one_or_none()
            if current != outcome:
                return "recorded"
            values = {"updated_at": utcnow()}
            if reason is not None:
                values["reason"] = reason
            if retained_6m is not None:
                values["retained_6m"] = retained_6m
            conn.execute(sa.update(referrals).where(referrals.c.referral_id == referral_id).values(**values))
            return "same"
        ref = conn.execute(sa.select(referrals.c.job_id, referrals.c.worker_id)
                           .where(referrals.c.referral_id == referral_id)).one()
        if outcome != "hired":
            # the worker's record of referrals that ended without a hire changed, the job did not
            record_change(conn, "referrals", referral_id, worker_id=ref.worker_id)
            return "ok"
        taken = conn.execute(sa.update(jobs)
                             .where(jobs.c.job_id == ref.job_id, jobs.c.filled < jobs.c.slots,
                                    jobs.c.status == "open")
                             .values(filled=jobs.c.filled + 1, revision=jobs.c.revision + 1)).rowcount
        if taken != 1:
            raise _Refused("full")
        # One job per worker: two pending referrals of one worker must not both become hires.
        hired = conn.execute(sa.update(workers)
                             .where(workers.c.worker_id == ref.worker_id, workers.c.employed.is_(False))
                             .values(employed=True)).rowcount
        if hired != 1:
            raise _Refused("employed")
        record_change(conn, "referrals", referral_id, worker_id=ref.worker_id, job_id=ref.job_id)
        return "ok"


# -- audit ---------------------------------------------------------------------------------------

def write_audit(engine: Engine, entries: list[dict]) -> None:
    """Several audit entries in one transaction."""
    if entries:
        with write_connection(engine) as conn:
            conn.execute(audit_log.insert(), entries)


def audit_entries(engine: Engine, limit: int = 100) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).mappings()
        return [dict(r) for r in rows]


# -- stats ---------------------------------------------------------------------------------------

def stats(engine: Engine, subsidy_per_kind: dict[str, int]) -> dict:
    """Households covered, placements by kind, subsidies owed, referrals, jobs."""
    able = sa.and_(workers.c.labour_capacity != "none", workers.c.wants != "none")
    with engine.connect() as conn, conn.begin():
        n_households = conn.execute(sa.select(sa.func.count()).select_from(households)).scalar_one()
        able_willing = conn.execute(sa.select(sa.func.count(sa.distinct(workers.c.household_id))).where(able)) \
            .scalar_one()
        covered = conn.execute(sa.select(sa.func.count(sa.distinct(workers.c.household_id)))
                               .where(able, workers.c.employed.is_(True))).scalar_one()
        w = conn.execute(sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((workers.c.employed.is_(True), 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((sa.and_(workers.c.employed.is_(False), workers.c.wants == "job",
                                                          workers.c.labour_capacity != "none"), 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((sa.and_(workers.c.employed.is_(False),
                                                          workers.c.graduate.is_(True)), 1), else_=0)), 0),
        ).select_from(workers)).one()
        placements = dict(conn.execute(sa.select(jobs.c.kind, sa.func.count())
                                       .select_from(referrals.join(jobs, jobs.c.job_id == referrals.c.job_id))
                                       .where(referrals.c.outcome == "hired").group_by(jobs.c.kind)).all())
        outcomes = {outcome or "pending": n for outcome, n in conn.execute(
            sa.select(referrals.c.outcome, sa.func.count()).group_by(referrals.c.outcome)).all()}
        j = conn.execute(sa.select(
            sa.func.coalesce(sa.func.sum(sa.case((jobs.c.status == "open", 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((jobs.c.status == "open", jobs.c.slots - jobs.c.filled),
                                                 else_=0)), 0),
            sa.func.count(),
        ).select_from(jobs)).one()
    kinds = list(subsidy_per_kind)
    placements = {k: int(placements.get(k, 0)) for k in kinds}
    owed = {k: placements[k] * int(subsidy_per_kind[k]) for k in kinds}
    owed["total"] = sum(owed.values())
    return {
        "households": {"total": int(n_households), "able_willing": int(able_willing), "covered": int(covered),
                       "coverage": round(covered / able_willing, 4) if able_willing else 0.0},
        "workers": {"total": int(w[0]), "employed": int(w[1]), "seeking": int(w[2]),
                    "graduates_not_employed": int(w[3])},
        "placements_by_kind": placements,
        "subsidies_owed_yuan": owed,
        "referrals": {k: int(outcomes.get(k, 0)) for k in ("pending", "hired", "declined", "rejected", "no_show")},
        "jobs": {"total": int(j[2]), "open": int(j[0]), "free_slots": int(j[1])},
    }


# -- allocations ---------------------------------------------------------------------------------

def store_allocation(engine: Engine, *, created_by: str | None, model_version: str | None, summary: dict,
                     rows: list[dict]) -> int:
    """Store a plan and its rows in one transaction; returns the plan's id."""
    import json
    with write_connection(engine) as conn:
        allocation_id = conn.execute(allocations.insert().values(
            created_at=utcnow(), created_by=created_by, model_version=model_version,
            summary=json.dumps(summary, ensure_ascii=False)).returning(allocations.c.id)).scalar_one()
        for i in range(0, len(rows), 5000):
            conn.execute(allocation_rows.insert(), [dict(r, allocation_id=allocation_id) for r in rows[i:i + 5000]])
        record_change(conn, "allocations", str(allocation_id))
    return int(allocation_id)


JOB_PRICES = "job_prices"      # in a stored plan's summary: {job_id: [contention, plan_assigned]}


def latest_allocation_id(engine: Engine) -> int | None:
    """The newest stored plan's id (one cheap query), None before any."""
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(allocations.c.id))).scalar()


def job_prices(engine: Engine, allocation_id: int) -> dict[str, tuple[float, int]]:
    """A stored plan's price of one more slot and workers sent, per job id (empty for plans stored without)."""
    import json
    with engine.connect() as conn:
        text = conn.execute(sa.select(allocations.c.summary).where(allocations.c.id == allocation_id)).scalar()
    prices = json.loads(text or "{}").get(JOB_PRICES) or {}
    return {str(j): (float(v[0]), int(v[1])) for j, v in prices.items()}


def get_allocation(engine: Engine, allocation_id: int, county_code: str | None = None,
                   villages: tuple[str, ...] | None = None) -> dict | None:
    """A stored plan; with ``county_code``, only the rows of that county (and with ``villages``, only the
    rows of households in those villages)."""
    import json
    with engine.connect() as conn, conn.begin():
        head = conn.execute(sa.select(allocations).where(allocations.c.id == allocation_id)).mappings().first()
        if head is None:
            return None
        conds = [allocation_rows.c.allocation_id == allocation_id]
        if county_code is not None:
            conds.append(allocation_rows.c.county_code == county_code)
        if villages:
            conds.append(allocation_rows.c.household_id.in_(
                sa.select(households.c.household_id).where(households.c.village_code.in_(list(villages)))))
        rows = conn.execute(sa.select(allocation_rows).where(*conds).order_by(allocation_rows.c.id)).mappings().all()
    summary = json.loads(head["summary"] or "{}")
    summary.pop(JOB_PRICES, None)      # read by the matches (job_prices), not shown with the plan
    return {"allocation_id": head["id"], "created_at": head["created_at"],
            "model_version": head["model_version"], "summary": summary,
            "rows": [{"household_id": r["household_id"], "worker_id": r["worker_id"], "job_id": r["job_id"],
                      "county_code": r["county_code"], "score": r["score"], "tier": r["tier"],
                      "subsidy_yuan": r["subsidy_yuan"],
                      "reasons": [t for t in (r["reasons"] or "").split(" | ") if t]} for r in rows]}
