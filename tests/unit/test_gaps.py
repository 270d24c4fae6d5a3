from __future__ import annotations

import pytest

from telephony_bridge.audio.g711 import ULAW_SILENCE
from telephony_bridge.audio.gaps import GapFiller

FRAME = bytes(range(160))  # 20 ms at 8 kHz, distinguishable from silence


def silence(n_bytes: int) -> bytes:
    return bytes([ULAW_SILENCE]) * n_bytes


def feed(filler: GapFiller, *timestamps: int, payload: bytes = FRAME) -> list[bytes]:
    return [filler.fill(ts, payload) for ts in timestamps]


def test_contiguous_frames_pass_through_unchanged() -> None:
    assert feed(GapFiller(), 0, 20, 40, 60) == [FRAME] * 4


def test_first_frame_is_never_filled_even_if_late() -> None:
    # Twilio's first media frame may carry a timestamp > 0; that is the stream start, not a loss.
    assert feed(GapFiller(), 540, 560) == [FRAME, FRAME]


def test_lost_frames_are_replaced_by_silence_of_the_same_duration() -> None:
    out = feed(GapFiller(), 0, 20, 80)  # frames at 40 and 60 never arrived
    assert out[:2] == [FRAME, FRAME]
    assert out[2] == silence(320) + FRAME


def test_exactly_one_frame_late_is_filled() -> None:
    assert feed(GapFiller(), 0, 40)[1] == silence(160) + FRAME


def test_jitter_below_one_frame_is_ignored_and_timeline_reanchors() -> None:
    # 5 ms late is jitter; the next frame is judged against this frame's end, so no drift builds.
    assert feed(GapFiller(), 0, 20, 45, 65, 85) == [FRAME] * 5


def test_duplicates_and_reordering_pass_through_without_false_fills() -> None:
    out = feed(GapFiller(), 0, 20, 60, 40, 40, 80)
    assert out[2] == silence(160) + FRAME  # 40 looked lost when 60 arrived
    assert out[3:] == [FRAME, FRAME, FRAME]  # the late 40, a duplicate, then 80 on time


def test_gap_is_measured_from_the_previous_payload_duration() -> None:
    filler = GapFiller()
    assert filler.fill(0, bytes(320)) == bytes(320)  # a 40 ms payload
    assert filler.fill(40, FRAME) == FRAME
    assert filler.fill(100, bytes(80)) == silence(320) + bytes(80)  # 40 ms gap after 60
    assert filler.fill(130, FRAME) == silence(160) + FRAME  # 80-byte payload lasted 10 ms


def test_fractional_ms_durations_add_up_exactly() -> None:
    filler = GapFiller()
    filler.fill(0, bytes(100))  # 12.5 ms, ends at 12.5
    assert filler.fill(33, FRAME) == silence(164) + FRAME  # 20.5 ms gap = 164 samples


def test_fill_is_capped_so_a_bogus_timestamp_cannot_allocate_megabytes() -> None:
    filler = GapFiller(max_fill_ms=2000)
    filler.fill(0, FRAME)
    out = filler.fill(3_600_000_000, FRAME)  # 1000 hours later
    assert out == silence(16000) + FRAME


def test_cap_of_zero_disables_filling() -> None:
    assert feed(GapFiller(max_fill_ms=0), 0, 100) == [FRAME, FRAME]


def test_other_sample_rate_and_frame_size() -> None:
    frame_16k = bytes(320)  # 20 ms at 16 kHz
    filler = GapFiller(frame_ms=10, sample_rate=16000)
    assert filler.fill(0, frame_16k) == frame_16k
    assert filler.fill(30, frame_16k) == silence(160) + frame_16k  # 10 ms gap, one 10 ms frame


@pytest.mark.parametrize(
    "kwargs", [{"frame_ms": 0}, {"sample_rate": 0}, {"sample_rate": -8000}, {"max_fill_ms": -1}]
)
def test_bad_configuration_is_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        GapFiller(**kwargs)
