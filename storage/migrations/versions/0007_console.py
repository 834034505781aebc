"""The staff console: accounts, their sessions, the sign-in throttle and the audit log; where
each step of an item's or a campaign's history came from (``via``); the author's account of
a campaign; the folded text the feedback search looks in, and the inbox's indexes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

from content.normalize import fold

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
BATCH = 1000
# The staff's inbox: a status tab newest first, counts per status, what is overdue, what is
# assigned to me; and the surveys of a period for the statistics.
INBOX_INDEXES = {
    "status_id": ["status", "id"],
    "status_deadline": ["status", "deadline_at"],
    "assignee": ["assignee", "status"],
    "kind_created": ["kind", "created_at"],
}


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("password_changed_at", TZ, nullable=False),
        sa.Column("disabled_at", TZ, nullable=True),
        sa.Column("last_signin_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("username", name=op.f("uq_accounts_username")),
    )
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_console_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_console_sessions")),
    )
    op.create_index("ix_console_sessions_account_id", "console_sessions", ["account_id"])
    op.create_table(
        "signin_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failure_at", TZ, nullable=False),
        sa.Column("last_failure_at", TZ, nullable=False),
        sa.Column("locked_until", TZ, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_signin_throttle")),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=48), nullable=False),
        sa.Column("target", sa.String(length=120), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"])
    op.create_index("ix_audit_log_account_id", "audit_log", ["account_id", "id"])
    op.create_index("ix_audit_log_action", "audit_log", ["action", "id"])

    for table in ("feedback_events", "campaign_events", "data_access_log"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("via", sa.String(length=16), nullable=True))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("author_account_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("feedback_items") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=True))
    for name, columns in INBOX_INDEXES.items():
        op.create_index(f"ix_feedback_items_{name}", "feedback_items", columns)

    # Every step recorded so far came from a citizen, the system or the command line.
    op.execute("UPDATE feedback_events SET via = 'citizen' WHERE actor = 'citizen'")
    op.execute("UPDATE feedback_events SET via = 'cli' WHERE via IS NULL")
    op.execute("UPDATE campaign_events SET via = 'system' WHERE actor = 'hệ thống'")
    op.execute("UPDATE campaign_events SET via = 'cli' WHERE via IS NULL")
    op.execute("UPDATE data_access_log SET via = 'cli'")
    _fold_existing_items()


def _fold_existing_items() -> None:
    connection = op.get_bind()
    items = sa.table(
        "feedback_items",
        sa.column("id", sa.Integer()),
        sa.column("comment", sa.Text()),
        sa.column("description", sa.Text()),
        sa.column("answer", sa.Text()),
        sa.column("search_text", sa.Text()),
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(items.c.id, items.c.comment, items.c.description, items.c.answer)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        folded = [
            {"item_id": row.id, "search_text": fold_fields(row[1:])} for row in rows if any(row[1:])
        ]
        if folded:
            connection.execute(items.update().where(items.c.id == sa.bindparam("item_id")), folded)
        last = rows[-1].id


def fold_fields(values: tuple[str | None, ...]) -> str | None:
    # The same as storage.feedback.search_text; a migration keeps its own copy so that it
    # still means what it meant when the code moves on.
    text = " | ".join(fold(value) for value in values if value)
    return text or None


def downgrade() -> None:
    for name in INBOX_INDEXES:
        op.drop_index(f"ix_feedback_items_{name}", table_name="feedback_items")
    with op.batch_alter_table("feedback_items") as batch:
        batch.drop_column("search_text")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("author_account_id")
    for table in ("data_access_log", "campaign_events", "feedback_events"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("via")
    for name in ("action", "account_id", "created_at"):
        op.drop_index(f"ix_audit_log_{name}", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("signin_throttle")
    op.drop_index("ix_console_sessions_account_id", table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_table("accounts")
