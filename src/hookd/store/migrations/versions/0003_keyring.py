"""the keyring: the store's salt for the key that seals secrets at rest

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:30:00

HOOKD_SECRET_KEY goes through Argon2id with this store's random salt (seal version 2) instead of
a bare SHA-256 (version 1). The salt is made by the first hookd that starts with a key; rows
sealed the old way, and rows stored in clear before a key was set, are re-sealed then too
(`keyring.seal_stored_secrets`): a migration cannot do it, it does not know the key.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyring",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_keyring")),
    )


def downgrade() -> None:
    op.drop_table("keyring")
