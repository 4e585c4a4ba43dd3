"""Remember sent messages and the chat status of people.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:28:22.713055
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sent_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("message_ref", sa.String(length=64), nullable=False),
        sa.Column(
            "items",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("remediation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["remediation_id"],
            ["remediation.id"],
            name=op.f("fk_sent_message_remediation_id_remediation"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_message")),
        sa.UniqueConstraint(
            "channel", "message_ref", name=op.f("uq_sent_message_channel_message_ref")
        ),
        sa.UniqueConstraint("key", name=op.f("uq_sent_message_key")),
    )
    with op.batch_alter_table("sent_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sent_message_remediation_id"),
            ["remediation_id"],
            unique=False,
        )

    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("chat_status", sa.String(length=16), nullable=True)
        )
        batch_op.add_column(
            sa.Column("chat_checked_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("person", schema=None) as batch_op:
        batch_op.drop_column("chat_checked_at")
        batch_op.drop_column("chat_status")

    with op.batch_alter_table("sent_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sent_message_remediation_id"))

    op.drop_table("sent_message")
