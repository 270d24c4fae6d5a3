"""Regenerate the README's console screenshots: `python docs/console_screenshots.py`.

Runs the real bridge in process (call-flow kit, local engine, call store in a temporary
directory), places a few calls with the phone simulator — one recorded with a barge-in, one with
a tool call — and photographs /console and the recorded call's page with Debian's chromium.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from telephony_bridge.local_engine import ToolCall, Turn
from telephony_bridge.testing.kit import CallFlow
from tests.console.browser import chromium_page

KEY = "screenshot-key-0123456789"
OUT = ROOT / "docs"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        async with CallFlow(ROOT / "scenarios", data_dir=data, recordings_dir=data / "recordings", api_keys=[KEY],
                            call_store=True) as flow:
            flow.script(["Hello, Acme here. How can I help?",
                         Turn(call=ToolCall("get_current_time"), then="It's {output.time}."), "Anything else?"])
            await flow.call(to="+15550100", from_="+15550123", caller_says=[(3.0, "What time is it?")])
            await flow.call(to="+15550300", from_="+15550177", caller_says=[(3.0, "Hi there.")])
            flow.script(["Hello! This call is recorded. Thanks for calling Acme, how can I help you today?",
                         "Sure, I can move your appointment to Friday at ten."])
            recorded = await flow.call(to="+15550600", from_="+15550142",
                                       caller_says=[(1.5, "Wait, I need to change my appointment.")])
            await flow.runtime.call_store.flushed()
            async with chromium_page(viewport={"width": 1366, "height": 768}, device_scale_factor=1) as page:
                await page.goto(f"{flow.url}/console?token={KEY}")
                await page.screenshot(path=str(OUT / "console-list.png"))
                await page.goto(f"{flow.url}/console/calls/{recorded.call_sid}")
                await page.locator("audio#player").evaluate("a => { a.currentTime = 2.2; }")
                await page.wait_for_function(
                    "document.getElementById('playhead').getAttribute('visibility') === 'visible'")
                await page.screenshot(path=str(OUT / "console-call.png"), full_page=True)
    print(f"wrote {OUT / 'console-list.png'} and {OUT / 'console-call.png'}")


if __name__ == "__main__":
    asyncio.run(main())
