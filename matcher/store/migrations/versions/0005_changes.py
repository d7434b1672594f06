"""changes: the log of writes to the world, so every service process follows the store's revision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Every write to households, workers, jobs, referrals and plans adds a row here in its own transaction,
naming the worker and job rows it touched. A service process keeps the revision (the newest id) its
state was made at, and applies the rows since on its next request.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("row_id", sa.String(64), nullable=True),
        sa.Column("worker_id", sa.String(64), nullable=True),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_changes"),
    )


def downgrade() -> None:
    op.drop_table("changes")
