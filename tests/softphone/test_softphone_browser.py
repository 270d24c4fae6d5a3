"""The softphone page in Debian's chromium (Playwright pointed at /usr/bin/chromium, never a
download), with a fake microphone playing a WAV file: the call reaches the scenario, the local
engine hears the caller and barges in, the page plays the agent's audio (measured in the page),
a keypad digit reaches the scenario, and hanging up in the page ends the call on the server.

One call per test (chromium and aiortc are CPU-heavy on a small machine)."""

from __future__ import annotations

import asyncio
import contextlib
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from telephony_bridge.local_engine.tts import synthesize_async
from telephony_bridge.server.softphone_track import FRAME_MS, FRAMING
from telephony_bridge.testing.kit import CallFlow
from tests.console.browser import ARGS, CHROMIUM, need_browser
from tests.softphone.aiortc_phone import LOOPBACK

pytestmark = pytest.mark.timeout(120)

SCENARIOS = Path(__file__).with_name("scenarios")
GREETING = (
    "Hello! Thanks for calling Acme. This greeting is long on purpose, so that the caller has "
    "plenty of time to interrupt it before it ends, which is what this test does."
)
FRAMING_MS = (2 * FRAMING + 1) * FRAME_MS  # a stretch's framing silence and its last frame's padding, at most
# A browser's own media flags, and loopback candidates (Chromium gathers none on 127.0.0.1 unless told).
MEDIA_ARGS = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]


async def caller_wav(path: Path, speech_at_s: float | None) -> Path:
    """48 kHz mono: silence, then (optionally) the caller's line, then a long silence (Chromium loops the file)."""
    rate = 48000
    parts = [np.zeros(round(rate * (speech_at_s or 0)), dtype="<i2")]
    if speech_at_s is not None:
        parts.append(np.frombuffer(await synthesize_async("Wait, I have a question.", rate), dtype="<i2"))
    parts.append(np.zeros(rate * 60, dtype="<i2"))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.concatenate(parts).tobytes())
    return path


@contextlib.asynccontextmanager
async def softphone_page(wav: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, *MEDIA_ARGS, f"--use-file-for-fake-audio-capture={wav}"]
        )
        try:
            yield await (await browser.new_context()).new_page()
        finally:
            await browser.close()


async def softphone(page: Any, expression: str) -> Any:
    return await page.evaluate(f"window.softphone.{expression}")


async def test_a_browser_call_is_heard_both_ways_barges_in_and_a_key_reaches_the_scenario(tmp_path: Path):
    need_browser()
    wav = await caller_wav(tmp_path / "caller.wav", speech_at_s=6.0)
    async with CallFlow(SCENARIOS, secret_values=LOOPBACK) as flow, softphone_page(wav) as page:
        from playwright.async_api import expect

        flow.script([GREETING, "Sure."])
        journals: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        flow.runtime.on_session_end.append(lambda session: journals.put_nowait(list(session.journal.entries)))
        await page.goto(f"{flow.url}/softphone?token={flow.api_key}&number=%2B15550100&autocall=1")
        await page.wait_for_function("window.softphone.state === 'connected'", timeout=20_000)
        call_id = await softphone(page, "callId")
        transport = flow.runtime.softphone.transports[call_id]
        # The page plays the agent (measured by the page from its inbound RTP statistics)...
        await page.wait_for_function("window.softphone.heardSeconds > 0", timeout=20_000)
        # ...and the caller's microphone reaches the engine, whose VAD makes the scenario barge in.
        [engine] = flow.engine.model_connections

        def truncations() -> list[dict[str, Any]]:
            return [e for e in engine.received if e.get("type") == "conversation.item.truncate"]

        async with asyncio.timeout(30):
            while not truncations():  # the engine's record has no signal per message
                await asyncio.sleep(0.05)
        cut_ms = truncations()[0]["audio_end_ms"]
        stretches = transport.stretches  # a loop stall on a busy machine may split an answer in two
        # What the page measured it played covers the cut (read at once: the caller's turn ends
        # and the next answer plays a second or two later): no clear in WebRTC, the browser plays
        # everything it was sent. It counts the frames of silence framing each stretch of the
        # agent's speech too (server/softphone_track.py): at most that much more, never less.
        await page.wait_for_function(f"window.softphone.heardSeconds * 1000 >= {cut_ms}", timeout=10_000)
        heard_ms = await softphone(page, "heardSeconds") * 1000
        assert cut_ms <= heard_ms <= cut_ms + FRAMING_MS * stretches, (cut_ms, heard_ms, stretches)
        # The page's reports reach the transport over the data channel.
        async with asyncio.timeout(10):
            while transport.page_played_ms < cut_ms:
                await asyncio.sleep(0.05)
        # The live transcript: the agent, the barge-in, and the engine's transcript of the caller
        # (it measures speech, it does not understand it).
        await expect(page.locator("#transcript li.barge_in")).to_contain_text("heard", timeout=10_000)
        await expect(page.locator("#transcript li.agent").first).to_contain_text("Hello!", timeout=10_000)
        await expect(page.locator("#transcript li.caller").first).to_contain_text("speech", timeout=15_000)

        await page.click('#keypad .key[data-digit="5"]')  # the scenario hangs up on 5
        await page.wait_for_function("window.softphone.state === 'ended'", timeout=15_000)
        journal = await asyncio.wait_for(journals.get(), 15)
    started = next(e for e in journal if e["event"] == "call.started")
    assert (started["scenario"], started["number"]) == ("default", "+15550100")
    assert [e["digit"] for e in journal if e["event"] == "caller.dtmf"] == ["5"]
    assert next(e for e in journal if e["event"] == "call.ended")["reason"] == "hangup by scenario"


async def test_hanging_up_in_the_page_ends_the_call_on_the_server(tmp_path: Path):
    need_browser()
    wav = await caller_wav(tmp_path / "silence.wav", speech_at_s=None)
    async with CallFlow(SCENARIOS, secret_values=LOOPBACK) as flow, softphone_page(wav) as page:
        flow.script([GREETING])
        journals: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        flow.runtime.on_session_end.append(lambda session: journals.put_nowait(list(session.journal.entries)))
        await page.goto(f"{flow.url}/softphone?token={flow.api_key}&number=%2B15550100&autocall=1")
        await page.wait_for_function("window.softphone.state === 'connected'", timeout=20_000)
        assert len(flow.runtime.sessions) == 1
        await softphone(page, "hangup()")
        assert await softphone(page, "state") == "ended"
        journal = await asyncio.wait_for(journals.get(), 15)
        assert not flow.runtime.sessions and not flow.runtime.softphone.transports
    assert next(e for e in journal if e["event"] == "call.ended")["reason"] == "caller hung up"
