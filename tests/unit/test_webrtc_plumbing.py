"""telephony_bridge.webrtc: the ICE policy (no STUN/TURN unless configured, loopback host
candidates on request) and the audio frame conversions, down to two real aiortc peer connections
talking over 127.0.0.1 in one process."""

from __future__ import annotations

import asyncio
import json

import aioice.ice
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCSessionDescription
from av import AudioFrame

from telephony_bridge.audio.resample import Resampler
from telephony_bridge.webrtc import audio_frames, peer
from telephony_bridge.webrtc.audio_frames import (
    IncomingAudio,
    OutgoingAudioTrack,
    frame_to_mono_pcm16,
    pcm16_from_track,
)
from telephony_bridge.webrtc.peer import host_addresses, ice_configuration, ice_servers, new_peer_connection

LOOPBACK = {"WEBRTC_HOST_ADDRESSES": "127.0.0.1"}


# --- settings ----------------------------------------------------------------------------------


def test_no_setting_means_no_ice_server_at_all_not_aiortcs_public_default():
    assert ice_servers({}) == []
    assert ice_servers({"WEBRTC_ICE_SERVERS": "  "}) == []
    # An explicit empty list: aiortc only falls back to its public STUN server on None.
    assert ice_configuration({}).iceServers == []


def test_ice_servers_from_comma_separated_urls_and_from_json():
    servers = ice_servers({"WEBRTC_ICE_SERVERS": "stun:stun.example.test:3478, turn:turn.example.test"})
    assert [s.urls for s in servers] == ["stun:stun.example.test:3478", "turn:turn.example.test"]
    value = json.dumps([{"urls": ["turn:t.example.test?transport=tcp"], "username": "u", "credential": "secret-c"}])
    (server,) = ice_servers({"WEBRTC_ICE_SERVERS": value})
    assert (server.urls, server.username, server.credential) == (["turn:t.example.test?transport=tcp"], "u", "secret-c")


@pytest.mark.parametrize(
    "value",
    [
        "[not json",
        '{"urls": "stun:x"}',
        '[{"username": "u"}]',
        '[{"urls": []}]',
        '[{"urls": "stun:x", "password": "secret-p"}]',
        '[{"urls": "stun:x", "credential": 5}]',
        "http://user:secret-h@example.test",
        "stun:",
    ],
)
def test_a_malformed_ice_server_setting_is_a_clear_error_that_never_echoes_secrets(value):
    with pytest.raises(ValueError, match="WEBRTC_ICE_SERVERS") as caught:
        ice_servers({"WEBRTC_ICE_SERVERS": value})
    assert "secret" not in str(caught.value)


def test_host_addresses_setting():
    assert host_addresses({}) is None
    assert host_addresses({"WEBRTC_HOST_ADDRESSES": "127.0.0.1, ::1,127.0.0.1"}) == ("127.0.0.1", "::1")
    with pytest.raises(ValueError, match="WEBRTC_HOST_ADDRESSES"):
        host_addresses({"WEBRTC_HOST_ADDRESSES": "localhost"})


async def test_the_gathering_hook_keeps_aioices_choice_for_connections_without_addresses():
    pc = new_peer_connection({})
    try:
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == peer._aioice_host_addresses(
            use_ipv4=True, use_ipv6=True
        )
        assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    finally:
        await pc.close()


# --- two peers over loopback ---------------------------------------------------------------------


def _candidates(sdp: str) -> list[list[str]]:
    return [line.split()[4:8] for line in sdp.splitlines() if line.startswith("a=candidate:")]


async def _connect(offerer, answerer) -> None:
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(
        RTCSessionDescription(sdp=answerer.localDescription.sdp, type=answerer.localDescription.type)
    )


def _ice_connection(pc):
    return pc.sctp.transport.transport.iceGatherer._connection


async def test_two_peer_connections_connect_over_loopback_with_host_candidates_only():
    offerer, answerer = new_peer_connection(LOOPBACK), new_peer_connection(LOOPBACK)
    received: asyncio.Queue[str] = asyncio.Queue()
    opened = asyncio.Event()
    channel = offerer.createDataChannel("oai-events")
    channel.on("open", opened.set)

    @answerer.on("datachannel")
    def _on_channel(remote) -> None:
        remote.on("message", lambda message: received.put_nowait(message))

    try:
        async with asyncio.timeout(30):
            await _connect(offerer, answerer)
            for pc in (offerer, answerer):
                candidates = _candidates(pc.localDescription.sdp)
                assert candidates, pc.localDescription.sdp
                # address, port, "typ", type: only host candidates on loopback, so no STUN/TURN
                # request was ever made (aioice gathers srflx/relay only with a server)...
                assert {(c[0], c[2], c[3]) for c in candidates} == {("127.0.0.1", "typ", "host")}
                # ...and there is none configured.
                ice = _ice_connection(pc)
                assert (ice.stun_server, ice.turn_server) == (None, None)
            await opened.wait()
            channel.send("hello over loopback")
            assert await received.get() == "hello over loopback"
        assert offerer.connectionState == answerer.connectionState == "connected"
    finally:
        await offerer.close()
        await answerer.close()


async def test_opus_audio_crosses_loopback_as_the_tone_that_was_written():
    offerer, answerer = new_peer_connection(LOOPBACK), new_peer_connection(LOOPBACK)
    outgoing = OutgoingAudioTrack(24000)
    offerer.addTrack(outgoing)
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    answerer.on("track", tracks.put_nowait)
    t = np.arange(24000 * 2) / 24000  # two seconds of 600 Hz
    outgoing.write((8000 * np.sin(2 * np.pi * 600 * t)).astype("<i2").tobytes())
    try:
        async with asyncio.timeout(60):
            await _connect(offerer, answerer)
            track = await tracks.get()
            heard = bytearray()
            async for chunk in pcm16_from_track(track, 16000):
                heard += chunk
                samples = np.frombuffer(bytes(heard), "<i2")
                if np.count_nonzero(np.abs(samples) > 4000) > 16000 * 0.5:  # half a second of tone
                    break
        # The last 0.4 s heard lie inside the 2 s tone (we stopped after 0.5 s of it).
        spectrum = np.abs(np.fft.rfft(samples[-6400:].astype(float)))
        peak_hz = np.argmax(spectrum) * 16000 / 6400
        assert abs(peak_hz - 600) <= 4
        assert outgoing.sent_ms > 500
    finally:
        await offerer.close()
        await answerer.close()


# --- frames <-> PCM16 ------------------------------------------------------------------------------


def _build(samples: np.ndarray, rate: int, layout: str, fmt: str) -> AudioFrame:
    frame = AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    frame.sample_rate = rate
    return frame


def test_stereo_frames_are_averaged_to_mono_packed_and_planar():
    left = np.array([100, -200, 32767, -32768], dtype="<i2")
    right = np.array([300, -200, 32767, -32767], dtype="<i2")
    packed = np.stack([left, right], axis=1).reshape(1, -1)
    expected = [200, -200, 32767, -32768]  # floor of the mean, no overflow
    assert frame_to_mono_pcm16(_build(packed, 48000, "stereo", "s16")).tolist() == expected
    planar = np.stack([left, right])
    assert frame_to_mono_pcm16(_build(planar, 48000, "stereo", "s16p")).tolist() == expected
    mono = left.reshape(1, -1)
    assert frame_to_mono_pcm16(_build(mono, 8000, "mono", "s16")).tolist() == left.tolist()
    with pytest.raises(ValueError, match="fltp"):
        frame_to_mono_pcm16(_build(np.zeros((2, 4), dtype=np.float32), 48000, "stereo", "fltp"))


def test_incoming_frames_are_resampled_as_one_stream_not_frame_by_frame():
    rng = np.random.default_rng(7)
    mono = (rng.standard_normal(48000) * 3000).astype("<i2")
    whole = Resampler(48000, 24000).process(mono.tobytes())
    incoming = IncomingAudio(24000)
    pieces = b"".join(
        incoming.pcm16(_build(np.repeat(mono[i : i + 960], 2).reshape(1, -1), 48000, "stereo", "s16"))
        for i in range(0, mono.size, 960)
    )
    assert pieces == whole  # carried state: identical to resampling the stream in one go
    # Frames already at the leg's rate pass through untouched.
    assert IncomingAudio(8000).pcm16(_build(mono[:160].reshape(1, -1), 8000, "mono", "s16")) == mono[:160].tobytes()


async def test_outgoing_track_frames_pts_padding_and_counters():
    clock = [100.0]
    track = OutgoingAudioTrack(24000, clock=lambda: clock[0])
    track.write(bytes(range(256)) * 3 + b"\x01")  # 769 bytes: an odd trailing byte waits
    assert track.buffered_ms == pytest.approx(768 / 48)
    frames = []
    for k in range(3):
        clock[0] = 100.0 + 0.02 * k  # on time: no waiting
        frames.append(await track.recv())
    assert [f.pts for f in frames] == [0, 480, 960]
    assert all(
        f.samples == 480 and f.sample_rate == 24000 and f.time_base == audio_frames.fractions.Fraction(1, 24000)
        for f in frames
    )
    assert bytes(frames[0].planes[0])[:768] == (bytes(range(256)) * 3)
    assert bytes(frames[0].planes[0])[768:960] == bytes(192)  # padded with silence
    assert bytes(frames[1].planes[0])[:960] == bytes(960)
    assert track.sent_ms == pytest.approx(16.0)
    track.write(b"\x02" + bytes(4799))  # completes the half sample: 4800 bytes = 100 ms
    assert track.clear() == pytest.approx(100.0)
    assert track.buffered_ms == 0
    track.stop()


async def test_outgoing_track_waits_for_its_clock_and_re_anchors_after_a_stall(monkeypatch):
    waits: list[float] = []

    async def fake_sleep(delay: float) -> None:
        waits.append(delay)

    monkeypatch.setattr(audio_frames.asyncio, "sleep", fake_sleep)
    clock = [10.0]
    track = OutgoingAudioTrack(8000, clock=lambda: clock[0])
    await track.recv()  # the first frame anchors the clock
    await track.recv()  # the clock has not moved: wait one frame
    assert waits == [pytest.approx(0.02)]
    clock[0] = 20.0  # a long stall: no burst of catch-up frames, the next frame is due a frame later
    await track.recv()
    await track.recv()
    assert waits == [pytest.approx(0.02), pytest.approx(0.02)]
    track.stop()
    with pytest.raises(audio_frames.MediaStreamError):
        await track.recv()


async def test_outgoing_track_positions_tell_a_writer_when_its_audio_has_gone_out():
    clock = [0.0]
    track = OutgoingAudioTrack(8000, clock=lambda: clock[0])  # 320 bytes a frame
    frames, drained = [], []
    track.on_frame = lambda: frames.append(track.consumed_bytes)
    track.on_drained = lambda: drained.append(track.consumed_bytes)
    track.write(bytes(500))
    end_of_first = track.written_bytes
    track.write(bytes(300))
    assert (end_of_first, track.written_bytes, track.consumed_bytes) == (500, 800, 0)
    await track.recv()
    clock[0] = 0.02
    await track.recv()
    assert frames == [320, 640] and track.consumed_bytes >= end_of_first  # the first write has gone out
    assert track.clear() == pytest.approx(160 / 16)  # 160 bytes left: 10 ms
    assert track.consumed_bytes == track.written_bytes == 800  # cleared counts as consumed
    clock[0] = 0.04
    await track.recv()
    assert drained == []  # only silence went out after the clear
    track.write(bytes(100))
    clock[0] = 0.06
    await track.recv()
    assert drained == [900]
    track.stop()


async def test_the_numpy_audio_level_is_aiortcs_own_number():
    import aiortc.rtp

    original = peer_original_audio_level()
    rng = np.random.default_rng(3)
    frames = [np.zeros(480), rng.standard_normal(480) * 30, rng.standard_normal(480) * 3000, np.full(480, 32767.0)]
    for samples in frames:
        frame = _build(samples.astype("<i2").reshape(1, -1), 24000, "mono", "s16")
        assert audio_frames.audio_level_dbov(frame) == original(frame)
    pc = new_peer_connection({})  # installs it where aiortc's sender looks it up
    await pc.close()
    assert aiortc.rtp.compute_audio_level_dbov is audio_frames.audio_level_dbov


def peer_original_audio_level():
    import importlib.util


    fresh = importlib.util.module_from_spec(importlib.util.find_spec("aiortc.rtp"))
    fresh.__spec__.loader.exec_module(fresh)  # aiortc's function, whatever is installed in its module
    assert fresh.compute_audio_level_dbov is not audio_frames.audio_level_dbov
    return fresh.compute_audio_level_dbov
