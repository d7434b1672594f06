"""Visits and their services (the 311 standard), and the answers kept under an Idempotency-Key.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

Adds tables only: a database at revision 0003 keeps its data as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "visits",
        sa.Column("visit_id", sa.String(64), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("recorded_by", sa.String(100), nullable=True),
        _ts("created_at"),
        sa.ForeignKeyConstraint(["household_id"], ["households.household_id"],
                                name="fk_visits_household_id_households"),
        sa.PrimaryKeyConstraint("visit_id", name="pk_visits"),
    )
    op.create_index("ix_visits_household_id", "visits", ["household_id"])
    op.create_index("ix_visits_visited_on", "visits", ["visited_on"])
    op.create_table(
        "visit_services",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("visit_id", sa.String(64), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.CheckConstraint("kind IN ('guidance', 'training_offer', 'job_offer')", name="ck_visit_services_kind"),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.visit_id"], name="fk_visit_services_visit_id_visits",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["worker_id"], ["workers.worker_id"], name="fk_visit_services_worker_id_workers"),
        sa.PrimaryKeyConstraint("id", name="pk_visit_services"),
        sa.UniqueConstraint("visit_id", "worker_id", "kind", name="uq_visit_services_visit_worker_kind"),
    )
    op.create_index("ix_visit_services_visit_id", "visit_services", ["visit_id"])
    op.create_index("ix_visit_services_worker_id", "visit_services", ["worker_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("principal", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("body", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_idempotency_keys"),
        sa.UniqueConstraint("principal", "key", name="uq_idempotency_keys_principal_key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("visit_services")
    op.drop_table("visits")
