"""epochs.health and trials.health: what a trial's network showed, and what it means

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 14:30:00

Per hidden layer its kernel's gradient norm, weight norm and update ratio, and its activations'
shares of dead, saturated and identical units; the output's spread (``health.signals``,
``worker/training/health_probe.py``). Null for epochs not probed (and every epoch before this).
``trials.health``: the trial's verdicts (``health.verdicts``) with their evidence and remedies,
and the job's constant-prediction baseline they were judged against.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("epochs", "trials"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("health", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    for table in ("trials", "epochs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("health")
