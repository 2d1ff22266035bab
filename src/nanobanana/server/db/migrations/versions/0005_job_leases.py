"""workers and job leases: a job belongs to the worker that runs it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

Several processes may share one database.  Each registers in ``workers`` and keeps its
heartbeat fresh; a job records its ``owner``, and only the jobs of a worker whose heartbeat has
expired (or, on the same host, whose process is gone) are reconciled, never another live
process's.  ``attempt`` fences a worker that lost its job from writing the job's end late.
Jobs from before have no owner: the next start reconciles them as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("owner", sa.String(32), nullable=True))
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("attempt")
        batch.drop_column("owner")
    op.drop_table("workers")
