"""The web console in a real browser (Debian's chromium): a call placed with the phone simulator
shows up live while in progress and at its end, then in the list; its page shows the transcript,
the barge-in marker, and plays the recording with the timeline following."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from telephony_bridge.testing.kit import CallFlow
from tests.console.browser import chromium_page, need_browser

pytestmark = pytest.mark.timeout(90)

KEY = "console-test-key-0123456789"
GREETING = "Hello! This call is recorded. Thanks for calling Acme, how can I help you today?"


async def test_live_view_list_and_call_page(tmp_path: Path):
    need_browser()
    async with CallFlow("scenarios", data_dir=tmp_path, recordings_dir=tmp_path / "recordings", api_keys=[KEY],
                        call_store=True) as flow, chromium_page(viewport={"width": 1366, "height": 900}) as page:
        from playwright.async_api import expect

        flow.script([GREETING, "Sure."])
        # The token once in the URL: an HttpOnly cookie, and the bare URL.
        await page.goto(f"{flow.url}/console/live?token={KEY}")
        assert page.url == f"{flow.url}/console/live"
        await expect(page.locator("#live-status")).to_have_text("no call in progress")

        call = asyncio.create_task(flow.call(to="+15550600", from_="+15550142", caller_says=[(1.5, "Wait.")]))
        card = page.locator(".live-call")
        await expect(card.locator(".state")).to_have_text("in progress", timeout=15_000)
        await expect(card.locator(".from")).to_have_text("+15550142")
        await expect(card.locator("li.agent").first).to_contain_text("Hello!", timeout=15_000)
        report = await call
        await expect(card.locator(".state")).to_have_text("ended: caller_hung_up", timeout=10_000)
        await expect(page.locator("#live-status")).to_have_text("no call in progress")
        await flow.runtime.call_store.flushed()

        await page.goto(f"{flow.url}/console")
        row = page.locator(f'tr[data-call-id="{report.call_sid}"]')
        await expect(row.locator(".from")).to_have_text("+15550142")
        await expect(row.locator(".to")).to_have_text("+15550600")
        await row.locator("a.call-link").click()
        await expect(page).to_have_url(f"{flow.url}/console/calls/{report.call_sid}")

        lines = page.locator("#transcript li")
        await expect(lines.filter(has_text="Hello! This call is")).to_have_count(1)
        await expect(lines.filter(has_text="Sure.")).to_have_count(1)
        await expect(page.locator("#transcript li.barge_in")).to_contain_text(re.compile(r"heard \d+\.\d\d s"))
        await expect(page.locator("svg .barge-in-marker")).to_have_count(1)
        assert await page.locator("svg .caller-wave").get_attribute("d")  # the waveforms were drawn

        player = page.locator("audio#player")
        assert await player.get_attribute("src") == f"/console/calls/{report.call_sid}/recording"
        await player.evaluate("audio => audio.play()")
        await page.wait_for_function("document.getElementById('player').currentTime > 0.5", timeout=15_000)
        assert await page.locator("#playhead").get_attribute("visibility") == "visible"
        await expect(page.locator("#transcript li.current")).to_have_count(1)
