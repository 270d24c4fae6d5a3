"""Peer connections with the project's ICE policy: the one way the project makes an RTCPeerConnection.

Two settings (a ``Mapping[str, str]``, the environment or a test's dict):

- ``WEBRTC_ICE_SERVERS``: STUN/TURN servers, either a JSON list of ``{"urls", "username",
  "credential"}`` objects (as in the browser's ``RTCConfiguration``) or comma-separated URLs
  (``stun:stun.example.net:3478,turn:turn.example.net``). Unset or empty: **no server at all**.
  aiortc asks a public STUN server when given none (``iceServers=None``); we always pass an
  explicit list, so without the setting no STUN/TURN request ever leaves the machine, and only
  host candidates are gathered.
- ``WEBRTC_HOST_ADDRESSES``: comma-separated IP addresses to gather host candidates on, e.g.
  ``127.0.0.1`` for a bridge and a local engine (or a browser) on one machine, or a private test
  address. Unset: aioice's own choice, every interface address except loopback (127.0.0.1 and
  ::1) and IPv6 link-local, which is right for talking to a provider across a network.

Why a hook is needed for loopback: aioice (the ICE agent under aiortc) hard-codes the skipping of
127.0.0.1 in its module-level ``get_host_addresses`` and has no option for it (aioice 0.13
``Connection`` takes STUN/TURN servers and IPv4/IPv6 flags only). ``Connection.gather_candidates``
looks that function up in its module at call time, so we replace it once with a wrapper that
returns the addresses of the connection being gathered for, when it has any, and aioice's own
answer otherwise. "The connection being gathered for" is a context variable that our peer
connection sets around ``setLocalDescription`` (where aiortc gathers, for offers and answers
alike): every other RTCPeerConnection in the process, and ours without the setting, keep aioice's
behaviour exactly.

Bundling: aiortc's default (``balanced``). With ``max-bundle``, aiortc 1.16 as the offerer closes
its only gathered ICE transport when the data channel was created before the audio track, and the
connection never comes up; ``balanced`` gathers once per media type and, as OpenAI and browsers
answer with BUNDLE, still runs one ICE pair and one DTLS handshake for both.

Not handled here: remote mDNS candidates (``*.local``, offered by browsers for privacy) make aioice
send multicast queries; a caller of this module that must stay on loopback drops them from the
remote SDP or has the browser not use them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import aioice.ice
import aiortc.rtp
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from .audio_frames import audio_level_dbov

__all__ = [
    "HOST_ADDRESSES_SETTING",
    "ICE_SERVERS_SETTING",
    "PeerConnection",
    "host_addresses",
    "ice_configuration",
    "ice_servers",
    "new_peer_connection",
    "selected_addresses",
]

ICE_SERVERS_SETTING = "WEBRTC_ICE_SERVERS"
HOST_ADDRESSES_SETTING = "WEBRTC_HOST_ADDRESSES"

_URL_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def ice_servers(config: Mapping[str, str]) -> list[RTCIceServer]:
    """The STUN/TURN servers of ``WEBRTC_ICE_SERVERS``; ``[]`` when unset (never aiortc's default).

    Raises ``ValueError`` for a malformed value, naming the problem but never a credential."""
    raw = config.get(ICE_SERVERS_SETTING, "").strip()
    if not raw:
        return []
    if raw.startswith("["):
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{ICE_SERVERS_SETTING} is not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
        if not isinstance(entries, list):
            raise ValueError(f"{ICE_SERVERS_SETTING} must be a JSON list of objects")
        return [_server_from_json(index, entry) for index, entry in enumerate(entries)]
    urls = [url.strip() for url in raw.split(",") if url.strip()]
    for url in urls:
        _check_url(url)
    return [RTCIceServer(urls=url) for url in urls]


def _server_from_json(index: int, entry: Any) -> RTCIceServer:
    where = f"{ICE_SERVERS_SETTING}[{index}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object with 'urls'")
    urls = entry.get("urls")
    url_list = [urls] if isinstance(urls, str) else urls
    if not isinstance(url_list, list) or not url_list or not all(isinstance(url, str) for url in url_list):
        raise ValueError(f"{where}.urls must be a URL or a non-empty list of URLs")
    for url in url_list:
        _check_url(url)
    unknown = set(entry) - {"urls", "username", "credential"}
    if unknown:
        raise ValueError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
    username, credential = entry.get("username"), entry.get("credential")
    for name, value in (("username", username), ("credential", credential)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}.{name} must be a string")
    return RTCIceServer(
        urls=urls if isinstance(urls, str) else list(url_list), username=username, credential=credential
    )


def _check_url(url: str) -> None:
    if not url.startswith(_URL_SCHEMES) or len(url) <= url.index(":") + 1:
        # A URL can carry credentials (turn:user:pass@...): say which scheme is wrong, not the URL.
        scheme = url.split(":", 1)[0] if ":" in url else "(none)"
        raise ValueError(f"{ICE_SERVERS_SETTING}: unsupported URL scheme {scheme!r} (stun, stuns, turn, turns)")


def host_addresses(config: Mapping[str, str]) -> tuple[str, ...] | None:
    """The addresses of ``WEBRTC_HOST_ADDRESSES`` (normalized), or ``None`` for aioice's choice."""
    raw = config.get(HOST_ADDRESSES_SETTING, "").strip()
    if not raw:
        return None
    addresses = []
    for item in raw.split(","):
        try:
            addresses.append(str(ipaddress.ip_address(item.strip())))
        except ValueError:
            raise ValueError(f"{HOST_ADDRESSES_SETTING}: {item.strip()!r} is not an IP address") from None
    return tuple(dict.fromkeys(addresses))


def ice_configuration(config: Mapping[str, str]) -> RTCConfiguration:
    """The RTCConfiguration of the settings: explicit (possibly empty) ICE servers."""
    return RTCConfiguration(iceServers=ice_servers(config))


# --- host candidates -------------------------------------------------------------------------

_gathering_addresses: ContextVar[tuple[str, ...] | None] = ContextVar("webrtc_gathering_addresses", default=None)
_aioice_host_addresses = aioice.ice.get_host_addresses


def _host_addresses_for_gathering(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _gathering_addresses.get()
    if chosen is None:
        return _aioice_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [address for address in chosen if (use_ipv4 if ipaddress.ip_address(address).version == 4 else use_ipv6)]


def _install_host_address_hook() -> None:
    # Idempotent; replaces the name gather_candidates looks up (see the module docstring).
    if aioice.ice.get_host_addresses is not _host_addresses_for_gathering:
        aioice.ice.get_host_addresses = _host_addresses_for_gathering


class PeerConnection(RTCPeerConnection):
    """An RTCPeerConnection that gathers host candidates on its own addresses when it has any."""

    def __init__(self, configuration: RTCConfiguration, addresses: tuple[str, ...] | None = None) -> None:
        super().__init__(configuration)
        self.host_addresses = addresses

    async def setLocalDescription(self, sessionDescription: RTCSessionDescription | None = None) -> None:
        token = _gathering_addresses.set(self.host_addresses)
        try:
            await super().setLocalDescription(sessionDescription)
        finally:
            _gathering_addresses.reset(token)


def _install_fast_audio_level() -> None:
    # aiortc's sender computes each audio frame's RFC 6465 level in a Python loop; the same number
    # in numpy (audio_frames.audio_level_dbov). Replaces the name its sender looks up per frame.
    if aiortc.rtp.compute_audio_level_dbov is not audio_level_dbov:
        aiortc.rtp.compute_audio_level_dbov = audio_level_dbov


def new_peer_connection(config: Mapping[str, str]) -> PeerConnection:
    """A peer connection with the ICE servers and host addresses of ``config``."""
    configuration = ice_configuration(config)
    addresses = host_addresses(config)
    _install_host_address_hook()
    _install_fast_audio_level()
    return PeerConnection(configuration, addresses)


def selected_addresses(pc: RTCPeerConnection) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """The (local, remote) addresses of the candidate pair ICE nominated, or None before that.

    aiortc exposes no selected pair; this reads aioice's nominated pair of the DTLS transports'
    ICE connections (with max-bundle there is one), so another aioice release may make it None."""
    dtls_transports = [transceiver.receiver.transport for transceiver in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls_transports.append(pc.sctp.transport)
    for dtls in dtls_transports:
        pair = getattr(getattr(dtls.transport, "_connection", None), "_nominated", {}).get(1)
        if pair is not None:
            local, remote = pair.local_candidate, pair.remote_candidate
            return (local.host, local.port), (remote.host, remote.port)
    return None
