"""Places a call with VoxEngine.callSIP (started from outside, as an outbound campaign would be)."""

import json

from tests.sip.probe import PROBE

KEY = "outbound"


class CountingUnit:
    async def accept_caller_audio(self, frame):
        PROBE.audio_bytes[KEY] += len(frame)


def on_started(e):
    data = json.loads(VoxEngine.customData())
    call = VoxEngine.callSIP(data["uri"], {"callerid": "+15550999", "headers": {"X-Campaign": "spring"}})
    call.addEventListener(CallEvents.Ringing, lambda ev: on_ringing(call, data))
    call.addEventListener(CallEvents.Connected, lambda ev: on_connected(call))
    call.addEventListener(CallEvents.Failed, lambda ev: on_end("failed", ev.code))
    call.addEventListener(CallEvents.Disconnected, lambda ev: on_end("disconnected", ev.reason))
    call.addEventListener(CallEvents.Failed, lambda ev: PROBE.record(KEY, "failed_reason", ev.reason))


def on_ringing(call, data):
    PROBE.record(KEY, "ringing")
    if data.get("hangup_while_ringing"):
        call.hangup()  # before the answer: the bridge CANCELs


def on_connected(call):
    PROBE.record(KEY, "connected", call.id())
    call.sendMediaTo(CountingUnit())
    call.handleTones(True)
    call.addEventListener(CallEvents.ToneReceived, lambda ev: PROBE.record(KEY, "tone", ev.tone))
    call.sendDigits("7")  # RFC 4733 out; the callee's RTP echo brings the events back


def on_end(name, value):
    PROBE.record(KEY, name, value)
    VoxEngine.terminate()


VoxEngine.addEventListener(AppEvents.Started, on_started)
