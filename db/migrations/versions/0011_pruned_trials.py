"""jobs.trials_pruned: trials stopped early as not worth finishing; trials.confirms and
trials.confirm_seed: a search's best configurations trained again with other seeds

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 16:30:00

A trial that cannot learn (collapsed to a constant prediction, its objective not finite) stops
after ``training.stop_hopeless.patience`` epochs as ``pruned`` (``trials.status`` is a plain
string column: the new value needs no change there). The job counts them beside its completed,
failed and diverged trials; jobs from before count none. A confirmation run
(``search.confirm``) names the trial it re-runs and its seed; the search's own trials name none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("trials_pruned", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("confirms", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("confirm_seed", sa.Integer(), nullable=True))


def downgrade() -> None:
    # the code before knows no pruned trial: it ends as failed, its reason kept
    op.execute("UPDATE jobs SET trials_failed = trials_failed + trials_pruned")
    op.execute("UPDATE trials SET status = 'failed' WHERE status = 'pruned'")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("confirm_seed")
        batch.drop_column("confirms")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("trials_pruned")
