"""The call store's first schema: calls and their timeline items, indexed for the console's filters.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("carrier", sa.String(32)),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("from_number", sa.String(64)),
        sa.Column("to_number", sa.String(64)),
        sa.Column("scenario", sa.String(128)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("duration_s", sa.Float),
        sa.Column("end_reason", sa.String(64)),
        sa.Column("end_detail", sa.Text),
        sa.Column("barge_ins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"),
        sa.Column("recording", sa.String(200)),
        sa.Column("recording_offset_s", sa.Float),
        sa.Column("latency", sa.JSON),
        sa.Column("instance", sa.String(200)),
    )
    op.create_index("ix_calls_started_at", "calls", ["started_at"])
    op.create_index("ix_calls_from_started", "calls", ["from_number", "started_at"])
    op.create_index("ix_calls_to_started", "calls", ["to_number", "started_at"])
    op.create_index("ix_calls_scenario_started", "calls", ["scenario", "started_at"])
    op.create_index("ix_calls_end_reason_started", "calls", ["end_reason", "started_at"])
    op.create_table(
        "call_items",
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("start_s", sa.Float, nullable=False),
        sa.Column("end_s", sa.Float),
        sa.Column("text", sa.Text),
        sa.Column("data", sa.JSON),
    )


def downgrade() -> None:
    op.drop_table("call_items")
    op.drop_table("calls")
