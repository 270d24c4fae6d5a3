"""The scenario runtime's promises, through real calls: Connected reaches a listener added after
answer() (pitfall 23), a scenario sees SessionUpdated only for its own session updates (pitfall
22), and a task a handler started at hang-up keeps the scenario's globals until it finishes,
within the grace period (pitfall 24)."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

LATE = """
import asyncio

CALLER = None
SESSION_UPDATES = []

async def on_call_alerting(e):
    global CALLER
    CALLER = e.callerid
    e.call.answer()
    e.call.addEventListener(CallEvents.Connected, lambda event: Logger.info("connected"))  # after answer(), as in Voximplant's examples
    client = await OpenAI.createRealtimeAPIClient({})
    client.addEventListener(OpenAI.RealtimeAPIEvents.SessionUpdated,
                            lambda event: SESSION_UPDATES.append(event.data.payload.session.instructions))
    client.sessionUpdate({"session": {"type": "realtime", "instructions": "Be brief."}})
    VoxEngine.sendMediaBetween(e.call, client)
    client.responseCreate({})

    async def summary(event):
        await asyncio.sleep(3)  # posting a call summary somewhere slow
        Logger.info(f"summary: caller {CALLER}, session updates seen {SESSION_UPDATES}")
    e.call.addEventListener(CallEvents.Disconnected, summary)

VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
"""


@pytest.fixture
def call_flow_scenarios(tmp_path):
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / "default.py").write_text(textwrap.dedent(LATE))
    return directory


async def test_connected_session_updated_and_a_slow_hang_up_task(call_flow):
    call_flow.script(["Hello there."])
    report = await call_flow.call(to="+15550100", from_="+15550199", hang_up_after_silence=0.5)
    messages = [line.message for line in report.log]
    assert "connected" in messages
    assert "summary: caller +15550199, session updates seen ['Be brief.']" in messages, report.timeline()
    assert not report.errors
    assert not call_flow.runtime.sessions
