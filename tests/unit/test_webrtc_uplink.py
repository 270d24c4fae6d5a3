"""The WebRTC uplink: caller frames converted once onto the outgoing track (a μ-law carrier with a
g711_ulaw session is a decode only, at 8 kHz), dropped and counted while the model cannot take
audio, and never queued without bound when the peer connection stops pulling frames."""

from __future__ import annotations

from telephony_bridge.audio.formats import L16_16K, ULAW_8K
from telephony_bridge.audio.g711 import ulaw_decode
from telephony_bridge.realtime.stats import ClientStatistics
from telephony_bridge.realtime.webrtc_connection import MAX_TRACK_LAG_MS, WebRTCUplink, calls_url_for
from telephony_bridge.webrtc.audio_frames import OutgoingAudioTrack

FRAME = bytes(range(160))  # 20 ms of μ-law


async def test_a_ulaw_caller_on_a_g711_session_is_decoded_only_onto_an_8k_track():
    uplink = WebRTCUplink("g711_ulaw", ClientStatistics(), "call CA-test")
    track = OutgoingAudioTrack(8000)
    uplink.track, uplink.ws = track, object()
    await uplink.accept_caller_audio(FRAME)
    assert bytes(track._queue) == ulaw_decode(FRAME)  # no resampling: the encoder takes 8 kHz to 48
    track.stop()


async def test_a_wideband_caller_on_a_pcm16_session_is_resampled_once_to_24k():
    uplink = WebRTCUplink("pcm16", ClientStatistics(), "call CA-test")
    uplink.set_input_format(L16_16K)
    track = OutgoingAudioTrack(24000)
    uplink.track, uplink.ws = track, object()
    for _ in range(10):
        await uplink.accept_caller_audio(bytes(640))  # 20 ms at 16 kHz
    assert 190 <= track.buffered_ms <= 200  # 200 ms in, less the resampler's held-back look-ahead
    track.stop()


async def test_frames_are_dropped_and_counted_while_nothing_takes_them():
    stats = ClientStatistics()
    uplink = WebRTCUplink("g711_ulaw", stats, "call CA-test")
    uplink.set_input_format(ULAW_8K)
    await uplink.accept_caller_audio(FRAME)  # not connected yet
    assert stats.caller_audio_dropped_ms == 20 and stats.caller_frames == 0
    track = OutgoingAudioTrack(8000)  # no sender pulls from it: a stalled peer connection
    uplink.track, uplink.ws = track, object()
    for _ in range(100):  # 2 s of caller audio
        await uplink.accept_caller_audio(FRAME)
    assert track.buffered_ms <= MAX_TRACK_LAG_MS + 20
    assert stats.caller_audio_dropped_ms >= 2000 - MAX_TRACK_LAG_MS
    track.stop()


def test_the_calls_endpoint_beside_a_realtime_url():
    assert calls_url_for("wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1") == (
        "https://api.openai.com/v1/realtime/calls?model=gpt-realtime-2.1"
    )
    assert calls_url_for("ws://127.0.0.1:9/v1/realtime/") == "http://127.0.0.1:9/v1/realtime/calls"
    assert calls_url_for("http://127.0.0.1:9/v1/realtime/calls") == "http://127.0.0.1:9/v1/realtime/calls"
