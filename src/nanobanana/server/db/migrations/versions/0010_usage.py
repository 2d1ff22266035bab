"""usage in the spend ledger

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Each ledger row also keeps the provider and model that answered and how many images its
generation stored, so usage by model, provider and images survives the generation's deletion.
The rows already there take them from their jobs (a row whose job is gone keeps none).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("spend") as batch:
        batch.add_column(sa.Column("provider", sa.String(32), nullable=True))
        batch.add_column(sa.Column("model", sa.String(200), nullable=True))
        batch.add_column(sa.Column("images", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE spend SET "
        "provider = (SELECT jobs.provider FROM jobs WHERE jobs.id = spend.job_id), "
        "model = (SELECT jobs.model FROM jobs WHERE jobs.id = spend.job_id), "
        "images = (SELECT count(*) FROM images WHERE images.job_id = spend.job_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("spend") as batch:
        batch.drop_column("images")
        batch.drop_column("model")
        batch.drop_column("provider")
