"""Alembic migrations of the call store (server/call_store.py), run at start-up by `CallStore.migrate`."""
