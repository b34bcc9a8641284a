"""what the web console reads: per-minute attempt counters, events findable by id

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02 09:00:00

`delivery_stats` is written from now on (the overview's charts start empty); `ix_events_id`
lets the delivery log find an event by its id.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

_LATENCY_COLUMNS = (
    "ms_1",
    "ms_2",
    "ms_5",
    "ms_10",
    "ms_20",
    "ms_50",
    "ms_100",
    "ms_200",
    "ms_500",
    "ms_1000",
    "ms_2000",
    "ms_5000",
    "ms_10000",
    "ms_30000",
    "ms_more",
)


def upgrade() -> None:
    op.create_table(
        "delivery_stats",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("answered_2xx", sa.BigInteger(), nullable=False),
        sa.Column("exhausted", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _LATENCY_COLUMNS),
        sa.PrimaryKeyConstraint("minute", "shard", name=op.f("pk_delivery_stats")),
    )
    op.create_index(op.f("ix_events_id"), "events", ["id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_events_id"), table_name="events")
    op.drop_table("delivery_stats")
