"""Answers, reports every call event to the SIP tests' probe, hangs up on DTMF 9."""

from tests.sip.probe import PROBE


class CountingUnit:
    def __init__(self, call_id):
        self.call_id = call_id

    async def accept_caller_audio(self, frame):
        PROBE.audio_bytes[self.call_id] += len(frame)


def on_alerting(e):
    call = e.call
    PROBE.record(
        call.id(), "alerting", {"callerid": e.callerid, "destination": e.destination, "customData": e.customData}
    )
    call.addEventListener(CallEvents.Connected, lambda ev: PROBE.record(call.id(), "connected"))
    call.addEventListener(CallEvents.Disconnected, lambda ev: PROBE.record(call.id(), "disconnected", ev.reason))
    call.addEventListener(CallEvents.ToneReceived, lambda ev: on_tone(call, ev.tone))
    call.addEventListener(CallEvents.TransferComplete, lambda ev: PROBE.record(call.id(), "transfer_complete", ev.to))
    call.addEventListener(CallEvents.TransferFailed, lambda ev: PROBE.record(call.id(), "transfer_failed", ev.reason))
    call.handleTones(True)
    call.answer()
    call.sendMediaTo(CountingUnit(call.id()))


def on_tone(call, tone):
    PROBE.record(call.id(), "tone", tone)
    if tone == "9":
        call.hangup()
    elif tone == "0":
        call.transferTo({"to": "+15550123"})


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
