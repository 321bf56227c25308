"""workers: each Celery worker's main process says it is alive

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:30:00

Its reaper writes ``heartbeat_at`` at every pass (``reaper_interval_s``), idle or not, so
``hpsearch status`` knows which workers are alive on any broker (Flower sees none on the
embedded one). ``stopped_at`` is set by a warm shutdown.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("workers")
