"""budgets and the spend ledger

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Spending caps per user and for the whole service (USD per UTC day and month), and the ledger
they are checked against: one row per generation, kept when the generation is deleted.  The
jobs already stored enter the ledger with their recorded cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("scope", sa.String(32), primary_key=True),
        sa.Column("daily_usd", sa.Float(), nullable=True),
        sa.Column("monthly_usd", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "spend",
        sa.Column("job_id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("held_usd", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=True),
    )
    op.create_index("ix_spend_user_created", "spend", ["user_id", "created_at"])
    op.create_index("ix_spend_created", "spend", ["created_at"])
    op.execute(
        "INSERT INTO spend (job_id, user_id, created_at, held_usd, cost_usd) "
        "SELECT id, user_id, created_at, 0, cost FROM jobs"
    )


def downgrade() -> None:
    op.drop_index("ix_spend_created", table_name="spend")
    op.drop_index("ix_spend_user_created", table_name="spend")
    op.drop_table("spend")
    op.drop_table("budgets")
