"""Probe scenario: answers, counts caller audio, reports every call event to the test's probe."""

from tests.integration.probe import PROBE


class CountingUnit:
    def __init__(self, call_id):
        self.call_id = call_id

    async def accept_caller_audio(self, ulaw):
        PROBE.media(self.call_id, len(ulaw))


def on_alerting(e):
    call = e.call
    PROBE.record(call.id(), "alerting", {"callerid": e.callerid, "destination": e.destination, "customData": e.customData})
    call.addEventListener(CallEvents.Connected, lambda ev: PROBE.record(call.id(), "connected"))
    call.addEventListener(CallEvents.ToneReceived, lambda ev: on_tone(call, ev.tone))
    call.addEventListener(CallEvents.Disconnected, lambda ev: PROBE.record(call.id(), "disconnected", ev.reason))
    call.addEventListener(CallEvents.TransferComplete, lambda ev: PROBE.record(call.id(), "transfer_complete", ev.to))
    call.addEventListener(CallEvents.TransferFailed, lambda ev: PROBE.record(call.id(), "transfer_failed", ev.reason))
    call.addEventListener(CallEvents.PlaybackStarted, lambda ev: PROBE.record(call.id(), "playback_started", ev.duration))
    call.addEventListener(CallEvents.PlaybackFinished, lambda ev: PROBE.record(call.id(), "playback_finished", ev.get("stopped", False)))
    call.handleTones(True)
    call.answer()
    call.sendMediaTo(CountingUnit(call.id()))
    VoxEngine.addEventListener(AppEvents.Terminated, lambda ev: PROBE.record(call.id(), "terminated", ev.reason))


def on_tone(call, tone):
    PROBE.record(call.id(), "tone", tone)
    if tone == "9":
        call.hangup()
    elif tone == "0":
        call.transferTo({"to": "+15550123456"})
    elif tone == "7":
        call.startPlayback(call.customData()["prompt"])
    elif tone == "8":
        call.stopPlayback()
    elif tone == "*":
        raise RuntimeError("scenario bug on purpose")


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
