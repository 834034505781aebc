"""The pending-deliveries index ends with the id, so a sender's claim ("the due pending rows
of this channel, oldest first, ties by id, LIMIT n") is read in index order instead of
sorting every pending row of a large audience on each claim.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    op.create_index(
        "ix_deliveries_pending", "deliveries", ["status", "channel", "next_attempt_at", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_pending", table_name="deliveries")
    op.create_index("ix_deliveries_pending", "deliveries", ["status", "channel", "next_attempt_at"])
