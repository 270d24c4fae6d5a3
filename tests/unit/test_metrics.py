"""Metrics: the plain counters, the outcome labels, and what the exporter renders from them."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.realtime.events import MediaEvents
from telephony_bridge.realtime.observer import (
    DownlinkLatency,
    Interrupted,
    MediaEvent,
    Truncation,
)
from telephony_bridge.server.metrics import BridgeMetrics, Exporter


def samples(exporter: Exporter) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The rendered exposition, parsed back: {(sample name, sorted labels): value}."""
    body, content_type = exporter.render()
    assert content_type.startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


@pytest.fixture
def exporter(monkeypatch) -> Exporter:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return Exporter(BridgeMetrics())


@pytest.mark.parametrize("kind, outcome", [
    (CallEnd.CALLER_HUNG_UP, "caller_hangup"),
    (CallEnd.SCENARIO_HANGUP, "scenario_hangup"),
    (CallEnd.SCENARIO_TERMINATED, "scenario_hangup"),
    (CallEnd.SHUTDOWN, "shutdown"),
    (CallEnd.SCENARIO_ERROR, "scenario_error"),
    (CallEnd.NO_SCENARIO, "scenario_error"),
    (CallEnd.CARRIER_FAILED, "carrier_failed"),
    (CallEnd.MEDIA_STALLED, "stalled"),
])
def test_call_ended_counts_each_kind_under_one_fixed_outcome(kind, outcome):
    metrics = BridgeMetrics()
    metrics.call_ended(kind)
    metrics.call_ended(kind)
    assert metrics.calls_ended == 2
    assert metrics.outcomes == {outcome: 2}


def test_outcome_labels_are_a_small_fixed_set():
    # Prometheus labels must not be unbounded: one per kind at most, and fewer than the kinds.
    labels = {kind.metric_label for kind in CallEnd}
    assert len(labels) < len(CallEnd) and all(label.isidentifier() for label in labels)


def test_model_events_count_barge_ins_truncations_deletions_reconnects_and_latency():
    metrics = BridgeMetrics()
    metrics.model_event(None, Interrupted((Truncation("a", 100, False), Truncation("b", 0, True), Truncation("c", 50, False))))
    metrics.model_event(None, Interrupted())  # nothing to cut: still a barge-in
    metrics.model_event(None, DownlinkLatency(0.003))
    metrics.model_event(None, MediaEvent(MediaEvents.WebSocketReconnected, {"attempt": 1}))
    metrics.model_event(None, MediaEvent(MediaEvents.WebSocketReconnecting, {"attempt": 1}))  # only completed reconnects count
    assert (metrics.barge_ins, metrics.truncations, metrics.deletions, metrics.model_reconnects) == (2, 2, 1, 1)
    assert list(metrics.downlink_latency_s) == [0.003]


def test_render_exports_the_counters_frames_outcomes_and_active_calls(exporter):
    m = exporter.metrics
    m.calls_started, m.calls_rejected, m.frames_rejected = 3, 1, 7
    m.frames_in, m.frames_out, m.active_calls = 500, 450, 2
    m.call_ended(CallEnd.CALLER_HUNG_UP)
    m.call_ended(CallEnd.SHUTDOWN)
    m.call_ended(CallEnd.CALLER_HUNG_UP)

    s = samples(exporter)

    assert s[("telephony_bridge_calls_started_total", ())] == 3
    assert s[("telephony_bridge_calls_rejected_total", ())] == 1
    assert s[("telephony_bridge_carrier_frames_rejected_total", ())] == 7
    assert s[("telephony_bridge_carrier_frames_total", (("direction", "in"),))] == 500
    assert s[("telephony_bridge_carrier_frames_total", (("direction", "out"),))] == 450
    assert s[("telephony_bridge_calls_ended_total", (("outcome", "caller_hangup"),))] == 2
    assert s[("telephony_bridge_calls_ended_total", (("outcome", "shutdown"),))] == 1
    assert s[("telephony_bridge_active_calls", ())] == 2
    assert s[("telephony_bridge_streams_unbound_total", ())] == 0


def test_each_fold_adds_only_what_the_ints_gained_since_the_last(exporter):
    m = exporter.metrics
    m.calls_started, m.frames_in = 2, 100
    exporter.fold()
    exporter.fold()  # nothing gained: nothing added
    assert samples(exporter)[("telephony_bridge_calls_started_total", ())] == 2

    m.calls_started += 3
    m.frames_in += 50
    m.call_ended(CallEnd.CALLER_HUNG_UP)
    m.active_calls = 0
    s = samples(exporter)
    assert s[("telephony_bridge_calls_started_total", ())] == 5
    assert s[("telephony_bridge_carrier_frames_total", (("direction", "in"),))] == 150
    assert s[("telephony_bridge_calls_ended_total", (("outcome", "caller_hangup"),))] == 1
    assert s[("telephony_bridge_active_calls", ())] == 0  # a gauge follows the value, down too


def test_latency_samples_are_observed_once_and_drained(exporter):
    m = exporter.metrics
    m.uplink_latency_s.extend([0.0001, 0.0003, 0.03])
    m.downlink_latency_s.append(0.004)
    exporter.fold()
    assert not m.uplink_latency_s and not m.downlink_latency_s  # drained into the histogram
    s = samples(exporter)  # folds again: nothing observed twice
    uplink = (("direction", "uplink"),)
    assert s[("telephony_bridge_added_latency_seconds_count", uplink)] == 3
    assert s[("telephony_bridge_added_latency_seconds_sum", uplink)] == pytest.approx(0.0304)
    assert s[("telephony_bridge_added_latency_seconds_bucket", (*uplink, ("le", "0.0002")))] == 1
    assert s[("telephony_bridge_added_latency_seconds_bucket", (*uplink, ("le", "0.05")))] == 3
    assert s[("telephony_bridge_added_latency_seconds_count", (("direction", "downlink"),))] == 1


def test_two_exporters_in_one_process_do_not_share_metrics(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    first, second = Exporter(BridgeMetrics()), Exporter(BridgeMetrics())
    first.metrics.calls_started = 4
    assert samples(first)[("telephony_bridge_calls_started_total", ())] == 4
    assert samples(second)[("telephony_bridge_calls_started_total", ())] == 0
