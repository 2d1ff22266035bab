"""images: favourite, and the shape they have (ratio and size) for the gallery

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

The gallery lists images, not generations, filtered by favourite and by the ratio and output
size nearest to their pixels, which are worked out once here for the images already stored and
when each new one is stored.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from nanobanana.catalog import nearest_ratio, size_class

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The ratios known when this was written (``catalog.IMAGE_RATIOS`` then).
RATIOS = (
    *("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"),
    *("1:4", "4:1", "1:8", "8:1"),
)


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("aspect_ratio", sa.String(8), nullable=True))
        batch.add_column(sa.Column("image_size", sa.String(8), nullable=True))
        batch.add_column(
            sa.Column("favourite", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    images = sa.table(
        "images",
        sa.column("id", sa.String),
        sa.column("width", sa.Integer),
        sa.column("height", sa.Integer),
        sa.column("aspect_ratio", sa.String),
        sa.column("image_size", sa.String),
    )
    conn = op.get_bind()
    shapes = conn.execute(sa.select(images.c.width, images.c.height).distinct()).all()
    for width, height in shapes:
        conn.execute(
            images.update()
            .where(images.c.width == width, images.c.height == height)
            .values(
                aspect_ratio=nearest_ratio(RATIOS, width, height),
                image_size=size_class(width, height),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("favourite")
        batch.drop_column("image_size")
        batch.drop_column("aspect_ratio")
