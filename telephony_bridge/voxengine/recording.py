"""`call.record(...)`: one call's recording, written off the hot path.

The hot path only appends: a caller frame to a list (`Call.caller_audio`), a Playout write to a list
with its time (`Playout`'s tap). A writer task wakes every `RENDER_PERIOD_S`, takes those lists, and in
a worker thread renders the two tracks up to a moment that is final (audio/recording_tracks.py),
converts them to PCM16 8 kHz, mixes or interleaves them and appends them to the file. Memory is
bounded: what waits for the writer is capped (`MAX_PENDING_S` of audio); a writer that falls that far
behind, or any disk error, ends the recording — never the call — with a log line, `RecordError` and
`RecordStopped {url, duration, error}`.

Files: `RECORDINGS_DIR/<id>.wav` (PCM16 8 kHz; stereo: caller left, what the caller heard right;
mono: both mixed). `lossless: true` asks for FLAC, made from the WAV by ffmpeg when the call ends
(no FLAC encoder ships with Python or numpy); without ffmpeg the recording stays a WAV and a warning
says so. `<id>` is made by the bridge (a timestamp and random hex), never from a peer's string; the
URL (`PUBLIC_URL/recordings/<id>.wav`) is served only with an API key (server/recordings.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import time
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from telephony_bridge.audio.convert import converter
from telephony_bridge.audio.formats import L16_8K, AudioFormat
from telephony_bridge.audio.recording_tracks import CallerTrack, HeardTrack
from telephony_bridge.tasks import TaskOwner

log = logging.getLogger("telephony_bridge.call")

RENDER_PERIOD_S = 1.0  # how often the writer takes what the hot path appended
SETTLE_MS = 200.0  # rendered only up to now − this: caller frames arriving a little late still fit
MAX_PENDING_S = 60.0  # audio waiting for the writer beyond this: the writer is stuck, the recording ends
RECORDING_RATE = 8000
FFMPEG_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class RecordingsConfig:
    """Where a call's recordings go and how they are reached (from the server's settings)."""

    directory: Path
    base_url: str  # PUBLIC_URL; the recording is at {base_url}/recordings/{file name}


@dataclass(frozen=True, slots=True)
class RecordOptions:
    stereo: bool = False
    lossless: bool = False

    @classmethod
    def parse(cls, parameters: Mapping[str, Any] | None) -> RecordOptions:
        """Voximplant's `call.record` parameters; those the bridge has no use for (hd_audio,
        transcribe, expire, …) are accepted and ignored."""
        if parameters is None:
            return cls()
        if not isinstance(parameters, Mapping):
            raise TypeError(f"call.record takes an object of parameters, got {type(parameters).__name__}")
        return cls(stereo=bool(parameters.get("stereo", False)), lossless=bool(parameters.get("lossless", False)))


def new_recording_id() -> str:
    """A file stem the bridge makes itself: sortable by time, unguessable, a plain name."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(10)


class CallRecording:
    """One recording of one call. `caller_frames` and `writes` are the hot path's appends."""

    def __init__(
        self,
        *,
        config: RecordingsConfig,
        options: RecordOptions,
        audio_format: AudioFormat,
        clock_ms: Callable[[], float],
        tasks: TaskOwner,
        emit: Callable[..., None],
        label: str,
        recording_id: str | None = None,
    ) -> None:
        self.options = options
        self.recording_id = recording_id or new_recording_id()
        self._directory = config.directory
        self._path = config.directory / f"{self.recording_id}.wav"
        # FLAC is made from the WAV at the end, so the URL names the final file from the start.
        self._ffmpeg = shutil.which("ffmpeg") if options.lossless else None
        self._final_path = self._path.with_suffix(".flac") if self._ffmpeg else self._path
        self.url = f"{config.base_url.rstrip('/')}/recordings/{self._final_path.name}"
        self._clock_ms = clock_ms
        self._tasks = tasks
        self._emit = emit  # (CallEvents member name, **fields)
        self._label = label
        self.started_ms = clock_ms()
        self._caller = CallerTrack(audio_format, self.started_ms)
        self._heard = HeardTrack(audio_format, self.started_ms)
        self._to_left = converter(audio_format, L16_8K)
        self._to_right = converter(audio_format, L16_8K)
        self._max_pending = int(MAX_PENDING_S * 1000 * audio_format.bytes_per_ms)
        # The hot path's appends: caller frames as they came, and ("w", at_ms, audio) / ("c", at_ms, b"").
        self.caller_frames: list[bytes] = []
        self._first_frame_ms: float | None = None
        self.writes: list[tuple[str, float, bytes]] = []
        self._pending_bytes = 0
        self._wav: wave.Wave_write | None = None
        self._frames_written = 0
        self.active = True  # taking audio (False once stopped or failed)
        self._writer: asyncio.Task[Any] | None = None
        self._stopping: asyncio.Task[Any] | None = None
        self._busy = False  # the writer is in its worker thread
        self.error: str | None = None

    # --- the hot path's taps ----------------------------------------------------------------
    def caller_frame(self, frame: bytes) -> None:
        if self._first_frame_ms is None:
            self._first_frame_ms = self._clock_ms()
        self.caller_frames.append(frame)

    def wrote(self, at_ms: float, audio: bytes) -> None:
        """The Playout wrote `audio` (carrier format), which can play from `at_ms`."""
        self.writes.append(("w", at_ms, audio))

    def cleared(self, at_ms: float) -> None:
        """The Playout told the carrier to drop what it buffers."""
        self.writes.append(("c", at_ms, b""))

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if self.options.lossless and self._ffmpeg is None:
            log.warning(
                "%s: a lossless (FLAC) recording needs ffmpeg (apt-get install ffmpeg); recording %s is written as WAV",
                self._label,
                self.recording_id,
            )
        self._writer = self._tasks.spawn(self._run(), name="recording writer")

    def stop(self) -> asyncio.Task[Any] | None:
        """Stop taking audio and finish the file; RecordStopped fires when it is written."""
        if self._stopping is not None:
            return self._stopping
        if not self.active:
            return None
        self.active = False
        end_ms = self._clock_ms()
        self._stopping = self._tasks.spawn(self._finish(end_ms), name="recording finish")
        return self._stopping

    async def _run(self) -> None:
        try:
            self._busy = True
            await asyncio.to_thread(self._open)
        except Exception as exc:
            self._failed(exc)
            return
        finally:
            self._busy = False
        self._emit("RecordStarted", url=self.url)
        while self.active:
            await asyncio.sleep(RENDER_PERIOD_S)
            if not self.active:
                return
            if self._pending_bytes + self._appended_bytes() > self._max_pending:
                self._failed(RuntimeError(f"the recording writer fell {MAX_PENDING_S:g} s behind"))
                return
            batch = self._batch()
            try:
                self._busy = True
                await asyncio.to_thread(self._render, batch, self._clock_ms() - SETTLE_MS, False)
            except Exception as exc:
                self._failed(exc)
                return
            finally:
                self._busy = False

    async def _finish(self, end_ms: float) -> None:
        writer = self._writer
        if writer is not None and not writer.done():
            if self._busy:  # in its worker thread (which cannot be cancelled): let it finish that step
                await asyncio.wait([writer])
            else:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        if self.error is not None:
            return  # already reported
        batch = self._batch()
        try:
            if self._wav is None:
                await asyncio.to_thread(self._open)
            await asyncio.to_thread(self._render, batch, end_ms, True)
            await asyncio.to_thread(self._close)
            if self._ffmpeg is not None:
                await self._to_flac(self._ffmpeg)
        except Exception as exc:
            self._failed(exc, stopped=False)
            self._emit("RecordStopped", url=self.url, duration=self.duration_s, error=self.error)
            return
        self._emit("RecordStopped", url=self.url, duration=self.duration_s)

    @property
    def duration_s(self) -> float:
        return round(self._frames_written / RECORDING_RATE, 3)

    def _failed(self, exc: BaseException, stopped: bool = True) -> None:
        self.active = False
        self.error = f"{type(exc).__name__}: {exc}"
        self.caller_frames, self.writes = [], []
        log.warning(
            "%s: recording %s failed; the call goes on without it: %s", self._label, self.recording_id, self.error
        )
        with contextlib.suppress(Exception):
            self._close()
        self._emit("RecordError", error=self.error)
        if stopped:
            self._emit("RecordStopped", url=self.url, duration=self.duration_s, error=self.error)

    def _appended_bytes(self) -> int:
        frames = self.caller_frames
        return len(frames) * (len(frames[0]) if frames else 0) + sum(len(w[2]) for w in self.writes)

    def _batch(self) -> tuple[float | None, list[bytes], list[tuple[str, float, bytes]]]:
        """Take what the hot path appended (a swap of two lists, on the loop)."""
        frames, self.caller_frames = self.caller_frames, []
        writes, self.writes = self.writes, []
        return self._first_frame_ms, frames, writes

    # --- in the worker thread ---------------------------------------------------------------
    def _open(self) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        wav = wave.open(os.fspath(self._path), "wb")  # noqa: SIM115 -- open for the whole call, closed in _close
        wav.setnchannels(2 if self.options.stereo else 1)
        wav.setsampwidth(2)
        wav.setframerate(RECORDING_RATE)
        self._wav = wav

    def _render(
        self, batch: tuple[float | None, list[bytes], list[tuple[str, float, bytes]]], until_ms: float, final: bool
    ) -> None:
        first_frame_ms, frames, writes = batch
        caller, heard = self._caller, self._heard
        if first_frame_ms is not None:
            caller.frames(first_frame_ms, frames)
        for kind, at_ms, audio in writes:
            if kind == "w":
                heard.write(at_ms, audio)
            else:
                heard.clear(at_ms)
        left_raw = caller.take(until_ms, to_end=final)
        if final:
            until_ms = max(until_ms, self.started_ms + caller.duration_ms())
        right_raw = heard.take(until_ms)
        left = self._to_left.process(left_raw) + (self._to_left.flush() if final else b"")
        right = self._to_right.process(right_raw) + (self._to_right.flush() if final else b"")
        self._pending_bytes = caller.pending_bytes + heard.pending_bytes
        self._append(left, right)

    def _append(self, left: bytes, right: bytes) -> None:
        a = np.frombuffer(left, dtype="<i2")
        b = np.frombuffer(right, dtype="<i2")
        n = max(len(a), len(b))
        if len(a) < n:
            a = np.concatenate([a, np.zeros(n - len(a), dtype="<i2")])
        if len(b) < n:
            b = np.concatenate([b, np.zeros(n - len(b), dtype="<i2")])
        if self.options.stereo:
            out = np.column_stack([a, b]).astype("<i2").tobytes()
        else:
            out = np.clip(a.astype(np.int32) + b.astype(np.int32), -32768, 32767).astype("<i2").tobytes()
        assert self._wav is not None
        self._wav.writeframes(out)
        self._frames_written += n

    def _close(self) -> None:
        wav, self._wav = self._wav, None
        if wav is not None:
            wav.close()  # patches the header's sizes

    async def _to_flac(self, ffmpeg: str) -> None:
        await asyncio.to_thread(
            subprocess.run,
            [
                ffmpeg,
                "-nostdin",
                "-loglevel",
                "error",
                "-y",
                "-i",
                os.fspath(self._path),
                "-c:a",
                "flac",
                os.fspath(self._final_path),
            ],
            check=True,
            capture_output=True,
            timeout=FFMPEG_TIMEOUT_S,
        )
        await asyncio.to_thread(self._path.unlink)
