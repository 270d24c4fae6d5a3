"""Rings and never answers (the trunk CANCELs)."""

from tests.sip.probe import PROBE


def on_alerting(e):
    call = e.call
    PROBE.record(call.id(), "alerting")
    call.addEventListener(CallEvents.Disconnected, lambda ev: PROBE.record(call.id(), "disconnected", ev.reason))


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
