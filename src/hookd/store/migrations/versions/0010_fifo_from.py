"""fifo heads on SQLite: `webhooks.fifo_from` instead of the partial index ix_deliveries_head

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:30:00

The second partial index on `deliveries` (0004) cost SQLite about a fifth of its publish rate.
SQLite commits ids in order, so a fifo webhook's next delivery is found from the lowest id that
may still be claimable, kept on the webhook. PostgreSQL keeps the index: its ids can become
visible out of order.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CLAIMABLE = sa.text("state IN ('pending', 'retrying', 'delivering')")


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("fifo_from", _Id, server_default="0", nullable=False))
    if _is_sqlite():
        op.drop_index("ix_deliveries_head", table_name="deliveries", sqlite_where=_CLAIMABLE)


def downgrade() -> None:
    if _is_sqlite():
        op.create_index(
            "ix_deliveries_head",
            "deliveries",
            ["webhook_id", "id"],
            unique=False,
            sqlite_where=_CLAIMABLE,
        )
    with op.batch_alter_table("webhooks", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("fifo_from")
