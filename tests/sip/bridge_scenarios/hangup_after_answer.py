"""Answers, and hangs up as soon as the call is connected: the bridge's BYE."""

from tests.sip.probe import PROBE


def on_alerting(e):
    call = e.call
    call.addEventListener(CallEvents.Connected, lambda ev: call.hangup())
    call.addEventListener(CallEvents.Disconnected, lambda ev: PROBE.record(call.id(), "disconnected", ev.reason))
    call.answer()


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
