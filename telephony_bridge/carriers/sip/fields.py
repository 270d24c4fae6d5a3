"""The structured SIP header values the bridge reads: URIs, name-addr (From/To/Contact), Via, CSeq.

Parameters are `;name=value` with optional quoted values (`;tag="a;b"` stays one value). Every
failure is `SipParseError`; nothing here raises anything else on any input.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from telephony_bridge.carriers.errors import excerpt
from telephony_bridge.carriers.sip.message import SipParseError, is_digits

__all__ = [
    "CSeq",
    "NameAddr",
    "SipUri",
    "Via",
    "format_params",
    "parse_cseq",
    "parse_name_addr",
    "parse_params",
    "parse_uri",
    "parse_via",
]

DEFAULT_PORT: Final = 5060
_USER_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-_.!~*'()&=$,;?/%#")


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quoted:
        raise SipParseError(f"unterminated quoted string: {excerpt(text)}")
    parts.append("".join(current))
    return parts


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out: list[str] = []
        escaped = False
        for char in inner:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        return "".join(out)
    return value


def parse_params(text: str) -> dict[str, str]:
    """`;a=1;b;c="x;y"` (leading `;` optional) → {'a': '1', 'b': '', 'c': 'x;y'}; names lower-cased."""
    params: dict[str, str] = {}
    for part in _split_outside_quotes(text, ";"):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if not name:
            raise SipParseError(f"a parameter without a name: {excerpt(text)}")
        params[name] = unquote(value)
    return params


def format_params(params: dict[str, str]) -> str:
    return "".join(f";{name}={value}" if value else f";{name}" for name, value in params.items())


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str  # sip, sips or tel
    user: str
    host: str
    port: int | None = None
    params: dict[str, str] = field(default_factory=dict, hash=False)

    def __str__(self) -> str:
        if self.scheme == "tel":
            return f"tel:{self.user}{format_params(self.params)}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}:{user}{host}{port}{format_params(self.params)}"

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port or DEFAULT_PORT

    def with_params(self, **params: str) -> SipUri:
        return replace(self, params={**self.params, **params})


def parse_uri(text: str) -> SipUri:
    """`sip:user:pw@host:port;params?headers` (the password and URI headers dropped)."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips", "tel"):
        raise SipParseError(f"not a sip, sips or tel URI: {excerpt(text)}")
    rest = rest.split("?", 1)[0]
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise SipParseError(f"tel URI without a number: {excerpt(text)}")
        return SipUri("tel", number, "", None, parse_params(params))
    user = ""
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user = userinfo.split(":", 1)[0]
        if not user or not set(user) <= _USER_SAFE:
            raise SipParseError(f"bad user part in URI: {excerpt(text)}")
    hostport, _, params = rest.partition(";")
    port: int | None = None
    if hostport.startswith("["):
        host, bracket, after = hostport[1:].partition("]")
        if not bracket:
            raise SipParseError(f"bad IPv6 host in URI: {excerpt(text)}")
        port_text = after[1:] if after.startswith(":") else ("" if not after else None)
    else:
        host, _, port_text = hostport.partition(":")
    if port_text is None or not host or any(char in host for char in ' <>"@'):
        raise SipParseError(f"bad host in URI: {excerpt(text)}")
    if port_text:
        if not is_digits(port_text) or not 0 < int(port_text) <= 65535:
            raise SipParseError(f"bad port in URI: {excerpt(text)}")
        port = int(port_text)
    return SipUri(scheme, user, host.lower(), port, parse_params(params))


@dataclass(frozen=True, slots=True)
class NameAddr:
    """A From, To or Contact value: display name, URI, and the header's own parameters (tag)."""

    uri: SipUri
    display: str = ""
    params: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = '"' + self.display.replace("\\", "\\\\").replace('"', '\\"') + '" ' if self.display else ""
        return f"{display}<{self.uri}>{format_params(self.params)}"

    def with_tag(self, tag: str) -> NameAddr:
        return replace(self, params={**self.params, "tag": tag})


def parse_name_addr(text: str) -> NameAddr:
    """`"Alice" <sip:a@b>;tag=1`, `Alice <sip:a@b>`, or a bare `sip:a@b;tag=1` (whose `;`
    parameters belong to the header, RFC 3261 §20.10)."""
    text = text.strip()
    if "<" in text:
        display_part, _, rest = text.partition("<")
        uri_text, closing, params = rest.partition(">")
        if not closing:
            raise SipParseError(f"unterminated <URI>: {excerpt(text)}")
        return NameAddr(parse_uri(uri_text), unquote(display_part), parse_params(params))
    uri_text, _, params = text.partition(";")
    return NameAddr(parse_uri(uri_text), "", parse_params(params))


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # UDP, TCP, …
    host: str
    port: int | None
    params: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def branch(self) -> str:
        return self.params.get("branch", "")

    def response_address(self, source: tuple[str, int]) -> tuple[str, int]:
        """Where a response to this Via goes over UDP (RFC 3261 §18.2.2, RFC 3581 rport): the
        source address when `rport` is present or the sent-by host is not the source."""
        host, port = source
        if "rport" in self.params or self.params.get("received") or self.host != host:
            return host, port
        return self.host, self.port or DEFAULT_PORT


def parse_via(text: str) -> Via:
    """`SIP/2.0/UDP host:port;branch=z9hG4bK…;rport`."""
    protocol, _, rest = text.strip().partition(" ")
    parts = protocol.split("/")
    if len(parts) != 3 or parts[0].upper() != "SIP" or not parts[2]:
        raise SipParseError(f"bad Via: {excerpt(text)}")
    sent_by, _, params = rest.strip().partition(";")
    sent_by = sent_by.strip()
    if sent_by.startswith("["):
        host, _, after = sent_by[1:].partition("]")
        port_text = after[1:] if after.startswith(":") else ""
    else:
        host, _, port_text = sent_by.partition(":")
    if not host or (port_text and (not is_digits(port_text) or not 0 < int(port_text) <= 65535)):
        raise SipParseError(f"bad Via sent-by: {excerpt(text)}")
    return Via(parts[2].upper(), host, int(port_text) if port_text else None, parse_params(params))


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_cseq(text: str) -> CSeq:
    number, _, method = text.strip().partition(" ")
    method = method.strip().upper()
    if not is_digits(number) or len(number) > 10 or not method or " " in method:
        raise SipParseError(f"bad CSeq: {excerpt(text)}")
    return CSeq(int(number), method)
