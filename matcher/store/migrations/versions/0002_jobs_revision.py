"""jobs.revision: a counter every change to a job raises, so service processes see changes at once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Each service process caches the prepared jobs and rebuilds them when the jobs' fingerprint
(count, sum of revisions, sum of filled) changes; a PATCH that only retitles a job changes
nothing else that the fingerprint could see.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("revision")
