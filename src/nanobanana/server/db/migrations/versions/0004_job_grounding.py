"""jobs.grounding: what a search-grounded generation looked up

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

A generation grounded in Google Search reports its queries, the pages it drew on and Google's
search suggestions; the record keeps them with the job, where the history and the answer read
them.  Older jobs have none (NULL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("grounding", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("grounding")
