"""trials record when their proposal was made and how long it took

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00

``trials.proposed_at``: when the search algorithm proposed the trial (its row was created), so
the time it then waited in the queue is ``started_at - proposed_at``. ``trials.proposal_s``: the
seconds the algorithm took to propose it (a Bayesian proposal refits its Gaussian process).
Null for trials proposed before this migration.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("proposal_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials", schema=None) as batch_op:
        batch_op.drop_column("proposal_s")
        batch_op.drop_column("proposed_at")
