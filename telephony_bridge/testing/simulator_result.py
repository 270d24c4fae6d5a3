"""What the phone simulator reports of one call: `CallResult`, its timeline and mark echoes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from telephony_bridge.audio import files as recording
from telephony_bridge.audio.g711 import ulaw_decode
from telephony_bridge.testing.playout import ClearRecord, PlayoutStats


class TimelineEvent(NamedTuple):
    t_ms: float  # since the stream started; negative before it
    kind: str
    detail: str
    # The numbers behind the detail, for the kinds a program reads: agent_speech (start_ms, end_ms,
    # heard_ms, unheard_ms, interrupted) and caller_speech (start_ms, end_ms).
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MarkEcho:
    name: str
    received_ms: float
    echoed_ms: float
    flushed: bool  # echoed because of a ``clear`` rather than because its audio played


@dataclass(slots=True)
class CallResult:
    call_sid: str
    account_sid: str
    carrier: str = "twilio"  # the simulator profile that played the carrier
    rejected: bool = False
    error: str | None = None  # the call could not run as Twilio would run it (HTTP error, bad TwiML, ...)
    webhook_status: int | None = None
    twiml: str = ""
    stream_url: str | None = None  # from the TwiML
    connected_url: str | None = None  # where the simulator actually connected
    stream_sid: str | None = None
    custom_parameters: dict[str, str] = field(default_factory=dict)
    # What the caller heard, from the stream start to its end, 0xFF = silence: μ-law 8 kHz whatever the
    # carrier's format (normalised, so reports read the same for every carrier).
    heard_ulaw: bytes = b""
    caller_ulaw: bytes = b""  # what the caller sent, on the same timeline (μ-law 8 kHz too)
    marks_echoed: list[MarkEcho] = field(default_factory=list)
    marks_unechoed: list[str] = field(default_factory=list)  # still pending when the call ended
    clears: list[ClearRecord] = field(default_factory=list)
    timeline: list[TimelineEvent] = field(default_factory=list)
    protocol_errors: list[str] = field(default_factory=list)  # bridge messages real Twilio would refuse
    warnings: list[str] = field(default_factory=list)  # tolerated locally, refused by real Twilio
    playout: PlayoutStats | None = None
    frames_sent: int = 0
    media_received: int = 0  # media messages from the bridge
    media_received_ms: float = 0.0
    digits_sent: list[tuple[float, str]] = field(default_factory=list)  # (t_ms, digit)
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None  # "caller" or "server"
    duration_s: float = 0.0  # from the webhook POST to the end of the call
    stream_duration_ms: float = 0.0  # from the stream start to its end: the length of heard/caller audio

    @property
    def connected(self) -> bool:
        return self.stream_sid is not None

    @property
    def heard_pcm16(self) -> bytes:
        return ulaw_decode(self.heard_ulaw)

    @property
    def caller_pcm16(self) -> bytes:
        return ulaw_decode(self.caller_ulaw)

    def write_heard_wav(self, path: recording.PathLike) -> None:
        """Mono PCM16 8 kHz: what the caller heard, silence included."""
        recording.write_mono_wav(path, self.heard_pcm16)

    def write_stereo_wav(self, path: recording.PathLike) -> None:
        """PCM16 8 kHz, left = the caller, right = the agent as the caller heard it."""
        recording.write_stereo_wav(path, self.caller_pcm16, self.heard_pcm16)

    def timeline_json(self) -> list[dict[str, Any]]:
        return [
            {"t_ms": round(e.t_ms, 3), "kind": e.kind, "detail": e.detail, **({"data": dict(e.data)} if e.data else {})}
            for e in self.timeline
        ]

    def summary(self) -> str:
        lines = [f"call {self.call_sid}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        if self.rejected and not self.error:
            lines.append("  rejected by the bridge's answer")
        if self.connected:
            stats = self.playout
            echoed = sum(not m.flushed for m in self.marks_echoed)
            flushed = len(self.marks_echoed) - echoed
            lines += [
                f"  stream {self.stream_sid}, parameters {self.custom_parameters}",
                (
                    f"  lasted {self.stream_duration_ms / 1000:.2f} s; caller sent {self.frames_sent} frames,"
                    f" {len(self.digits_sent)} DTMF digits"
                ),
                f"  bridge sent {self.media_received} media messages ({self.media_received_ms:.0f} ms of audio)",
            ]
            if stats is not None:
                lines.append(
                    f"  caller heard {stats.played_ms:.0f} ms; {stats.cleared_ms:.0f} ms cleared by"
                    f" {stats.clears} clear(s); {stats.pending_ms:.0f} ms still buffered at the end"
                )
            lines.append(
                f"  marks: {echoed} echoed after playing, {flushed} flushed by clear,"
                f" {len(self.marks_unechoed)} pending at the end"
            )
            lines.append(f"  closed by {self.closed_by} with code {self.close_code} {self.close_reason or ''}".rstrip())
        for problem in self.protocol_errors:
            lines.append(f"  protocol error: {problem}")
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        return "\n".join(lines)
