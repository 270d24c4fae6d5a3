"""SIP messages (RFC 3261 §7, §20), sans-I/O: bytes in, `SipRequest`/`SipResponse` out, and back.

What real peers send and hand-written parsers get wrong, handled here once:
- header names are case-insensitive and have compact forms (`v` is Via, `i` Call-ID, …);
- a header may be folded over several lines (a line starting with a space or tab continues it);
- a header may carry several values in one line, separated by commas that are not inside a
  quoted string or a `<…>` URI (`Via: a, b`), and the same header may appear several times;
- over TCP, `Content-Length` frames the messages (`StreamFramer`); over UDP one datagram is one
  message, and a `Content-Length` larger than what arrived makes it unusable.

Every failure is one narrow exception, `SipParseError` (a `CarrierProtocolError`), whose reason
holds at most a short excerpt of the input: the listener answers 400 where it can, counts, goes on.
Checking which headers a request must have is separate (`missing_headers`): a request that parsed
but lacks them still gets its 400, which needs the headers it does have.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final

from telephony_bridge.carriers.errors import CarrierProtocolError, excerpt

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Headers",
    "SipMessage",
    "SipParseError",
    "SipRequest",
    "SipResponse",
    "StreamFramer",
    "canonical_name",
    "is_digits",
    "missing_headers",
    "parse_message",
    "split_values",
]

# A SIP message over UDP fits a datagram; over TCP nothing legitimate comes near this either
# (an INVITE with SDP is 1–2 KiB). Anything larger is refused rather than buffered.
MAX_MESSAGE_BYTES: Final = 65_535
MAX_HEADERS: Final = 200

COMPACT_FORMS: Final[dict[str, str]] = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "u": "Allow-Events",
}
_CANONICAL: Final[dict[str, str]] = {
    name.lower(): name
    for name in (
        *COMPACT_FORMS.values(),
        "CSeq",
        "Max-Forwards",
        "Route",
        "Record-Route",
        "WWW-Authenticate",
        "Authorization",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "User-Agent",
        "Server",
        "Allow",
        "Accept",
        "Require",
        "Retry-After",
        "Expires",
        "Subscription-State",
        "Reason",
    )
}
# Headers whose values are comma-separated lists (RFC 3261 §7.3.1). Never the authentication
# headers or dates: their commas are inside one value.
LIST_HEADERS: Final = frozenset(
    {
        "via",
        "route",
        "record-route",
        "contact",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
    }
)
REQUIRED_IN_REQUESTS: Final = ("Via", "From", "To", "Call-ID", "CSeq")
_TOKEN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


class SipParseError(CarrierProtocolError):
    """The bytes are not a SIP message the bridge can use (the reason says why, briefly)."""


def canonical_name(name: str) -> str:
    """`v` → `Via`, `call-id` → `Call-ID`; unknown names as given."""
    lower = name.lower()
    if lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


def is_digits(text: str) -> bool:
    """ASCII digits only: `str.isdigit` also takes '²', which `int` refuses."""
    return text.isascii() and text.isdigit()


def _key(name: str) -> str:
    return canonical_name(name).lower()


def split_values(value: str) -> list[str]:
    """One header line's comma-separated values: commas inside quotes or `<…>` do not split."""
    values: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    angle = 0
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "<":
            angle += 1
        elif not quoted and char == ">" and angle:
            angle -= 1
        elif char == "," and not quoted and not angle:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    values.append("".join(current).strip())
    return [item for item in values if item]


class Headers:
    """A message's headers in order, looked up by any form of the name. Each entry is one header
    line as received (names canonicalised); `values` splits list headers into their values."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(name), value) for name, value in items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(_key(item) == _key(name) for item, _ in self._items)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first line of this header (the whole line, commas and all)."""
        key = _key(name)
        for item, value in self._items:
            if item.lower() == key:
                return value
        return default

    def lines(self, name: str) -> list[str]:
        key = _key(name)
        return [value for item, value in self._items if item.lower() == key]

    def values(self, name: str) -> list[str]:
        """Every value of the header, across lines, split at commas for list headers."""
        lines = self.lines(name)
        if _key(name) not in LIST_HEADERS:
            return lines
        return [value for line in lines for value in split_values(line)]

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every line of the header with one (in the place of the first)."""
        key = _key(name)
        for index, (item, _) in enumerate(self._items):
            if item.lower() == key:
                self._items[index] = (canonical_name(name), value)
                self._items[index + 1 :] = [entry for entry in self._items[index + 1 :] if entry[0].lower() != key]
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        key = _key(name)
        self._items = [entry for entry in self._items if entry[0].lower() != key]

    def copy(self) -> Headers:
        return Headers(self._items)


@dataclass(slots=True)
class SipRequest:
    method: str
    uri: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


@dataclass(slots=True)
class SipResponse:
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        return _serialize(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)


SipMessage = SipRequest | SipResponse


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    lines = [start_line]
    lines.extend(f"{name}: {value}" for name, value in headers if name.lower() != "content-length")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def _split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Head and the rest, at the first empty line (CRLF CRLF; a bare LF LF from sloppy peers)."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if crlf < 0 and lf < 0:
        return None
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return data[:crlf], data[crlf + 4 :]
    return data[:lf], data[lf + 2 :]


def _is_token(text: str) -> bool:
    return bool(text) and all(char in _TOKEN_CHARS for char in text)


def _parse_head(head: bytes) -> tuple[SipRequest | SipResponse, int | None]:
    """The start line and headers; the declared Content-Length (None when absent)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError(f"the header section is not UTF-8: {excerpt(head)}") from None
    raw_lines = text.replace("\r\n", "\n").split("\n")
    start, *header_lines = raw_lines
    items: list[tuple[str, str]] = []
    for line in header_lines:
        if line[:1] in (" ", "\t"):  # folding: continues the previous header's value
            if not items:
                raise SipParseError("a folded line before any header")
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _is_token(name):
            raise SipParseError(f"not a header line: {excerpt(line)}")
        items.append((name, value.strip()))
        if len(items) > MAX_HEADERS:
            raise SipParseError(f"more than {MAX_HEADERS} headers")
    headers = Headers(items)
    message = _parse_start(start, headers)
    length_text = headers.get("Content-Length")
    length: int | None = None
    if length_text is not None:
        if not is_digits(length_text) or len(length_text) > 6:
            raise SipParseError(f"bad Content-Length {excerpt(length_text)}")
        length = int(length_text)
        if length > MAX_MESSAGE_BYTES:
            raise SipParseError(f"Content-Length {length} is over {MAX_MESSAGE_BYTES}")
    return message, length


def _parse_start(line: str, headers: Headers) -> SipRequest | SipResponse:
    parts = line.split(" ")
    if len(parts) >= 3 and parts[0] == "SIP/2.0":
        code = parts[1]
        if len(code) != 3 or not is_digits(code) or not 100 <= int(code) <= 699:
            raise SipParseError(f"bad status line: {excerpt(line)}")
        return SipResponse(int(code), " ".join(parts[2:]), headers)
    if len(parts) == 3 and parts[2] == "SIP/2.0" and _is_token(parts[0]) and parts[1] and ":" in parts[1]:
        return SipRequest(parts[0].upper(), parts[1], headers)
    raise SipParseError(f"bad start line: {excerpt(line)}")


def parse_message(data: bytes) -> SipRequest | SipResponse:
    """One whole message (a UDP datagram). The body is what `Content-Length` says (the rest of the
    datagram without it); fewer bytes than it says is an error (RFC 3261 §18.3)."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise SipParseError(f"message of {len(data)} bytes is over {MAX_MESSAGE_BYTES}")
    data = data.lstrip(b"\r\n")
    parts = _split_head(data)
    if parts is None:
        raise SipParseError("no end of the header section")
    head, rest = parts
    message, length = _parse_head(head)
    if length is None:
        message.body = rest
    elif length > len(rest):
        raise SipParseError(f"Content-Length {length} but {len(rest)} body bytes")
    else:
        message.body = rest[:length]
    return message


def missing_headers(request: SipRequest) -> list[str]:
    """The mandatory headers a request lacks, or whose form is unusable (CSeq, Max-Forwards)."""
    missing = [name for name in REQUIRED_IN_REQUESTS if not request.headers.get(name)]
    cseq = request.headers.get("CSeq")
    if cseq:
        number, _, method = cseq.partition(" ")
        if not is_digits(number) or len(number) > 10 or method.strip().upper() != request.method:
            missing.append("CSeq")
    forwards = request.headers.get("Max-Forwards")
    if forwards is not None and (not is_digits(forwards) or len(forwards) > 3):
        missing.append("Max-Forwards")
    return missing


class StreamFramer:
    """A TCP byte stream in, whole messages out: the header section, then exactly `Content-Length`
    body bytes (mandatory on streams). Keep-alive CRLFs between messages are skipped. A message the
    framer cannot delimit leaves the stream unusable: `SipParseError`, and the connection closes."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[SipRequest | SipResponse]:
        self._buffer.extend(data)
        messages: list[SipRequest | SipResponse] = []
        while True:
            while self._buffer[:2] == b"\r\n" or self._buffer[:1] == b"\n":
                del self._buffer[: 2 if self._buffer[:1] == b"\r" else 1]
            parts = _split_head(bytes(self._buffer))
            if parts is None:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise SipParseError(f"no end of headers within {MAX_MESSAGE_BYTES} bytes")
                return messages
            head, rest = parts
            message, length = _parse_head(head)
            if length is None:
                raise SipParseError("a message on a stream without Content-Length")
            if len(rest) < length:
                return messages  # the body is still coming
            message.body = rest[:length]
            consumed = len(self._buffer) - len(rest) + length
            del self._buffer[:consumed]
            messages.append(message)
