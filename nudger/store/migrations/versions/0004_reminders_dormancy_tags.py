"""reminders, dormant enrolments, tags, outbox nudge link

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 14:02:05.352941
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dormant_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reminded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nudge_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_outbox_nudge_id"), ["nudge_id"], unique=False)
        batch_op.create_foreign_key("fk_outbox_nudge_id", "nudge", ["nudge_id"], ["id"])

    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "tags", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False, server_default=""
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("tags")

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint("fk_outbox_nudge_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_outbox_nudge_id"))
        batch_op.drop_column("nudge_id")

    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.drop_column("reminded_at")

    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_column("dormant_since")
