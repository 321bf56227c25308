"""job_splits: the rows of the dataset each job trained and validated on

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 08:00:00

Indices into the dataset's rows (int32 arrays), so that a user can rebuild a job's validation
split exactly. One row per job, deleted with it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_splits",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("train_rows", sa.LargeBinary(), nullable=False),
        sa.Column("validation_rows", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("job_splits")
