from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store.postgres import postgres_server


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL server for the whole test session (started once: a second or two)."""
    with postgres_server() as url:
        yield url
