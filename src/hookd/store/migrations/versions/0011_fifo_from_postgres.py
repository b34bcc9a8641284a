"""fifo heads on PostgreSQL too: `webhooks.fifo_from`, not the partial index ix_deliveries_head

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 20:00:00

The partial index was written at every delivery's publish and again at its claim, though only
fifo webhooks read it: a burst wrote 18 % more WAL with it. A fifo claim now walks
the webhook's deliveries in id order from `webhooks.fifo_from`, as on SQLite, and from its
earliest-due delivery when that is lower (store/queue.py). Each fifo webhook's bound starts at
its lowest claimable delivery, else at its last.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_CLAIMABLE = "state IN ('pending', 'retrying', 'delivering')"


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _is_sqlite():
        return
    op.execute(f"""
        UPDATE webhooks AS w SET fifo_from = COALESCE(
            (SELECT min(d.id) FROM deliveries AS d WHERE d.webhook_id = w.id AND d.{_CLAIMABLE}),
            (SELECT max(d.id) FROM deliveries AS d WHERE d.webhook_id = w.id),
            0)
        WHERE w.ordering = 'fifo'
    """)
    op.drop_index(
        "ix_deliveries_head", table_name="deliveries", postgresql_where=sa.text(_CLAIMABLE)
    )


def downgrade() -> None:
    if _is_sqlite():
        return
    op.create_index(
        "ix_deliveries_head",
        "deliveries",
        ["webhook_id", "id"],
        unique=False,
        postgresql_where=sa.text(_CLAIMABLE),
    )
