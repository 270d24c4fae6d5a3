"""call.record and call.sendDigits on a Call with a FakeLink: the taps, the events, a disk error,
a clock carrier's truncation, DTMF out where the carrier can and cannot."""

from __future__ import annotations

import asyncio
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from telephony_bridge.audio.formats import L16_16K
from telephony_bridge.carriers.base import Capabilities
from telephony_bridge.server.settings import Settings
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine import recording as recording_module
from telephony_bridge.voxengine.call import Call
from telephony_bridge.voxengine.events import CallEvents
from telephony_bridge.voxengine.recording import RecordingsConfig, RecordOptions
from tests.fake_link import FakeLink

CLOCK_CLEAR = Capabilities(audio_formats=(L16_16K,), marks=False, clear=True, playout_lead_ms=60.0)


def clock_ms() -> float:
    return asyncio.get_running_loop().time() * 1000


@pytest.fixture(autouse=True)
def fast_writer(monkeypatch):
    monkeypatch.setattr(recording_module, "RENDER_PERIOD_S", 0.05)


def make_call(tmp_path: Path, link: FakeLink | None = None) -> tuple[Call, TaskOwner, list[tuple[str, dict]]]:
    tasks = TaskOwner("call CA-rec")
    call = Call(call_sid="CA-rec", caller_id="+15550199", number="+15550400", custom_data={}, link=link or FakeLink(),
                tasks=tasks, clock_ms=clock_ms, recordings=RecordingsConfig(tmp_path / "rec", "http://bridge.test"))
    events: list[tuple[str, dict]] = []
    for event in (CallEvents.RecordStarted, CallEvents.RecordStopped, CallEvents.RecordError, CallEvents.SendDigitsFailed):
        call.addEventListener(event, lambda e, name=event.name: events.append((name, {k: v for k, v in e.items() if k not in ("call", "name")})))
    call.answer()
    return call, tasks, events


async def until(predicate, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        channels = wav.getnchannels()
        return channels, np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, channels)


async def test_record_starts_stops_after_disconnected_and_names_its_file_itself(tmp_path):
    call, tasks, events = make_call(tmp_path)
    order: list[str] = []
    call.addEventListener(CallEvents.Disconnected, lambda e: order.append("Disconnected"))
    call.addEventListener(CallEvents.RecordStopped, lambda e: order.append("RecordStopped"))
    call.record({"stereo": True, "hd_audio": False, "transcribe": True})  # unknown-to-us parameters are accepted
    await until(lambda: events)
    [(name, fields)] = events
    assert name == "RecordStarted" and fields["url"].startswith("http://bridge.test/recordings/")
    for _ in range(10):
        await call.caller_audio(b"\x00" * 160)  # 20 ms of μ-law
    call.terminated("caller hung up", 1.0)
    await until(lambda: len(events) == 2)
    assert order == ["Disconnected", "RecordStopped"]
    stopped = events[1][1]
    assert stopped["url"] == fields["url"] and "error" not in stopped and stopped["duration"] >= 0.2
    [path] = (tmp_path / "rec").iterdir()
    assert fields["url"].endswith("/" + path.name)
    channels, samples = read_wav(path)
    assert channels == 2 and abs(len(samples) / 8000 - stopped["duration"]) < 0.001
    await tasks.aclose()


async def test_a_clock_carrier_records_what_the_playout_confirmed_heard_cut_at_the_barge_in(tmp_path):
    link = FakeLink(capabilities=CLOCK_CLEAR, audio_format=L16_16K)
    call, tasks, events = make_call(tmp_path, link)
    call.record({})  # mono: both sides mixed
    playout = call.playout
    playout.source_format(L16_16K)
    playout.ledger.response_started("r1")
    playout.ledger.item_added("r1", "i1")
    await playout.play("r1", "i1", 0, b"\x00\x10" * 16 * 400, 400.0)  # 400 ms of agent audio
    await asyncio.sleep(0.15)
    interruption = playout.interrupt()  # the caller barged in: heard so far is what is truncated
    [truncation] = interruption.truncations
    await asyncio.sleep(0.1)
    call.terminated("caller hung up", 1.0)
    await until(lambda: any(name == "RecordStopped" for name, _ in events))
    [path] = (tmp_path / "rec").iterdir()
    channels, samples = read_wav(path)
    heard_ms = np.count_nonzero(samples[:, 0]) / 8
    assert channels == 1
    assert abs(heard_ms - truncation.audio_end_ms) <= 20, (heard_ms, truncation)  # within a frame
    await tasks.aclose()


async def test_a_disk_error_ends_the_recording_with_an_error_not_the_call(tmp_path, monkeypatch, caplog):
    call, tasks, events = make_call(tmp_path)
    call.record({"stereo": True})
    await until(lambda: events)

    def disk_full(self, left, right):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recording_module.CallRecording, "_append", disk_full)
    await call.caller_audio(b"\x00" * 160)
    await until(lambda: len(events) == 3)
    assert [name for name, _ in events] == ["RecordStarted", "RecordError", "RecordStopped"]
    assert "No space left on device" in events[2][1]["error"]
    assert any("recording" in r.message and "the call goes on" in r.message for r in caplog.records)
    assert call.state() == "CONNECTED" and not call.recording.active
    await call.caller_audio(b"\x00" * 160)  # the call goes on; nothing is kept for the recording
    assert call.recording.caller_frames == []
    call.terminated("caller hung up", 1.0)
    await asyncio.sleep(0.05)
    assert len(events) == 3  # no second RecordStopped
    await tasks.aclose()


async def test_stop_record_stops_before_the_end_of_the_call(tmp_path):
    call, tasks, events = make_call(tmp_path)
    call.record({})
    await until(lambda: events)
    call.stopRecord()
    await until(lambda: len(events) == 2)
    assert events[1][0] == "RecordStopped"
    call.terminated("caller hung up", 1.0)
    await asyncio.sleep(0.05)
    assert len(events) == 2
    await tasks.aclose()


async def test_lossless_without_ffmpeg_stays_wav_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(recording_module.shutil, "which", lambda name: None)
    call, tasks, events = make_call(tmp_path)
    call.record({"lossless": True})
    await until(lambda: events)
    assert events[0][1]["url"].endswith(".wav")
    assert any("needs ffmpeg (apt-get install ffmpeg)" in r.message for r in caplog.records)
    call.terminated("caller hung up", 1.0)
    await until(lambda: len(events) == 2)
    await tasks.aclose()


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="FLAC recordings need ffmpeg: apt-get install ffmpeg")
async def test_lossless_makes_flac_with_ffmpeg(tmp_path):
    call, tasks, events = make_call(tmp_path)
    call.record({"lossless": True, "stereo": True})
    await until(lambda: events)
    await call.caller_audio(b"\x00" * 160)
    call.terminated("caller hung up", 1.0)
    await until(lambda: len(events) == 2, timeout=10)
    [path] = (tmp_path / "rec").iterdir()
    assert path.suffix == ".flac" and events[1][1]["url"].endswith(path.name)
    assert path.read_bytes()[:4] == b"fLaC"
    await tasks.aclose()


def test_record_options_and_the_setting():
    assert RecordOptions.parse(None) == RecordOptions(stereo=False, lossless=False)
    assert RecordOptions.parse({"stereo": True, "lossless": True}) == RecordOptions(True, True)
    with pytest.raises(TypeError):
        RecordOptions.parse("stereo")  # type: ignore[arg-type]
    assert Settings.from_environ({}).recordings_dir == Path("data/recordings")
    assert Settings.from_environ({"RECORDINGS_DIR": "/var/rec"}).recordings_dir == Path("/var/rec")


async def test_send_digits_where_the_carrier_cannot_warns_and_fires_an_event(tmp_path, caplog):
    call, tasks, events = make_call(tmp_path)  # a Twilio-like link: no DTMF out
    call.sendDigits("12#")
    [(name, fields)] = events
    assert name == "SendDigitsFailed" and fields == {"digits": "12#", "reason": "this carrier cannot send DTMF on its media stream"}
    assert any("sendDigits" in r.message and r.levelname == "WARNING" for r in caplog.records)
    with pytest.raises(ValueError):
        call.send_digits("12x")
    await tasks.aclose()


class DigitLink(FakeLink):
    async def send_digits(self, digits: str) -> None:
        self.sent.append(("digits", digits))


async def test_send_digits_goes_through_the_carrier_that_can_with_pauses(tmp_path, monkeypatch):
    from telephony_bridge.voxengine import call as call_module

    monkeypatch.setattr(call_module, "DIGIT_PAUSE_S", 0.01)
    link = DigitLink(capabilities=Capabilities(audio_formats=FakeLink.capabilities.audio_formats, marks=True, clear=True,
                                               dtmf_out=True))
    call, tasks, events = make_call(tmp_path, link)
    call.sendDigits("12p#")
    await until(lambda: len(link.sent) == 2)
    assert link.sent == [("digits", "12"), ("digits", "#")] and events == []
    await tasks.aclose()
