"""Alembic's environment: the connection comes from `CallStore.migrate` (never a URL from a file)."""

from alembic import context

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters tables by copying them; later migrations then work on both back ends.
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
