"""Metrics of one bridge process, exported in Prometheus format at GET /metrics.

The per-frame path only increments plain ints on `BridgeMetrics` (a slotted dataclass: one
attribute store). A sampler folds them into prometheus-client metrics once a second, and at every
scrape, so a frame never pays for a lock or an mmap write. Latencies are sampled (1 frame in 50 up,
1 delta in 10 down), and the event loop's lag is measured by the same sampler. With `--workers`,
prometheus-client's multi-process mode (PROMETHEUS_MULTIPROC_DIR) sums the workers' files.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from telephony_bridge.lifecycle import CallEnd
from telephony_bridge.realtime.events import MediaEvents
from telephony_bridge.realtime.observer import (
    DownlinkLatency,
    Interrupted,
    MediaEvent,
    ObserverEvent,
)

UPLINK_SAMPLE_EVERY = 50  # caller frames: one latency sample a second per call
DOWNLINK_SAMPLE_EVERY = 10  # model deltas
LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
LAG_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


@dataclass(slots=True)
class BridgeMetrics:
    """Plain counters, cheap to bump anywhere; `Exporter` turns them into Prometheus metrics."""

    calls_started: int = 0
    calls_ended: int = 0
    calls_rejected: int = 0
    webhooks_forbidden: int = 0
    streams_forbidden: int = 0
    streams_unbound: int = 0  # a start without a valid, unused token from the webhook
    calls_over_capacity: int = 0  # webhooks answered 503 and streams closed 1013 at MAX_CALLS
    handler_events_dropped: int = 0  # events a slow async handler's full queue could not take
    frames_in: int = 0
    frames_out: int = 0
    frames_rejected: int = 0
    # RTP/RTCP of SIP calls (server/sip_media.py): what a peer sent that was not used, and why.
    rtp_packets_foreign: int = 0  # from a source other than the one the stream latched to
    rtp_packets_malformed: int = 0  # not RTP (or a telephone-event payload that is not one)
    rtp_packets_discarded: int = 0  # duplicate, late, out of sequence, or a payload type not negotiated
    rtp_packets_lost: int = 0  # never came: concealed with silence
    rtp_frames_overflowed: int = 0  # audio dropped from a full queue (a session not reading, a runaway sender)
    rtcp_packets_rejected: int = 0  # malformed, or from a foreign source
    rtp_ports_exhausted: int = 0  # calls refused (503) for want of an RTP port pair
    barge_ins: int = 0
    truncations: int = 0
    deletions: int = 0
    model_reconnects: int = 0
    idle_memory_releases: int = 0
    store_writes: int = 0  # calls saved to the call store (server/store_writer.py)
    store_failures: int = 0  # failed attempts to open or write the store (each retried)
    store_dropped: int = 0  # calls dropped from a full buffer while the store was down
    active_calls: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    uplink_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    downlink_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))

    def call_ended(self, kind: CallEnd) -> None:
        self.calls_ended += 1
        outcome = kind.metric_label
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def model_event(self, client: Any, observed: ObserverEvent) -> None:
        """Observer of the call's RealtimeAPIClients (beside the call journal)."""
        if isinstance(observed, Interrupted):
            self.barge_ins += 1
            for cut in observed.truncations:
                if cut.deleted:
                    self.deletions += 1
                else:
                    self.truncations += 1
        elif isinstance(observed, DownlinkLatency):
            self.downlink_latency_s.append(observed.seconds)
        elif isinstance(observed, MediaEvent) and observed.member is MediaEvents.WebSocketReconnected:
            self.model_reconnects += 1


_COUNTED = (
    "calls_started",
    "calls_rejected",
    "webhooks_forbidden",
    "streams_forbidden",
    "streams_unbound",
    "calls_over_capacity",
    "handler_events_dropped",
    "frames_rejected",
    "rtp_packets_foreign",
    "rtp_packets_malformed",
    "rtp_packets_discarded",
    "rtp_packets_lost",
    "rtp_frames_overflowed",
    "rtcp_packets_rejected",
    "rtp_ports_exhausted",
    "barge_ins",
    "truncations",
    "deletions",
    "model_reconnects",
    "idle_memory_releases",
    "store_writes",
    "store_failures",
    "store_dropped",
)


class Exporter:
    def __init__(self, metrics: BridgeMetrics) -> None:
        self.metrics = metrics
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # Our own registry, never the library's global one: several apps can live in one process.
        self.registry = CollectorRegistry()
        r = self.registry
        self._counters = {
            "calls_started": Counter("telephony_bridge_calls_started", "Calls whose media stream started", registry=r),
            "calls_rejected": Counter("telephony_bridge_calls_rejected", "Calls rejected by routing", registry=r),
            "webhooks_forbidden": Counter(
                "telephony_bridge_webhooks_forbidden", "Webhooks refused for a bad signature", registry=r
            ),
            "streams_forbidden": Counter(
                "telephony_bridge_streams_forbidden", "Media streams refused for a bad signature", registry=r
            ),
            "streams_unbound": Counter(
                "telephony_bridge_streams_unbound",
                "Media streams refused: no valid, unused token from the answer",
                registry=r,
            ),
            "calls_over_capacity": Counter(
                "telephony_bridge_calls_over_capacity", "Webhooks and streams refused at MAX_CALLS", registry=r
            ),
            "handler_events_dropped": Counter(
                "telephony_bridge_handler_events_dropped",
                "Events dropped because a slow handler's queue was full",
                registry=r,
            ),
            "frames_rejected": Counter(
                "telephony_bridge_carrier_frames_rejected", "Malformed carrier frames logged and skipped", registry=r
            ),
            "rtp_packets_foreign": Counter(
                "telephony_bridge_rtp_packets_foreign",
                "RTP packets from a source the call did not latch to",
                registry=r,
            ),
            "rtp_packets_malformed": Counter(
                "telephony_bridge_rtp_packets_malformed", "Datagrams on an RTP port that were not RTP", registry=r
            ),
            "rtp_packets_discarded": Counter(
                "telephony_bridge_rtp_packets_discarded",
                "RTP packets dropped: duplicate, late, out of sequence or of a payload type not negotiated",
                registry=r,
            ),
            "rtp_packets_lost": Counter(
                "telephony_bridge_rtp_packets_lost", "RTP packets that never came (concealed as silence)", registry=r
            ),
            "rtp_frames_overflowed": Counter(
                "telephony_bridge_rtp_frames_overflowed", "RTP audio frames dropped from a full queue", registry=r
            ),
            "rtcp_packets_rejected": Counter(
                "telephony_bridge_rtcp_packets_rejected", "RTCP packets malformed or from a foreign source", registry=r
            ),
            "rtp_ports_exhausted": Counter(
                "telephony_bridge_rtp_ports_exhausted", "SIP calls refused for want of an RTP port pair", registry=r
            ),
            "barge_ins": Counter("telephony_bridge_barge_ins", "Interruptions that cleared playback", registry=r),
            "truncations": Counter(
                "telephony_bridge_truncations", "Assistant items truncated at what the caller heard", registry=r
            ),
            "deletions": Counter(
                "telephony_bridge_deletions", "Assistant items deleted because nothing was heard", registry=r
            ),
            "model_reconnects": Counter("telephony_bridge_model_reconnects", "Model WebSocket reconnects", registry=r),
            "idle_memory_releases": Counter(
                "telephony_bridge_idle_memory_releases",
                "Full collections + malloc_trim run when the bridge fell idle",
                registry=r,
            ),
            "store_writes": Counter("telephony_bridge_store_writes", "Calls saved to the call store", registry=r),
            "store_failures": Counter(
                "telephony_bridge_store_failures",
                "Failed attempts to open or write the call store (retried)",
                registry=r,
            ),
            "store_dropped": Counter(
                "telephony_bridge_store_dropped",
                "Calls dropped from the store's full buffer while the database was down",
                registry=r,
            ),
        }
        self._frames = Counter("telephony_bridge_carrier_frames", "Carrier media frames", ["direction"], registry=r)
        self._calls_ended = Counter("telephony_bridge_calls_ended", "Calls ended, by outcome", ["outcome"], registry=r)
        self._active = Gauge(
            "telephony_bridge_active_calls", "Calls in progress", registry=r, multiprocess_mode="livesum"
        )
        self._latency = Histogram(
            "telephony_bridge_added_latency_seconds",
            "Time the bridge adds to audio (sampled)",
            ["direction"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._lag = Histogram(
            "telephony_bridge_event_loop_lag_seconds",
            "Event-loop lag, sampled every 100 ms",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self._exported: dict[str, int] = {}

    def fold(self) -> None:
        """Move what the ints gained since the last fold into the Prometheus metrics."""
        m = self.metrics
        for name in _COUNTED:
            value = getattr(m, name)
            delta = value - self._exported.get(name, 0)
            if delta:
                self._counters[name].inc(delta)
                self._exported[name] = value
        for direction, value in (("in", m.frames_in), ("out", m.frames_out)):
            key = f"frames_{direction}"
            delta = value - self._exported.get(key, 0)
            if delta:
                self._frames.labels(direction).inc(delta)
                self._exported[key] = value
        for outcome, value in list(m.outcomes.items()):
            key = f"outcome_{outcome}"
            delta = value - self._exported.get(key, 0)
            if delta:
                self._calls_ended.labels(outcome).inc(delta)
                self._exported[key] = value
        self._active.set(m.active_calls)
        for direction, samples in (("uplink", m.uplink_latency_s), ("downlink", m.downlink_latency_s)):
            histogram = self._latency.labels(direction)
            while samples:
                histogram.observe(samples.popleft())

    def observe_lag(self, seconds: float) -> None:
        self._lag.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        self.fold()
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    async def run_sampler(self, interval_s: float = 0.1, fold_every: int = 10) -> None:
        """Measure event-loop lag every `interval_s` and fold the counters every `fold_every` ticks."""
        loop = asyncio.get_running_loop()
        tick = 0
        while True:
            start = loop.time()
            await asyncio.sleep(interval_s)
            self.observe_lag(max(0.0, loop.time() - start - interval_s))
            tick += 1
            if tick % fold_every == 0:
                self.fold()
