"""Alembic environment: always run from hookd.store.migrate with a connection in hand."""

from alembic import context

from hookd.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
