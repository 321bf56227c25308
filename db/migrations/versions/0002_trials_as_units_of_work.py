"""trials as the unit of work: waiting status, claim/lease columns, Hyperband checkpoints

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00

``trials.status`` is a plain VARCHAR(16) (non-native enum, no CHECK constraint), so the new
``waiting`` value needs no DDL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("release_requested", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.alter_column("started_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.create_index(batch_op.f("ix_trials_status"), ["status"], unique=False)

    op.create_table(
        "trial_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_id", "trial_number", name="uq_checkpoint_job_trial"),
    )
    with op.batch_alter_table("trial_checkpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trial_checkpoints_job_id"), ["job_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("trial_checkpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trial_checkpoints_job_id"))
    op.drop_table("trial_checkpoints")
    # Waiting trials have no start time; they never ran, so the old schema cannot hold them.
    op.execute("DELETE FROM trials WHERE status = 'waiting'")
    op.execute(
        "UPDATE trials SET started_at = COALESCE(finished_at, CURRENT_TIMESTAMP) "
        "WHERE started_at IS NULL"
    )
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trials_status"))
        batch_op.alter_column(
            "started_at", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_column("release_requested")
        batch_op.drop_column("enqueued_at")
        batch_op.drop_column("heartbeat_at")
        batch_op.drop_column("worker")
        batch_op.drop_column("attempts")
