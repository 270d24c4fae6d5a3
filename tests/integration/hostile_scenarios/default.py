"""Scenario of the hostile-input and leak tests: the probe scenario (every call event reported to the
test's probe, caller audio counted), plus, per call, from the stream's custom parameters:

- model=1: open a RealtimeAPIClient (REALTIME_URL) and send media both ways. It is never closed
  here: the session must close it when the call ends (pitfall 13).
- unit=stuck: caller audio also goes to a unit that never returns (a scenario bug the carrier reader
  must survive); unit=raises: to a unit that raises on every frame.
"""

import asyncio

from tests.integration.probe import PROBE


class CountingUnit:
    def __init__(self, call_id):
        self.call_id = call_id

    async def accept_caller_audio(self, ulaw):
        PROBE.media(self.call_id, len(ulaw))


class StuckUnit:
    async def accept_caller_audio(self, ulaw):
        await asyncio.Event().wait()


class RaisingUnit:
    async def accept_caller_audio(self, ulaw):
        raise RuntimeError("media unit bug on purpose")


async def on_alerting(e):
    call = e.call
    options = e.customData
    PROBE.record(call.id(), "alerting", {"callerid": e.callerid, "destination": e.destination, "customData": options})
    call.addEventListener(CallEvents.Connected, lambda ev: PROBE.record(call.id(), "connected"))
    call.addEventListener(CallEvents.ToneReceived, lambda ev: PROBE.record(call.id(), "tone", ev.tone))
    call.addEventListener(CallEvents.Disconnected, lambda ev: PROBE.record(call.id(), "disconnected", ev.reason))
    VoxEngine.addEventListener(AppEvents.Terminated, lambda ev: PROBE.record(call.id(), "terminated", ev.reason))
    call.handleTones(True)
    call.answer()
    call.sendMediaTo(CountingUnit(call.id()))
    if options.get("unit") == "stuck":
        call.sendMediaTo(StuckUnit())
    elif options.get("unit") == "raises":
        call.sendMediaTo(RaisingUnit())
    if options.get("model"):
        client = await OpenAI.Beta.createRealtimeAPIClient({"apiKey": "sk-test-hostile", "reconnect": False})
        VoxEngine.sendMediaBetween(call, client)
        PROBE.record(call.id(), "client", client)


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
