"""`telephony-bridge call`: one simulated call from the command line (Twilio, or `--carrier` any carrier
with a simulator profile), with a live transcript.

By default the console shows the conversation as the caller lived it (see testing/transcript.py for
where the words come from) and the few events that shape a call (connection, barge-in, hang-up);
``--events`` shows the simulator's full timeline instead. The call ends when the caller's audio is
over and the agent has then been silent for ``--hangup-after-silence`` seconds (default 2.5), at
most ``--max-duration`` after the audio; ``--duration`` fixes its length instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

from telephony_bridge.testing.profiles import PROFILES
from telephony_bridge.testing.simulator import DTMF_DIGITS, TimelineEvent, make_profile, place_call
from telephony_bridge.testing.transcript import LiveTranscript, tail_journal

DEFAULT_QUIET_S = 2.5  # long enough for a model to start answering, short enough not to feel stuck
DEFAULT_MAX_AFTER_AUDIO_S = 60.0
# What a person needs to follow a call without --events: the rest is in the timeline.
CONVERSATION_EVENTS = frozenset({"webhook", "twiml", "connect", "clear", "dtmf", "hangup", "close", "error", "warning"})


def parse_digits(text: str) -> list[tuple[float, str]]:
    """``"5.0:1,7.5:0"`` → ``[(5.0, "1"), (7.5, "0")]`` (seconds since the stream start)."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        when, sep, digit = item.partition(":")
        try:
            seconds = float(when)
        except ValueError:
            seconds = -1.0
        if not sep or seconds < 0 or len(digit) != 1 or digit not in DTMF_DIGITS:
            raise argparse.ArgumentTypeError(f"bad DTMF entry {item!r}: want SECONDS:DIGIT, digit one of 0-9 * #")
        out.append((seconds, digit))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--url", default="http://127.0.0.1:8080", help="the bridge's base URL (default: %(default)s)")
    add(
        "--carrier",
        default="twilio",
        choices=sorted(PROFILES),
        help="which carrier's phone calls: its answer endpoint and media stream (default: %(default)s)",
    )
    add("--to", default="+15550100", help="called number (default: %(default)s)")
    add("--from", dest="from_", default="+15550199", help="caller's number (default: %(default)s)")
    add("--audio", metavar="FILE", help="what the caller says: any WAV (mp3 etc. need ffmpeg), converted to mono 8 kHz")
    add(
        "--digits",
        type=parse_digits,
        default=[],
        metavar="T:D,...",
        help='DTMF, e.g. "5.0:1,7.5:0" (seconds since the stream start)',
    )
    end = parser.add_mutually_exclusive_group()
    end.add_argument(
        "--hangup-after-silence",
        type=float,
        metavar="SECONDS",
        help=f"after the caller's audio, hang up once the agent has been silent this long (default {DEFAULT_QUIET_S})",
    )
    end.add_argument("--duration", type=float, metavar="SECONDS", help="a fixed stream length instead")
    add(
        "--max-duration",
        type=float,
        metavar="SECONDS",
        help=f"longest call when waiting for silence (default: audio length + {DEFAULT_MAX_AFTER_AUDIO_S:.0f} s)",
    )
    add(
        "--calls-dir",
        default=os.environ.get("CALLS_DIR"),
        metavar="DIR",
        help="the bridge's CALLS_DIR, when it runs on this machine: adds the words to the transcript "
        "(default: $CALLS_DIR)",
    )
    add(
        "--auth-token",
        help="the carrier's secret to sign with (Twilio: default $TWILIO_AUTH_TOKEN; unsigned when unset)",
    )
    add("--account-sid", help="account id to send (Twilio: default $TWILIO_ACCOUNT_SID, or a random AC...)")
    add("--stream-url", help="connect here instead of the TwiML's stream URL (the signature stays over the TwiML's)")
    add("--heard-wav", metavar="PATH", help="write what the caller heard (mono PCM16 8 kHz)")
    add("--stereo-wav", metavar="PATH", help="write caller (left) and agent as heard (right)")
    add("--timeline-json", metavar="PATH", help="write the timeline as JSON")
    add("--events", action="store_true", help="show the simulator's full timeline, not just the conversation")
    add("--show-marks", action="store_true", help="with --events, every mark received and echoed too")
    add("--quiet", action="store_true", help="no live output, only the summary")
    add(
        "--sip",
        metavar="URI",
        help="call the bridge's SIP listener instead (sip:+15550100@127.0.0.1:5062): INVITE, RTP both ways, BYE",
    )


def _print_line(t_ms: float, kind: str, detail: str) -> None:
    print(f"{t_ms / 1000:+9.3f}s  {kind:<12} {detail}", flush=True)


class _Console:
    """Routes simulator events and journal entries to the screen."""

    def __init__(self, args: argparse.Namespace, with_journal: bool) -> None:
        self.events, self.show_marks, self.quiet = args.events or args.show_marks, args.show_marks, args.quiet
        self.last_ms = 0.0
        self.transcript = LiveTranscript(self.write, with_journal=with_journal)

    def write(self, t_ms: float | None, who: str, text: str) -> None:
        if not self.quiet:
            _print_line(self.last_ms if t_ms is None else t_ms, who, text)

    def on_event(self, event: TimelineEvent) -> None:
        self.last_ms = max(self.last_ms, event.t_ms)
        self.transcript.simulator_event(event.kind, event.data)
        if self.quiet or event.kind in ("agent_speech", "caller_speech"):
            return
        if self.events:
            # A bridge sends a mark per chunk, and a clear flushes them all: the clear line says how many.
            if self.show_marks or event.kind not in ("mark", "mark_echo"):
                _print_line(*event[:3])
        elif event.kind in CONVERSATION_EVENTS:
            _print_line(*event[:3])


async def run(args: argparse.Namespace) -> int:
    """``telephony-bridge call``: 0 = call ran cleanly, 1 = error or protocol errors, 2 = rejected."""
    if getattr(args, "sip", None):
        return await _run_sip(args)
    carrier = getattr(args, "carrier", "twilio")
    twilio = carrier == "twilio"
    token = args.auth_token if args.auth_token is not None else os.environ.get("TWILIO_AUTH_TOKEN") if twilio else None
    account_sid = args.account_sid or (os.environ.get("TWILIO_ACCOUNT_SID") if twilio else None) or None
    duration, quiet = args.duration, args.hangup_after_silence
    if duration is None:
        quiet = DEFAULT_QUIET_S if quiet is None else quiet
        if args.max_duration is not None:
            duration = args.max_duration
    try:
        profile = make_profile(carrier, args.url, secret=token or None, account_id=account_sid)
    except ValueError as e:
        print(f"error: {e}", flush=True)
        return 1
    new_call_id = getattr(profile, "new_call_id", None)
    call_sid = str(new_call_id()) if new_call_id is not None else "CA" + os.urandom(16).hex()
    journal = Path(args.calls_dir) / f"{call_sid}.jsonl" if args.calls_dir else None
    console = _Console(args, with_journal=journal is not None)
    stop_tail = asyncio.Event()
    tail = asyncio.create_task(tail_journal(journal, console.transcript.journal_entry, stop_tail)) if journal else None
    try:
        result = await place_call(
            args.url,
            to=args.to,
            from_=args.from_,
            caller_audio=args.audio or b"",
            digits=args.digits,
            duration_s=duration,
            hangup_after_silence_s=quiet,
            call_sid=call_sid,
            stream_url_override=args.stream_url,
            on_event=console.on_event,
            profile=profile,
        )
    except (ValueError, OSError) as e:  # bad arguments, unreadable audio
        print(f"error: {e}", flush=True)
        return 1
    finally:
        if tail is not None and journal is not None:  # a tail runs only with a journal
            await _last_journal_lines(journal, stop_tail, tail)
    console.transcript.finish()
    print(result.summary(), flush=True)
    if result.connected:
        if args.heard_wav:
            result.write_heard_wav(args.heard_wav)
            print(f"heard audio written to {args.heard_wav}")
        if args.stereo_wav:
            result.write_stereo_wav(args.stereo_wav)
            print(f"stereo recording written to {args.stereo_wav}")
    if args.timeline_json:
        text = json.dumps(result.timeline_json(), indent=1)
        await asyncio.to_thread(Path(args.timeline_json).write_text, text, encoding="utf-8")
        print(f"timeline written to {args.timeline_json}")
    if result.error or result.protocol_errors:
        return 1
    return 2 if result.rejected else 0


async def _run_sip(args: argparse.Namespace) -> int:
    """`call --sip URI`: one call over SIP and RTP (testing/sip_phone.py), then its summary."""
    from telephony_bridge.audio.files import read_wav_as_pcm16_8k_mono
    from telephony_bridge.testing.sip_phone import encode_caller_audio, sip_phone_call

    try:
        pcm = await asyncio.to_thread(read_wav_as_pcm16_8k_mono, args.audio) if args.audio else b""
    except (OSError, ValueError) as e:
        print(f"error: {e}", flush=True)
        return 1
    quiet = DEFAULT_QUIET_S if args.hangup_after_silence is None else args.hangup_after_silence
    result = await sip_phone_call(
        args.sip,
        caller=args.from_,
        audio_ulaw=encode_caller_audio(pcm),
        duration_s=args.duration,
        hangup_after_silence_s=quiet,
        max_duration_s=args.max_duration if args.max_duration is not None else DEFAULT_MAX_AFTER_AUDIO_S,
    )
    print(result.summary(), flush=True)
    if result.connected and args.heard_wav:
        from telephony_bridge.audio.g711 import ulaw_decode

        await asyncio.to_thread(_write_wav, args.heard_wav, ulaw_decode(bytes(result.heard_ulaw)))
        print(f"heard audio written to {args.heard_wav}")
    if result.error:
        return 1
    return 0 if result.connected else 2


def _write_wav(path: str, pcm16_8k: bytes) -> None:
    import wave

    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm16_8k)


async def _last_journal_lines(journal: Path, stop: asyncio.Event, tail: asyncio.Task[None]) -> None:
    """The bridge writes the call's last entries as it tears the call down: give it a moment."""
    final = journal.with_suffix(".json")  # written whole when the call has ended
    for _ in range(40):
        if final.exists() or not journal.exists():
            break
        await asyncio.sleep(0.05)  # a file on another process's schedule: nothing to wait on
    stop.set()
    await tail
