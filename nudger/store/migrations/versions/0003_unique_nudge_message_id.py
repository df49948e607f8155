"""unique nudge message id

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 13:50:31.669119
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.create_unique_constraint("uq_nudge_message_id", ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("nudge", schema=None) as batch_op:
        batch_op.drop_constraint("uq_nudge_message_id", type_="unique")
