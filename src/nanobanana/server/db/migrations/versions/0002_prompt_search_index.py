"""prompt search index (PostgreSQL)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

History search is ``prompt ILIKE '%words%'``.  PostgreSQL cannot use a B-tree for a pattern
with a leading wildcard and scans every job; a trigram GIN index (``pg_trgm``) serves it.  The
extension is trusted (PostgreSQL 13+: a database owner may create it); where it cannot be
created the search still works, by a scan, and a warning says so.  SQLite keeps its scan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_jobs_prompt_trgm"
log = logging.getLogger("nanobanana.server")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        log.warning(
            "PostgreSQL extension pg_trgm is not available (%s); history search will scan the "
            "jobs table. A superuser can run CREATE EXTENSION pg_trgm in this database.",
            type(exc.orig).__name__,
        )
        return
    bind.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON jobs USING gin (prompt gin_trgm_ops)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.get_bind().exec_driver_sql(f"DROP INDEX IF EXISTS {INDEX}")
