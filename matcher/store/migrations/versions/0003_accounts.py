"""Accounts for people: users, their sessions, failed sign-ins; optional names and phones.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Adds tables and nullable columns only, so a v1 database keeps its tokens and its data as they
are (tests/test_accounts.py upgrades one built at revision 0002).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, nullable: bool = False, server_default: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.func.now() if server_default else None)


def upgrade() -> None:
    op.add_column("households", sa.Column("head_name", sa.String(50), nullable=True))
    op.add_column("households", sa.Column("phone", sa.String(20), nullable=True))
    op.add_column("workers", sa.Column("name", sa.String(50), nullable=True))

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=True),
        sa.Column("villages", sa.Text(), nullable=False, server_default=""),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        _ts("created_at"),
        _ts("password_changed_at", nullable=True, server_default=False),
        sa.CheckConstraint("role IN ('volunteer', 'recruiter', 'evaluator', 'admin')", name="ck_users_role"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("login", name="uq_users_login"),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("expires_at", server_default=False),
        _ts("revoked_at", nullable=True, server_default=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_user_sessions_user_id_users", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_user_sessions"),
        sa.UniqueConstraint("session_hash", name="uq_user_sessions_session_hash"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_table(
        "login_failures",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("login", sa.String(64), nullable=False),
        _ts("at", server_default=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
    )
    op.create_index("ix_login_failures_login_at", "login_failures", ["login", "at"])


def downgrade() -> None:
    op.drop_table("login_failures")
    op.drop_table("user_sessions")
    op.drop_table("users")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("name")
    with op.batch_alter_table("households") as batch:
        batch.drop_column("phone")
        batch.drop_column("head_name")
