"""edit_sessions, and jobs as their turns

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

Conversational editing: a session is a tree of turns and each turn is a job, which now says
which session it belongs to, which turn it continues, and what the provider needs to continue
from its answer (Gemini's thought signatures, OpenRouter's reasoning details).  Older jobs
belong to no session (NULL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edit_sessions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_edit_sessions_user_updated", "edit_sessions", ["user_id", "updated_at"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("session_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("continuation", sa.JSON(), nullable=True))
        batch.create_foreign_key(
            "fk_jobs_session_id", "edit_sessions", ["session_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_jobs_session", ["session_id", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_session")
        batch.drop_constraint("fk_jobs_session_id", type_="foreignkey")
        batch.drop_column("continuation")
        batch.drop_column("parent_id")
        batch.drop_column("session_id")
    op.drop_index("ix_edit_sessions_user_updated", "edit_sessions")
    op.drop_table("edit_sessions")
