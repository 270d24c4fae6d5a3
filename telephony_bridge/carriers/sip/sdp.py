"""SDP (RFC 4566) and the offer/answer the bridge does (RFC 3264), sans-I/O.

The bridge speaks G.711 at 8 kHz (PCMU 0, PCMA 8) with RFC 4733 `telephone-event/8000`, 20 ms
packets. Answering an offer: the first offered codec the bridge supports (the offerer's
preference), the offer's own dynamic payload number for telephone-event, one answer `m=` line per
offered one (others rejected with port 0), and the direction mirrored (the peer's `sendonly` is
our `recvonly`: hold). An offer with no common codec is `NoCommonCodec` (the listener answers 488).
Old peers hold with `c=0.0.0.0`: read as inactive. Anything unparseable is `SipParseError`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from telephony_bridge.carriers.errors import excerpt
from telephony_bridge.carriers.sip.message import SipParseError, is_digits

__all__ = [
    "PCMA",
    "PCMU",
    "Direction",
    "MediaDescription",
    "Negotiated",
    "NoCommonCodec",
    "SessionDescription",
    "answer_offer",
    "build_offer",
    "parse_sdp",
    "read_answer",
]

PCMU: Final = 0
PCMA: Final = 8
SUPPORTED: Final[dict[str, int]] = {"PCMU": PCMU, "PCMA": PCMA}
STATIC_NAMES: Final[dict[int, str]] = {PCMU: "PCMU", PCMA: "PCMA"}
DEFAULT_TELEPHONE_EVENT: Final = 101
PTIME_MS: Final = 20
MAX_SDP_LINES: Final = 500


class Direction(Enum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    def mirrored(self) -> Direction:
        """The answer's direction for an offer's (RFC 3264 §6.1)."""
        return {
            Direction.SENDONLY: Direction.RECVONLY,
            Direction.RECVONLY: Direction.SENDONLY,
        }.get(self, self)


class NoCommonCodec(Exception):
    """The offer has no audio stream in PCMU or PCMA at 8 kHz."""


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    rtpmap: dict[int, str] = field(default_factory=dict)  # payload type → "PCMU/8000"
    direction: Direction | None = None
    ptime: int | None = None


@dataclass(slots=True)
class SessionDescription:
    origin: str = ""
    connection: str | None = None
    direction: Direction = Direction.SENDRECV
    media: list[MediaDescription] = field(default_factory=list)


def _connection_address(value: str) -> str:
    """The address of a c= line: an IP literal only. A host name would make every RTP send a
    blocking DNS lookup, and anything else (a NUL, garbage) must never reach a socket call."""
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SipParseError(f"bad c= line: {excerpt(value)}")
    address = parts[2].split("/", 1)[0]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise SipParseError(f"c= address is not an IP address: {excerpt(address)}") from None
    return address


def parse_sdp(body: bytes) -> SessionDescription:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("SDP is not UTF-8") from None
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or lines[0] != "v=0":
        raise SipParseError(f"SDP does not start with v=0: {excerpt(text)}")
    if len(lines) > MAX_SDP_LINES:
        raise SipParseError(f"SDP of more than {MAX_SDP_LINES} lines")
    session = SessionDescription()
    current: MediaDescription | None = None
    for line in lines[1:]:
        kind, equals, value = line.partition("=")
        if not equals or len(kind) != 1:
            raise SipParseError(f"bad SDP line: {excerpt(line)}")
        if kind == "o":
            session.origin = value
        elif kind == "c":
            address = _connection_address(value)
            if current is None:
                session.connection = address
            else:
                current.connection = address
        elif kind == "m":
            parts = value.split()
            port_text = parts[1].split("/", 1)[0] if len(parts) >= 3 else ""
            if len(parts) < 3 or not is_digits(port_text) or int(port_text) > 65535:
                raise SipParseError(f"bad m= line: {excerpt(line)}")
            current = MediaDescription(parts[0], int(port_text), parts[2], parts[3:])
            session.media.append(current)
        elif kind == "a":
            _attribute(session, current, value)
    return session


def _attribute(session: SessionDescription, media: MediaDescription | None, value: str) -> None:
    name, _, argument = value.partition(":")
    if name in Direction._value2member_map_:
        direction = Direction(name)
        if media is None:
            session.direction = direction
        else:
            media.direction = direction
    elif media is None:
        return
    elif name == "rtpmap":
        number, _, encoding = argument.partition(" ")
        if not is_digits(number) or int(number) > 127 or not encoding.strip():
            raise SipParseError(f"bad rtpmap: {excerpt(value)}")
        media.rtpmap[int(number)] = encoding.strip()
    elif name == "ptime" and is_digits(argument.strip()) and len(argument.strip()) < 6:
        media.ptime = int(argument.strip())


@dataclass(frozen=True, slots=True)
class Negotiated:
    """What the RTP stream does, from the offer/answer: where to send, which payload types, and
    our direction (what the bridge does: `sendrecv`, or `recvonly` while the peer holds)."""

    remote_host: str
    remote_port: int
    payload_type: int
    telephone_event_pt: int | None
    direction: Direction

    @property
    def on_hold(self) -> bool:
        return self.direction in (Direction.RECVONLY, Direction.INACTIVE)


def _codec(media: MediaDescription, payload: int) -> str | None:
    """The supported codec a payload type is in this m= line, or None."""
    encoding = media.rtpmap.get(payload)
    if encoding is None:
        return STATIC_NAMES.get(payload)  # static types need no rtpmap
    name, _, rest = encoding.partition("/")
    rate = rest.split("/", 1)[0]
    if name.upper() in SUPPORTED and rate == "8000" and SUPPORTED[name.upper()] == payload:
        return name.upper()
    if name.upper() in SUPPORTED and rate == "8000" and payload >= 96:
        return name.upper()  # a dynamic number for a G.711 codec: legal, rare
    return None


def _telephone_event(media: MediaDescription) -> int | None:
    for payload, encoding in media.rtpmap.items():
        if encoding.lower().startswith("telephone-event/8000") and str(payload) in media.formats:
            return payload
    return None


def _choose(session: SessionDescription) -> tuple[int, MediaDescription, int] | None:
    """The first audio RTP/AVP m= line with a supported codec: its index, itself, the payload."""
    for index, media in enumerate(session.media):
        if media.media != "audio" or media.port == 0 or "RTP/AVP" not in media.proto.upper():
            continue
        for fmt in media.formats:
            if is_digits(fmt) and _codec(media, int(fmt)) is not None:
                return index, media, int(fmt)
    return None


def _negotiated(session: SessionDescription, media: MediaDescription, payload: int) -> Negotiated:
    host = media.connection or session.connection
    if host is None:
        raise SipParseError("SDP without a c= address")
    offered = media.direction or session.direction
    if host in ("0.0.0.0", "::"):
        offered = Direction.INACTIVE  # RFC 2543 hold
    # An answer's direction mirrors its offer, so ours is the mirror of theirs either way.
    return Negotiated(host, media.port, payload, _telephone_event(media), offered.mirrored())


def answer_offer(
    offer: SessionDescription, address: str, port: int, session_id: int, local_direction: Direction = Direction.SENDRECV
) -> tuple[Negotiated, bytes]:
    """The negotiated stream and the SDP answer to send; `NoCommonCodec` when there is none."""
    chosen = _choose(offer)
    if chosen is None:
        raise NoCommonCodec("no PCMU or PCMA at 8000 Hz in the offer")
    index, media, payload = chosen
    negotiated = _negotiated(offer, media, payload)
    if local_direction is not Direction.SENDRECV:  # the bridge holding (never today) narrows it
        negotiated = _narrow(negotiated, local_direction)
    lines = _session_lines(address, session_id)
    for position, other in enumerate(offer.media):
        if position != index:
            lines.append(f"m={other.media} 0 {other.proto} {' '.join(other.formats) or '0'}")
            continue
        lines.extend(_audio_lines(port, payload, media.rtpmap.get(payload), negotiated.telephone_event_pt))
        lines.append(f"a={negotiated.direction.value}")
    return negotiated, ("\r\n".join(lines) + "\r\n").encode()


def _narrow(negotiated: Negotiated, local: Direction) -> Negotiated:
    sends = negotiated.direction in (Direction.SENDRECV, Direction.SENDONLY) and local in (
        Direction.SENDRECV,
        Direction.SENDONLY,
    )
    receives = negotiated.direction in (Direction.SENDRECV, Direction.RECVONLY) and local in (
        Direction.SENDRECV,
        Direction.RECVONLY,
    )
    direction = {
        (True, True): Direction.SENDRECV,
        (True, False): Direction.SENDONLY,
        (False, True): Direction.RECVONLY,
        (False, False): Direction.INACTIVE,
    }[(sends, receives)]
    return Negotiated(
        negotiated.remote_host,
        negotiated.remote_port,
        negotiated.payload_type,
        negotiated.telephone_event_pt,
        direction,
    )


def _session_lines(address: str, session_id: int) -> list[str]:
    family = "IP6" if ":" in address else "IP4"
    return [
        "v=0",
        f"o=- {session_id} {session_id} IN {family} {address}",
        "s=telephony-bridge",
        f"c=IN {family} {address}",
        "t=0 0",
    ]


def _audio_lines(port: int, payload: int, encoding: str | None, telephone_event: int | None) -> list[str]:
    formats = [str(payload)] + ([str(telephone_event)] if telephone_event is not None else [])
    lines = [f"m=audio {port} RTP/AVP {' '.join(formats)}"]
    lines.append(f"a=rtpmap:{payload} {encoding or STATIC_NAMES[payload] + '/8000'}")
    if telephone_event is not None:
        lines.append(f"a=rtpmap:{telephone_event} telephone-event/8000")
        lines.append(f"a=fmtp:{telephone_event} 0-16")
    lines.append(f"a=ptime:{PTIME_MS}")
    return lines


def build_offer(address: str, port: int, session_id: int, direction: Direction = Direction.SENDRECV) -> bytes:
    """The bridge's offer (outbound calls, offerless INVITEs): PCMU, PCMA, telephone-event 101."""
    lines = _session_lines(address, session_id)
    lines.append(f"m=audio {port} RTP/AVP {PCMU} {PCMA} {DEFAULT_TELEPHONE_EVENT}")
    lines.append(f"a=rtpmap:{PCMU} PCMU/8000")
    lines.append(f"a=rtpmap:{PCMA} PCMA/8000")
    lines.append(f"a=rtpmap:{DEFAULT_TELEPHONE_EVENT} telephone-event/8000")
    lines.append(f"a=fmtp:{DEFAULT_TELEPHONE_EVENT} 0-16")
    lines.append(f"a=ptime:{PTIME_MS}")
    lines.append(f"a={direction.value}")
    return ("\r\n".join(lines) + "\r\n").encode()


def read_answer(answer: SessionDescription) -> Negotiated:
    """The stream an answer to `build_offer` sets up; `NoCommonCodec` when it accepted nothing."""
    chosen = _choose(answer)
    if chosen is None:
        raise NoCommonCodec("the answer accepted neither PCMU nor PCMA")
    _, media, payload = chosen
    return _negotiated(answer, media, payload)
