"""each webhook knows its dialect; a repository webhook's own fields in their own table

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:30:00

`webhooks.dialect` is set from what used to imply it (a public id: the repository dialect).
`uri`, `repository_id` and `handle_response` move to `repository_webhooks`; `api_key`, sent as
`Authorization: Bearer`, is now the core's `bearer_token`.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_WEBHOOK_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "repository_webhooks",
        sa.Column("webhook_id", _WEBHOOK_ID, nullable=False),
        sa.Column("repository_id", sa.String(length=200), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("handle_response", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["repository_id"],
            ["repositories.id"],
            name=op.f("fk_repository_webhooks_repository_id_repositories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_repository_webhooks_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("webhook_id", name=op.f("pk_repository_webhooks")),
    )
    op.create_index(
        op.f("ix_repository_webhooks_repository_id"),
        "repository_webhooks",
        ["repository_id"],
        unique=False,
    )
    op.execute(
        "INSERT INTO repository_webhooks (webhook_id, repository_id, uri, handle_response) "
        "SELECT id, repository_id, uri, COALESCE(handle_response, 'NONE') FROM webhooks "
        "WHERE repository_id IS NOT NULL AND uri IS NOT NULL"
    )
    op.add_column("webhooks", sa.Column("dialect", sa.String(length=20), nullable=True))
    op.execute(
        "UPDATE webhooks SET dialect = "
        "CASE WHEN public_id IS NULL THEN 'device' ELSE 'repository' END"
    )
    with op.batch_alter_table("webhooks", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("dialect", existing_type=sa.String(length=20), nullable=False)
        batch.alter_column("api_key", new_column_name="bearer_token", existing_type=sa.Text())
        batch.drop_index("ix_webhooks_repository_id")
        batch.drop_constraint("fk_webhooks_repository_id_repositories", type_="foreignkey")
        batch.drop_column("uri")
        batch.drop_column("repository_id")
        batch.drop_column("handle_response")


def downgrade() -> None:
    with op.batch_alter_table("webhooks", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("handle_response", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("repository_id", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("uri", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_webhooks_repository_id_repositories",
            "repositories",
            ["repository_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_webhooks_repository_id", ["repository_id"], unique=False)
        batch.alter_column("bearer_token", new_column_name="api_key", existing_type=sa.Text())
        batch.drop_column("dialect")
    op.execute(
        "UPDATE webhooks SET "
        "repository_id = (SELECT r.repository_id FROM repository_webhooks r "
        "WHERE r.webhook_id = webhooks.id), "
        "uri = (SELECT r.uri FROM repository_webhooks r WHERE r.webhook_id = webhooks.id), "
        "handle_response = (SELECT r.handle_response FROM repository_webhooks r "
        "WHERE r.webhook_id = webhooks.id)"
    )
    op.drop_index(op.f("ix_repository_webhooks_repository_id"), table_name="repository_webhooks")
    op.drop_table("repository_webhooks")
