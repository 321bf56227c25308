"""jobs.ended_by: what ended a search; trials.pruned_epoch and trials.pruned_against: where the
job's pruner stopped a trial, and the value it was compared against

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 20:00:00

A search may now end before its trials run out (``search.target``, ``search.patience_trials``);
the job says which stop ended it. Jobs from before say nothing. A trial the job's pruner
(``search.pruner``: median or asha) stopped is ``pruned`` as a hopeless one is, and records the
epoch and the value that decided it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("ended_by", sa.String(32), nullable=True))
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("pruned_epoch", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("pruned_against", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("pruned_against")
        batch.drop_column("pruned_epoch")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("ended_by")
