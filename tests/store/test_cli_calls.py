"""`telephony-bridge calls list | show | export` over a store the bridge wrote."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from telephony_bridge.cli import main
from telephony_bridge.server.call_store import CallStore, database_url
from tests.store.journal_samples import many, record

pytestmark = pytest.mark.usefixtures("cli_logging_untouched")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    async def fill() -> None:
        store = CallStore(database_url(tmp_path, None))
        await store.migrate()
        await store.save([record("CA1", started_at=datetime(2026, 1, 1, tzinfo=UTC)),
                          *many(5, datetime(2026, 2, 1, tzinfo=UTC), timedelta(days=1))])
        await store.close()
    asyncio.run(fill())
    return tmp_path


def test_list_show_and_export(data_dir: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["calls", "--data-dir", str(data_dir), "list", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and "CA000004" in lines[1] and "caller_hung_up" in lines[1]

    assert main(["calls", "--data-dir", str(data_dir), "list", "--json", "--number", "+15550199"]) == 0
    [row] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["id"] == "CA1" and row["to_number"] == "+15550600"

    assert main(["calls", "--data-dir", str(data_dir), "show", "CA1"]) == 0
    call = json.loads(capsys.readouterr().out)
    assert call["items"][2]["kind"] == "barge_in" and call["items"][2]["heard_ms"] == 1500

    assert main(["calls", "--data-dir", str(data_dir), "export", "--since", "2026-02-02", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["id"] for r in rows] == ["CA000001", "CA000002", "CA000003", "CA000004"]  # oldest first
    assert rows[0]["started_at"].startswith("2026-02-02T00:00:00")

    assert main(["calls", "--data-dir", str(data_dir), "export", "--since", "2026-02-04"]) == 0
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == ["CA000003", "CA000004"]

    assert main(["calls", "--data-dir", str(data_dir), "show", "CAnone"]) == 1


def test_no_store_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["calls", "--data-dir", str(tmp_path / "empty"), "list"]) == 1
    assert "no call store at" in capsys.readouterr().err
