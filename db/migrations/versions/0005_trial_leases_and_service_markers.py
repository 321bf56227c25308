"""a lease token on every claim of a trial, results folded into the search, service markers

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00

``trials.lease`` is a fresh token each time a worker claims a trial: every write of that attempt
(heartbeat, epoch, result, hand-back) is conditional on it in the same statement, so a worker
whose trial was taken back writes nothing over the attempt that replaced it. ``trials.reported``:
a result is written without the job's lock, then folded into the job's search by whichever worker
holds it (trials that ended before this revision count as folded). ``service_markers``
holds named moments every worker must know of: when the database last came back after an outage
(the reaper then leaves leases alone for one lease period, so an outage never counts as a
worker's death).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("reported", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        "UPDATE trials SET reported = true "
        "WHERE status IN ('completed', 'diverged', 'failed', 'cancelled')"
    )
    op.create_table(
        "service_markers",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("service_markers")
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_column("reported")
        batch_op.drop_column("lease")
