"""The database tables. Columns of SPEC section 2 keep their CSV names; lists are `;`-joined text.

Migrations (``matcher/store/migrations``) create these tables; ``tests/test_store.py`` checks that
the migrations and these classes never drift apart.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("volunteer", "recruiter", "evaluator", "admin")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes on both backends (SQLite keeps naive text, so naive values mean UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


class Household(Base):
    __tablename__ = "households"

    household_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    county_code: Mapped[str] = mapped_column(sa.String(6), index=True)
    town_code: Mapped[str] = mapped_column(sa.String(9))
    village_code: Mapped[str | None] = mapped_column(sa.String(12))
    lat: Mapped[float] = mapped_column(sa.Double)
    lon: Mapped[float] = mapped_column(sa.Double)
    # Personal data (migration 0003): shown to the volunteer in scope and admins only, never logged.
    head_name: Mapped[str | None] = mapped_column(sa.String(50))
    phone: Mapped[str | None] = mapped_column(sa.String(20))


class Worker(Base):
    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("households.household_id"), index=True)
    age: Mapped[int] = mapped_column(sa.Integer)
    sex: Mapped[str] = mapped_column(sa.String(1))
    disability: Mapped[str] = mapped_column(sa.String(16))
    disability_grade: Mapped[int | None] = mapped_column(sa.Integer)
    labour_capacity: Mapped[str] = mapped_column(sa.String(16))
    wants: Mapped[str] = mapped_column(sa.String(16))
    skills: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    education: Mapped[str] = mapped_column(sa.String(16))
    max_commute_km: Mapped[float | None] = mapped_column(sa.Double)
    home_only: Mapped[bool] = mapped_column(sa.Boolean)
    will_migrate: Mapped[bool] = mapped_column(sa.Boolean)
    graduate: Mapped[bool] = mapped_column(sa.Boolean)
    employed: Mapped[bool] = mapped_column(sa.Boolean)
    name: Mapped[str | None] = mapped_column(sa.String(50))


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        sa.CheckConstraint("filled <= slots", name="filled_within_slots"),
        sa.CheckConstraint("filled >= 0", name="filled_not_negative"),
    )

    job_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    employer: Mapped[str] = mapped_column(sa.Text)
    title: Mapped[str] = mapped_column(sa.Text)
    kind: Mapped[str] = mapped_column(sa.String(32))
    lat: Mapped[float | None] = mapped_column(sa.Double)
    lon: Mapped[float | None] = mapped_column(sa.Double)
    county_code: Mapped[str | None] = mapped_column(sa.String(6), index=True)
    town_code: Mapped[str | None] = mapped_column(sa.String(9))
    village_code: Mapped[str | None] = mapped_column(sa.String(12))
    skills: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    min_age: Mapped[int] = mapped_column(sa.Integer)
    max_age: Mapped[int] = mapped_column(sa.Integer)
    physical_demand: Mapped[str] = mapped_column(sa.String(16))
    requires: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    slots: Mapped[int] = mapped_column(sa.Integer)
    filled: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    monthly_wage: Mapped[float] = mapped_column(sa.Double)
    posted_on: Mapped[dt.date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    owner: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now())
    # Raised by every change made through the service (migration 0002); the change log (0005) says which.
    revision: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")


class Referral(Base):
    """One referral. ``outcome`` is NULL while pending (made through the API, not yet recorded)."""

    __tablename__ = "referrals"

    referral_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    worker_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("workers.worker_id"), index=True)
    job_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("jobs.job_id"), index=True)
    referred_on: Mapped[dt.date] = mapped_column(sa.Date)
    outcome: Mapped[str | None] = mapped_column(sa.String(16))
    retained_6m: Mapped[bool | None] = mapped_column(sa.Boolean)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[str | None] = mapped_column(sa.String(100))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow,
                                                    server_default=sa.func.now())


class ApiToken(Base):
    """An API token; only its SHA-256 is kept, the plaintext is shown once at creation."""

    __tablename__ = "api_tokens"
    __table_args__ = (sa.CheckConstraint("role IN ('volunteer', 'recruiter', 'evaluator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(100), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    county_code: Mapped[str | None] = mapped_column(sa.String(6))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditLog(Base):
    """Who did what to which record; ids only, never personal data."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now(), index=True)
    actor: Mapped[str | None] = mapped_column(sa.String(100))
    role: Mapped[str | None] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    resource_type: Mapped[str | None] = mapped_column(sa.String(32))
    resource_id: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[int | None] = mapped_column(sa.Integer)


class Change(Base):
    """One write to the world, in the same transaction as the write (migration 0005): the store's revision
    is the newest ``id``. ``worker_id`` and ``job_id`` name the worker and job rows the write touched (a
    referral's outcome names its worker, a hire its worker and its job); ``table_name`` ``world`` is an
    import (many rows at once), ``allocations`` a stored plan."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now())
    table_name: Mapped[str] = mapped_column(sa.String(32))
    row_id: Mapped[str | None] = mapped_column(sa.String(64))
    worker_id: Mapped[str | None] = mapped_column(sa.String(64))
    job_id: Mapped[str | None] = mapped_column(sa.String(64))


class Allocation(Base):
    """A stored city-wide plan; ``summary`` is JSON text."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now())
    created_by: Mapped[str | None] = mapped_column(sa.String(100))
    model_version: Mapped[str | None] = mapped_column(sa.String(100))
    summary: Mapped[str] = mapped_column(sa.Text, default="{}", server_default="{}")


class AllocationRow(Base):
    """One placement of a plan. No foreign keys to workers or jobs: a plan is a snapshot."""

    __tablename__ = "allocation_rows"
    __table_args__ = (sa.Index("ix_allocation_rows_allocation_county", "allocation_id", "county_code"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    allocation_id: Mapped[int] = mapped_column(sa.Integer, sa.ForeignKey("allocations.id", ondelete="CASCADE"))
    household_id: Mapped[str] = mapped_column(sa.String(64))
    worker_id: Mapped[str] = mapped_column(sa.String(64))
    job_id: Mapped[str] = mapped_column(sa.String(64))
    county_code: Mapped[str | None] = mapped_column(sa.String(6))
    score: Mapped[float] = mapped_column(sa.Double)
    tier: Mapped[str] = mapped_column(sa.String(16))
    subsidy_yuan: Mapped[float] = mapped_column(sa.Double, default=0.0, server_default="0")
    reasons: Mapped[str] = mapped_column(sa.Text, default="", server_default="")


class User(Base):
    """A person who signs in (SPEC section 7). Only the password's argon2id hash is kept."""

    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("role IN ('volunteer', 'recruiter', 'evaluator', 'admin')", name="role"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    login: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[str] = mapped_column(sa.String(16))
    county_code: Mapped[str | None] = mapped_column(sa.String(6))
    villages: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now())
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class UserSession(Base):
    """A signed-in browser. The cookie holds the id; the store keeps its SHA-256 only."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class LoginFailure(Base):
    """One failed sign-in, by the login tried (known or not); counted for the throttle of SPEC section 7."""

    __tablename__ = "login_failures"
    __table_args__ = (sa.Index("ix_login_failures_login_at", "login", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    login: Mapped[str] = mapped_column(sa.String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Visit(Base):
    """A volunteer's visit to a household (SPEC section 7, migration 0004)."""

    __tablename__ = "visits"

    visit_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    household_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("households.household_id"), index=True)
    visited_on: Mapped[dt.date] = mapped_column(sa.Date, index=True)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_by: Mapped[str | None] = mapped_column(sa.String(100))      # the principal's name (the audit's)
    recorded_by: Mapped[str | None] = mapped_column(sa.String(100))     # a person's display name, shown
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now())


class VisitService(Base):
    """One service given to one member at a visit: guidance, a training offer, a job offer."""

    __tablename__ = "visit_services"
    __table_args__ = (
        sa.UniqueConstraint("visit_id", "worker_id", "kind", name="uq_visit_services_visit_worker_kind"),
        sa.CheckConstraint("kind IN ('guidance', 'training_offer', 'job_offer')", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    visit_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("visits.visit_id", ondelete="CASCADE"),
                                          index=True)
    worker_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("workers.worker_id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))


class IdempotencyKey(Base):
    """A POST's answer under its ``Idempotency-Key``, per principal, for 24 hours (SPEC section 5).
    ``status`` is NULL while the first request is being answered."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (sa.UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(sa.String(32))
    key: Mapped[str] = mapped_column(sa.String(64))
    request_sha256: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[int | None] = mapped_column(sa.Integer)
    headers: Mapped[str] = mapped_column(sa.Text, default="{}", server_default="{}")
    body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, server_default=sa.func.now(),
                                                    index=True)


TABLE_ORDER = ("households", "workers", "jobs", "referrals", "api_tokens", "audit_log", "allocations",
               "allocation_rows", "users", "user_sessions", "login_failures", "visits", "visit_services",
               "idempotency_keys")
