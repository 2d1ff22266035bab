"""an index on (user, request hash): a drop-in call finds an identical earlier call directly

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Every OpenRouter- or OpenAI-compatible call without an Idempotency-Key looks for the same
user's latest job with the same body (``generation.find_blind_retry``), so that a client's
blind retry of a possibly billed failure is answered instead of paid again.  Without this
index that lookup read all of a user's jobs of the last hour on every call.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.create_index("ix_jobs_user_hash", ["user_id", "request_hash", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_user_hash")
