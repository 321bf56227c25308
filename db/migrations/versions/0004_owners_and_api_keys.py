"""owners, API keys, and an owner on every job and uploaded dataset

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15 09:00:00

Rows written before owners existed belong to ``local``, the open mode's owner. Uploads gain
``stored_bytes`` (the size of their normalised content, counted against the storage quota).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_MODE_OWNER = "local"


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("quota_active_jobs", sa.Integer(), nullable=True),
        sa.Column("quota_pending_trials", sa.Integer(), nullable=True),
        sa.Column("quota_stored_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["owner"], ["owners.name"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_owner"), ["owner"], unique=False)
    for table in ("jobs", "uploaded_datasets"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "owner",
                    sa.String(length=64),
                    server_default=OPEN_MODE_OWNER,
                    nullable=False,
                )
            )
            batch_op.create_index(batch_op.f(f"ix_{table}_owner"), ["owner"], unique=False)
    with op.batch_alter_table("uploaded_datasets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("stored_bytes", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.execute("UPDATE uploaded_datasets SET stored_bytes = length(content)")


def downgrade() -> None:
    with op.batch_alter_table("uploaded_datasets", schema=None) as batch_op:
        batch_op.drop_column("stored_bytes")
    for table in ("uploaded_datasets", "jobs"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_owner"))
            batch_op.drop_column("owner")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_owner"))
    op.drop_table("api_keys")
    op.drop_table("owners")
