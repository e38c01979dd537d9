"""Jobs belong to the API key that made them: `jobs.owner`, and idempotency keys per owner.

`owner` is the key's id, or "admin" (the admin key, and every job made before keys
existed or while they are off). The unique constraint on `idempotency_key` becomes one on
(`owner`, `idempotency_key`). SQLite cannot drop a constraint in place: the batch recreates
`jobs` (its rows, events and artifacts kept; docs/migrations.md), and the constraint that
`create_all` left unnamed there is found through a naming convention.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_name)s"}  # how SQLite's unnamed one is found


def _old_unique() -> str:
    # PostgreSQL named it itself when create_all made it; SQLite's is found by UNNAMED.
    return (
        "jobs_idempotency_key_key"
        if op.get_bind().dialect.name == "postgresql"
        else ("uq_jobs_idempotency_key")
    )


def upgrade() -> None:
    with op.batch_alter_table("jobs", naming_convention=UNNAMED) as batch:
        batch.add_column(
            sa.Column("owner", sa.String(length=40), nullable=False, server_default="admin")
        )
        batch.drop_constraint(_old_unique(), type_="unique")
        batch.create_unique_constraint(
            "uq_jobs_owner_idempotency_key", ["owner", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("uq_jobs_owner_idempotency_key", type_="unique")
        batch.create_unique_constraint(_old_unique(), ["idempotency_key"])
        batch.drop_column("owner")
