"""delivery controls: fair claims, suspension, rate limits, ordering, secret rotation; ids never
reused

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 23:00:00

Webhooks get their delivery controls (`rate_limit`, `ordering`), the previous secret of a
rotation, and the suspension and rate-limit bookkeeping. The claim index leads with the webhook,
since claims now take a share from each webhook; a second partial index finds a fifo webhook's
next delivery. On SQLite, `deliveries` and `attempts` are
rebuilt with AUTOINCREMENT, so that an id is never handed out twice; their rows are carried over.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_CLAIMABLE = sa.text("state IN ('pending', 'retrying', 'delivering')")


def upgrade() -> None:
    op.add_column("webhooks", sa.Column("rate_limit", sa.Integer(), nullable=True))
    op.add_column(
        "webhooks",
        sa.Column("ordering", sa.String(length=8), server_default="none", nullable=False),
    )
    op.add_column("webhooks", sa.Column("previous_secret", sa.Text(), nullable=True))
    op.add_column("webhooks", sa.Column("previous_secret_until", sa.Float(), nullable=True))
    op.add_column(
        "webhooks", sa.Column("failures", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("webhooks", sa.Column("probe_at", sa.Float(), nullable=True))
    op.add_column("webhooks", sa.Column("rate_next_at", sa.Float(), nullable=True))

    with op.batch_alter_table(
        "deliveries", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.add_column(
            sa.Column(
                "retry_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
            )
        )
        batch.drop_index("ix_deliveries_due", postgresql_where=_CLAIMABLE, sqlite_where=_CLAIMABLE)
        batch.create_index(
            "ix_deliveries_due",
            ["webhook_id", "due_at"],
            unique=False,
            postgresql_where=_CLAIMABLE,
            sqlite_where=_CLAIMABLE,
        )
        batch.create_index(
            "ix_deliveries_head",
            ["webhook_id", "id"],
            unique=False,
            postgresql_where=_CLAIMABLE,
            sqlite_where=_CLAIMABLE,
        )
    with op.batch_alter_table(
        "attempts", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def downgrade() -> None:
    with op.batch_alter_table("attempts", recreate="always"):
        pass
    with op.batch_alter_table("deliveries", recreate="always") as batch:
        batch.drop_index("ix_deliveries_head", postgresql_where=_CLAIMABLE, sqlite_where=_CLAIMABLE)
        batch.drop_index("ix_deliveries_due", postgresql_where=_CLAIMABLE, sqlite_where=_CLAIMABLE)
        batch.create_index(
            "ix_deliveries_due",
            ["due_at"],
            unique=False,
            postgresql_where=_CLAIMABLE,
            sqlite_where=_CLAIMABLE,
        )
        batch.drop_column("retry_requested")
    with op.batch_alter_table("webhooks", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for column in (
            "rate_next_at",
            "probe_at",
            "failures",
            "previous_secret_until",
            "previous_secret",
            "ordering",
            "rate_limit",
        ):
            batch.drop_column(column)
