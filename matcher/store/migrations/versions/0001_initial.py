"""The initial schema: the four world tables, tokens, audit log and stored allocations.

Revision ID: 0001
Revises:
Create Date: 2026-05-10

Written by hand and checked against the models (tests/test_store.py compares them).
Self-contained on purpose: later model changes must not change what this revision creates.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False, server_default: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.func.now() if server_default else None)


def upgrade() -> None:
    op.create_table(
        "households",
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("town_code", sa.String(9), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=True),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("household_id", name="pk_households"),
    )
    op.create_index("ix_households_county_code", "households", ["county_code"])

    op.create_table(
        "workers",
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("disability", sa.String(16), nullable=False),
        sa.Column("disability_grade", sa.Integer(), nullable=True),
        sa.Column("labour_capacity", sa.String(16), nullable=False),
        sa.Column("wants", sa.String(16), nullable=False),
        sa.Column("skills", sa.Text(), nullable=False, server_default=""),
        sa.Column("education", sa.String(16), nullable=False),
        sa.Column("max_commute_km", sa.Double(), nullable=True),
        sa.Column("home_only", sa.Boolean(), nullable=False),
        sa.Column("will_migrate", sa.Boolean(), nullable=False),
        sa.Column("graduate", sa.Boolean(), nullable=False),
        sa.Column("employed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["household_id"], ["households.household_id"],
                                name="fk_workers_household_id_households"),
        sa.PrimaryKeyConstraint("worker_id", name="pk_workers"),
    )
    op.create_index("ix_workers_household_id", "workers", ["household_id"])

    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("employer", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("lat", sa.Double(), nullable=True),
        sa.Column("lon", sa.Double(), nullable=True),
        sa.Column("county_code", sa.String(6), nullable=True),
        sa.Column("town_code", sa.String(9), nullable=True),
        sa.Column("village_code", sa.String(12), nullable=True),
        sa.Column("skills", sa.Text(), nullable=False, server_default=""),
        sa.Column("min_age", sa.Integer(), nullable=False),
        sa.Column("max_age", sa.Integer(), nullable=False),
        sa.Column("physical_demand", sa.String(16), nullable=False),
        sa.Column("requires", sa.Text(), nullable=False, server_default=""),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("filled", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("monthly_wage", sa.Double(), nullable=False),
        sa.Column("posted_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(100), nullable=True),
        _ts("created_at"),
        sa.CheckConstraint("filled <= slots", name="ck_jobs_filled_within_slots"),
        sa.CheckConstraint("filled >= 0", name="ck_jobs_filled_not_negative"),
        sa.PrimaryKeyConstraint("job_id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_county_code", "jobs", ["county_code"])
    op.create_index("ix_jobs_owner", "jobs", ["owner"])

    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(64), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("referred_on", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("retained_6m", sa.Boolean(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=True),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.worker_id"], name="fk_referrals_worker_id_workers"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name="fk_referrals_job_id_jobs"),
        sa.PrimaryKeyConstraint("referral_id", name="pk_referrals"),
    )
    op.create_index("ix_referrals_worker_id", "referrals", ["worker_id"])
    op.create_index("ix_referrals_job_id", "referrals", ["job_id"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True, server_default=False),
        _ts("revoked_at", nullable=True, server_default=False),
        sa.CheckConstraint("role IN ('volunteer', 'recruiter', 'evaluator', 'admin')", name="ck_api_tokens_role"),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_index("ix_api_tokens_name", "api_tokens", ["name"])

    op.create_table(
        "audit_log",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        _ts("at"),
        sa.Column("actor", sa.String(100), nullable=True),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=True),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])

    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _ts("created_at"),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("model_version", sa.String(100), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False, server_default="{}"),
        sa.PrimaryKeyConstraint("id", name="pk_allocations"),
    )

    op.create_table(
        "allocation_rows",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=True),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("subsidy_yuan", sa.Double(), nullable=False, server_default="0"),
        sa.Column("reasons", sa.Text(), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["allocation_id"], ["allocations.id"], ondelete="CASCADE",
                                name="fk_allocation_rows_allocation_id_allocations"),
        sa.PrimaryKeyConstraint("id", name="pk_allocation_rows"),
    )
    op.create_index("ix_allocation_rows_allocation_county", "allocation_rows", ["allocation_id", "county_code"])


def downgrade() -> None:
    for table in ("allocation_rows", "allocations", "audit_log", "api_tokens", "referrals", "jobs", "workers",
                  "households"):
        op.drop_table(table)
