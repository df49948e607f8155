"""circle votes and nudges

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 14:32:48.297652
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("circle", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nudged_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keep_vote", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_column("keep_vote")

    with op.batch_alter_table("circle", schema=None) as batch_op:
        batch_op.drop_column("nudged_at")
