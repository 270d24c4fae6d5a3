"""scenarios/recording.py, Voximplant's recording example: a stereo WAV of the call, the caller
left, what the caller heard right (cut at the barge-in), served only with an API key."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.timeout(60)

RECORDING = "+15550600"
GREETING = "Hello! This call is recorded. Thanks for calling Acme, how can I help you today?"  # about 5 s
KEY = "recording-test-key-0123456789"
FRAME = 160  # 20 ms at 8 kHz


def _logged(report, tag: str) -> list[str]:
    return [line.message for line in report.log if tag in line.message]


def _read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return samples[:, 0].astype(np.float64), samples[:, 1].astype(np.float64)


def _aligned(recorded: np.ndarray, reference: np.ndarray, within: int) -> tuple[int, float]:
    """The shift (samples, |shift| <= within) at which `recorded[n]` best equals `reference[n + shift]`,
    and the fraction of samples then equal."""
    def equal(shift: int) -> float:
        a = recorded[max(0, -shift):]
        b = reference[max(0, shift):]
        n = min(len(a), len(b))
        return float(np.mean(a[:n] == b[:n]))
    shift = max(range(-within, within + 1), key=equal)
    return shift, equal(shift)


def _spans(samples: np.ndarray, gap: int = 800) -> list[tuple[int, int]]:
    """(first, last) sample of each stretch of sound, stretches apart by more than `gap` samples."""
    voiced = np.flatnonzero(np.abs(samples) > 8)
    if not len(voiced):
        return []
    breaks = np.flatnonzero(np.diff(voiced) > gap)
    return list(zip(voiced[np.r_[0, breaks + 1]].tolist(), voiced[np.r_[breaks, len(voiced) - 1]].tolist(), strict=True))


def _recording_path(report, recordings: Path) -> tuple[str, Path]:
    [started] = _logged(report, "===RECORD_STARTED===")
    url = started.split()[-1]
    name = url.rsplit("/", 1)[1]
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{20}\.wav", name)  # the bridge's own id, never a peer's string
    return url, recordings / name


@pytest.mark.call_flow(api_keys=[KEY])
async def test_the_recording_holds_the_caller_left_and_what_the_caller_heard_right(call_flow):
    call_flow.script([GREETING, "Sure."])
    report = await call_flow.call(to=RECORDING, caller_says=[(1.5, "Wait.")])
    assert report.scenario == "recording" and not report.errors
    greeting, answer = report.agent_lines
    assert greeting.cut and answer == "Sure." and not answer.cut  # the barge-in cut the greeting
    url, path = _recording_path(report, call_flow.recordings_dir)
    [stopped] = _logged(report, "===RECORD_STOPPED===")
    assert url in stopped
    duration = float(stopped.split()[-2])

    left, right = _read_stereo(path)
    caller = np.frombuffer(report.caller.caller_pcm16, dtype="<i2").astype(np.float64)
    heard = np.frombuffer(report.caller.heard_pcm16, dtype="<i2").astype(np.float64)
    assert abs(duration - len(left) / 8000) < 0.01
    assert abs(len(left) - len(caller)) < 8000 * 0.5  # both cover the call (the recording from record())

    # Left is the caller, sample for sample, from when the recording started.
    shift, equal = _aligned(left, caller, within=4 * FRAME)
    assert equal > 0.999, (shift, equal)
    # Right is what the phone played, on the same timeline within a frame: each stretch of the
    # agent starts and ends where the phone's does (the greeting cut where the phone's clear cut
    # it, nothing of what the clear flushed), and is the very same audio.
    [clear] = report.caller.clears
    assert clear.dropped_ms > 1000
    recorded, played = _spans(right), _spans(heard)
    assert len(recorded) == len(played) >= 2, (recorded, played)
    for (start, end), (heard_start, heard_end) in zip(recorded, played, strict=True):
        # A stretch's end within 3 frames: on a loaded machine the simulated phone's own playout slips
        # a frame or two behind the audio's arrival (a full-suite run once measured 47 ms).
        assert abs((heard_start - start) - shift) <= FRAME and abs((heard_end - end) - shift) <= 3 * FRAME, (recorded, played)
        piece_shift, piece_equal = _aligned(right[start:end + 1], heard[start:end + 1 + 2 * FRAME], within=2 * FRAME)
        assert piece_equal > 0.99 and abs(piece_shift - shift) <= FRAME, (piece_shift, piece_equal, shift)
    assert not any("recording" in line.message and "failed" in line.message for line in report.log)

    # The URL is served by the bridge, only with the key.
    assert url.startswith(call_flow.url + "/recordings/")
    async with httpx.AsyncClient() as http:
        refused = await http.get(url)
        wrong = await http.get(url, headers={"Authorization": "Bearer not-the-key"})
        served = await http.get(url, headers={"Authorization": f"Bearer {KEY}"})
        escape = await http.get(call_flow.url + "/recordings/..%2Fcalls.wav", headers={"Authorization": f"Bearer {KEY}"})
    assert refused.status_code == wrong.status_code == 401
    assert served.status_code == 200 and served.headers["content-type"] == "audio/wav"
    assert served.content == path.read_bytes()
    assert escape.status_code == 404


@pytest.mark.call_flow(api_keys=())
async def test_without_api_keys_recordings_are_not_served(call_flow):
    call_flow.script(["Hi, Acme."])
    report = await call_flow.call(to=RECORDING)
    url, path = _recording_path(report, call_flow.recordings_dir)
    assert path.is_file()
    async with httpx.AsyncClient() as http:
        response = await http.get(url, headers={"Authorization": "Bearer anything"})
    assert response.status_code == 404


@pytest.mark.call_flow(recordings_dir="/dev/null/recordings")  # cannot be created, even by root
async def test_a_recording_that_cannot_be_written_ends_with_an_error_and_the_call_goes_on(call_flow):
    call_flow.script([GREETING, "Sure."])
    report = await call_flow.call(to=RECORDING, caller_says=[(1.5, "Wait.")])
    assert not _logged(report, "===RECORD_STARTED===")
    [stopped] = _logged(report, "===RECORD_STOPPED===")
    assert "NotADirectoryError" in stopped
    [warning] = [line for line in report.log if "recording" in line.message and "failed" in line.message]
    assert warning.level == "WARNING" and "the call goes on" in warning.message
    # The call went on: the barge-in, the answer, and the caller's own hang-up.
    greeting, answer = report.agent_lines
    assert greeting.cut and answer == "Sure."
    assert report.end_reason == "caller hung up"
