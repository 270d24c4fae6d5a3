"""Hangs up without answering: the trunk gets a final error response, never a 200."""

from tests.sip.probe import PROBE


def on_alerting(e):
    PROBE.record(e.call.id(), "alerting")
    e.call.hangup()


VoxEngine.addEventListener(AppEvents.CallAlerting, on_alerting)
