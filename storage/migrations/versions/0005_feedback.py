"""Citizen sessions (guided flows, waiting answers), feedback items with their history, and
the access log of contact data.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "citizen_sessions",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("flow", sa.String(length=16), nullable=True),
        sa.Column("step", sa.String(length=32), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("expires_at", TZ, nullable=True),
        sa.Column("has_notice", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("channel", "external_id", name=op.f("pk_citizen_sessions")),
    )
    op.create_table(
        "feedback_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("point_id", sa.String(length=64), nullable=True),
        sa.Column("procedure_id", sa.String(length=100), nullable=True),
        sa.Column("r_access", sa.Integer(), nullable=True),
        sa.Column("r_procedure", sa.Integer(), nullable=True),
        sa.Column("r_staff", sa.Integer(), nullable=True),
        sa.Column("r_result", sa.Integer(), nullable=True),
        sa.Column("r_feedback", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("dossier_code", sa.String(length=40), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("contact_consent_at", TZ, nullable=True),
        sa.Column("contact_erased_at", TZ, nullable=True),
        sa.Column("assignee", sa.String(length=100), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=100), nullable=True),
        sa.Column("answered_at", TZ, nullable=True),
        sa.Column("notify_status", sa.String(length=16), nullable=True),
        sa.Column("notify_claimed_at", TZ, nullable=True),
        sa.Column("notified_at", TZ, nullable=True),
        sa.Column("deadline_at", TZ, nullable=False),
        sa.Column("completed_at", TZ, nullable=True),
        sa.Column("closed_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_items")),
        sa.UniqueConstraint("code", name=op.f("uq_feedback_items_code")),
    )
    op.create_index("ix_feedback_items_citizen", "feedback_items", ["channel", "external_id"])
    op.create_index("ix_feedback_items_status", "feedback_items", ["kind", "status"])
    op.create_index("ix_feedback_items_created_at", "feedback_items", ["created_at"])
    op.create_index("ix_feedback_items_notify_status", "feedback_items", ["notify_status"])
    op.create_table(
        "feedback_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["feedback_items.id"],
            name=op.f("fk_feedback_events_item_id_feedback_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_events")),
    )
    op.create_index("ix_feedback_events_item_id", "feedback_events", ["item_id"])
    op.create_table(
        "data_access_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_access_log")),
    )


def downgrade() -> None:
    op.drop_table("data_access_log")
    op.drop_index("ix_feedback_events_item_id", table_name="feedback_events")
    op.drop_table("feedback_events")
    for name in ("notify_status", "created_at", "status", "citizen"):
        op.drop_index(f"ix_feedback_items_{name}", table_name="feedback_items")
    op.drop_table("feedback_items")
    op.drop_table("citizen_sessions")
