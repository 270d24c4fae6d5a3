"""The call journal: a human-meaningful timeline of one call (who spoke, what was said, barge-ins,
tool calls, hang-up), kept in memory and, when CALLS_DIR is set, streamed to `<call>.jsonl` as it
happens and written whole to `<call>.json` at the end. Never audio, never secrets."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from telephony_bridge.realtime.events import MediaEvents as M
from telephony_bridge.realtime.events import RealtimeAPIEvents as E
from telephony_bridge.realtime.live_wire import LiveAPIEvents
from telephony_bridge.realtime.observer import (
    ClientEventSent,
    Interrupted,
    MediaEvent,
    ObserverEvent,
    ServerEvent,
)

if TYPE_CHECKING:
    from telephony_bridge.voxengine.recording import CallRecording

log = logging.getLogger("telephony_bridge.call")

_MODEL_EVENTS = {
    E.InputAudioBufferSpeechStarted: "caller.speech_started",
    E.InputAudioBufferSpeechStopped: "caller.speech_stopped",
    E.ConversationItemInputAudioTranscriptionCompleted: "caller.transcript",
    E.ResponseCreated: "agent.response_started",
    E.ResponseAudioTranscriptDelta: "agent.transcript_delta",
    E.ResponseAudioTranscriptDone: "agent.transcript",
    E.ResponseFunctionCallArgumentsDone: "agent.tool_call",
    E.ResponseDone: "agent.response_done",
    E.Error: "model.error",
    M.WebSocketMediaStarted: "agent.audio_started",
    M.WebSocketMediaEnded: "agent.audio_ended",
    M.WebSocketReconnecting: "model.reconnecting",
    M.WebSocketReconnected: "model.reconnected",
}


# Journaled, but logged only at DEBUG: several per answer, 200 lines a second at 100 calls.
_QUIET = frozenset(
    {
        "agent.transcript_delta",
        "agent.response_started",
        "agent.response_done",
        "agent.audio_started",
        "agent.audio_ended",
    }
)


# A journal's file is named after its call id, which came from a peer: only a plain name is a
# file name, and the result must still lie in the directory (see safe_child).
_FILE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class UnsafeFileName(ValueError):
    pass


def safe_child(directory: Path, stem: str, suffix: str) -> Path:
    """`directory/stem+suffix`, or UnsafeFileName when `stem` is not a plain name (no separators,
    no dots, no drive, nothing that could resolve outside `directory`)."""
    if not isinstance(stem, str) or _FILE_STEM.fullmatch(stem) is None:
        raise UnsafeFileName(f"not a safe file name: {stem!r:.80}")
    path = directory / f"{stem}{suffix}"
    if path.resolve().parent != directory.resolve():
        raise UnsafeFileName(f"not a safe file name: {stem!r:.80}")
    return path


class CallJournal:
    def __init__(self, call_label: str, directory: Path | None) -> None:
        self.call_label = call_label
        self.entries: list[dict[str, Any]] = []
        self.started_at = time.monotonic()  # entries' "t" count seconds from here
        self._directory = directory
        self._stream: IO[bytes] | None = None
        self.path: Path | None = None

    def open(self, call_id: str) -> None:
        if self._directory is None:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        live = safe_child(self._directory, call_id, ".jsonl")  # raises before anything is written
        self.path = safe_child(self._directory, call_id, ".json")
        self._stream = open(live, "wb")  # noqa: SIM115 (kept open for the call: close() closes it)

    def record(self, kind: str, **fields: Any) -> None:
        entry = {"t": round(time.monotonic() - self.started_at, 3), "event": kind, **fields}
        self.entries.append(entry)
        if kind in _QUIET:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s %s", self.call_label, kind, _summary(fields))
        else:
            log.info("%s %s %s", self.call_label, kind, _summary(fields))
        if self._stream is not None:
            self._stream.write(orjson.dumps(entry) + b"\n")
            self._stream.flush()

    def model_event(self, client: Any, observed: ObserverEvent) -> None:
        """Observer of a RealtimeAPIClient: server events, media events, client events and interruptions."""
        if isinstance(observed, ServerEvent) and isinstance(observed.member, LiveAPIEvents):
            self._live_event(observed.member, observed.data)
            return
        if isinstance(observed, ClientEventSent):
            event = observed.event
            if (
                event.get("type") in ("conversation.item.create", "response.item.create")  # Realtime, GPT-Live
                and (event.get("item") or {}).get("type") == "function_call_output"
            ):
                item = event["item"]
                self.record("agent.tool_result", call_id=item.get("call_id"), output=item.get("output"))
            return
        if isinstance(observed, Interrupted):
            self.record(
                "barge_in",
                truncations=[
                    {"item_id": c.item_id, "audio_end_ms": c.audio_end_ms, "deleted": c.deleted}
                    for c in observed.truncations
                ],
            )
            return
        member: E | M
        if isinstance(observed, ServerEvent):
            member, event = observed.member, observed.data
        elif isinstance(observed, MediaEvent):
            member, event = observed.member, observed.fields
        else:
            return
        kind = _MODEL_EVENTS.get(member)
        if kind is None:
            return
        if isinstance(member, M):
            fields = dict(event)
            if member is M.WebSocketMediaEnded:
                fields = {"duration_s": round((event.get("mediaInfo") or {}).get("duration", 0.0), 3)}
            elif member is M.WebSocketMediaStarted:
                fields = {"encoding": event.get("encoding")}
            self.record(kind, **fields)
        elif member is E.InputAudioBufferSpeechStarted:
            self.record(kind, audio_start_ms=event.get("audio_start_ms"))
        elif member is E.InputAudioBufferSpeechStopped:
            self.record(kind, audio_end_ms=event.get("audio_end_ms"))
        elif member is E.ConversationItemInputAudioTranscriptionCompleted:
            self.record(kind, text=event.get("transcript"))
        elif member is E.ResponseAudioTranscriptDelta:
            self.record(kind, item_id=event.get("item_id"), text=event.get("delta"))
        elif member is E.ResponseAudioTranscriptDone:
            self.record(kind, item_id=event.get("item_id"), text=event.get("transcript"))
        elif member is E.ResponseFunctionCallArgumentsDone:
            self.record(kind, name=event.get("name"), arguments=event.get("arguments"), call_id=event.get("call_id"))
        elif member is E.ResponseCreated:
            self.record(kind, response_id=(event.get("response") or {}).get("id"))
        elif member is E.ResponseDone:
            response = event.get("response") or {}
            self.record(kind, response_id=response.get("id"), status=response.get("status"))
        elif member is E.Error:
            error = event.get("error") or {}
            self.record(kind, code=error.get("code"), message=error.get("message"))

    def _live_event(self, member: LiveAPIEvents, event: Mapping[str, Any]) -> None:
        """GPT-Live (voxengine/live_client.py): the same journal kinds where they exist."""
        if member is LiveAPIEvents.SessionInputTranscriptDelta:
            self.record("caller.transcript", text=event.get("delta"), start_ms=event.get("start_ms"))
        elif member is LiveAPIEvents.SessionOutputTranscriptDelta:
            self.record("agent.transcript_delta", item_id=event.get("item_id"), text=event.get("delta"))
        elif member is LiveAPIEvents.ResponseEvent:
            nested = event.get("event") or {}
            item = nested.get("item") or {}
            if nested.get("type") == "response.output_item.done" and item.get("type") == "function_call":
                self.record(
                    "agent.tool_call",
                    name=item.get("name"),
                    arguments=item.get("arguments"),
                    call_id=item.get("call_id"),
                    delegation_id=event.get("delegation_id"),
                )
        elif member is LiveAPIEvents.AgentStoppedSpeaking:
            self.record("agent.transcript", item_id=f"live_item_{event.get('turn')}", text=event.get("transcript"))
            self.record(
                "agent.stopped_speaking",
                heard_ms=event.get("heardMs"),
                duration_ms=event.get("durationMs"),
                interrupted=event.get("interrupted"),
                playout_lead_ms=event.get("playoutLeadMs"),
            )
        elif member is LiveAPIEvents.Error:
            error = event.get("error") or {}
            self.record("model.error", code=error.get("code"), message=error.get("message"))

    def recording(self, recording: CallRecording, loop_now: float) -> None:
        """The call's recording, for the call store: its file and where it starts on this journal's
        clock (`recording.started_ms` is on the event loop's clock, read now as `loop_now`)."""
        journal_start = loop_now - (time.monotonic() - self.started_at)
        self.record(
            "call.recording",
            recording_id=recording.recording_id,
            file=recording.url.rsplit("/", 1)[-1],
            offset_s=round(recording.started_ms / 1000 - journal_start, 3),
        )

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self.path is not None:
            self.path.write_bytes(orjson.dumps(self.entries, option=orjson.OPT_INDENT_2))


def _summary(fields: dict[str, Any]) -> str:
    text = " ".join(f"{k}={v!r}" for k, v in fields.items() if v is not None)
    return text if len(text) <= 300 else text[:300] + "…"
