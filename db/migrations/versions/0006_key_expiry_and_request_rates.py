"""API keys may expire and record when they were last used; owners may have a request rate of
their own

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:00:00

``api_keys.expires_at``: a key is refused (401) from then on (null: it never expires).
``api_keys.last_used_at``: when a request last authenticated with it, to the minute (written at
most once a minute per key). ``owners.requests_per_minute``: the owner's request-rate limit per
key (null: ``HPSEARCH_REQUESTS_PER_MINUTE``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requests_per_minute", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("owners", schema=None) as batch_op:
        batch_op.drop_column("requests_per_minute")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
