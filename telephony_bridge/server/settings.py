"""Server configuration, from the environment (documented in README "Configuration").

Limits that protect one call (and the process) from a broken or hostile peer; each ends only the
call concerned, with a log line naming it and a WebSocket close code with a reason:

- ``PEER_STALL_TIMEOUT_S`` (``peer_stall_timeout_s``, default 10): the carrier has stopped reading
  (sends to it have waited this long without progress). Without it a stalled peer would block the
  model's audio path of that call forever. The call ends with close 1011; the close frame is given
  as long again to get through, then the connection is dropped.
- ``MEDIA_STALL_TIMEOUT_S`` (``media_stall_timeout_s``, default 10): a media unit of the call (the
  model client, or one a scenario wrote) has not taken a caller frame for this long. The carrier
  reader — hang-up, DTMF, marks — must not wait on it forever. Close 1011.
- ``START_TIMEOUT_S`` (``start_timeout_s``, default 10): a media WebSocket that has not sent a valid
  ``start`` by then is not a call. Close 1008.

``ANSWER_STALL_TIMEOUT_S`` (``answer_stall_timeout_s``, default 1; 0 turns it off): a model that
has sent nothing for this long in the middle of an answer (longer before its first audio), once
the audio it sent has played out, is cut off and reconnected, and the new session is asked for the
answer again (realtime/stall.py). A scenario's ``answerStallTimeoutS`` client parameter overrides it.

``PREROLL_MS`` (``preroll_ms``, default 1000; 0 turns it off): how much of the caller's most
recent audio a call keeps while no media unit takes it (the scenario has not yet answered or
called ``sendMediaTo``), handed over when one does, so a scenario that connects late keeps the
caller's first word.

``GC_FREEZE`` (``gc_freeze``; on for ``telephony-bridge serve``, ``GC_FREEZE=0`` turns it off; off
for a ``Settings()`` built in code, such as a test's in-process server, whose process is not
the bridge's alone): freeze the start-up heap so full garbage collections stay short under load.

Limits of the process against floods and slow clients:

- ``MAX_CALLS`` (``max_calls``, default 300): media streams in progress at once. The webhook answers
  503 beyond it (Twilio then tries the number's fallback URL) and a stream beyond it is closed with
  1013 "try again later"; both are counted.
- ``HTTP_HEADER_TIMEOUT_S`` (default 10): a connection that has not sent a whole request head by then
  is closed (slowloris). ``HTTP_BODY_TIMEOUT_S`` (default 10): the same for a webhook's body.
- ``MAX_CONNECTIONS`` (default ``MAX_CALLS`` + 200): open HTTP and WebSocket connections; uvicorn
  answers 503 beyond it.

``STREAM_TOKEN_SECRET`` (``stream_token_secret``; default random per process, shared by ``serve
--workers``): the key of the tokens that bind a media stream to the call the webhook answered
(server/stream_tokens.py). Set the same value on every instance when the webhook and the stream
of one call may reach different instances (several replicas behind one load balancer).
``STREAM_TOKEN_TTL_S`` (default 30): how long after the answer the stream may start.

``DATA_DIR`` (``data_dir``, default ``./data``): where the bridge keeps what outlives calls, today
scenarios' ``ApplicationStorage`` (one SQLite file, created on first use). ``SECRETS_FILE``
(``secrets_file``): a TOML or env file of secrets for ``VoxEngine.getSecretValue`` (server/scenario_secrets.py);
names it lacks are read from the environment.
``SCENARIO_SESSION_MAX_S`` (default 3600): the longest a scenario started from outside (``POST
/api/scenarios/{name}/start``) may run, whatever its calls do (server/scenario_sessions.py).
``RECORDINGS_DIR`` (``recordings_dir``, default ``data/recordings``, relative to the working
directory; created on the first recording): where ``call.record()`` writes. Nothing is recorded
unless a scenario asks; the files are served at ``/recordings/<id>.wav`` to holders of an
``API_KEYS`` key only (404 when no key is configured).

The call store and the console (server/call_store.py, server/console.py): ``CALL_STORE``
(``call_store``; on for ``telephony-bridge serve``, ``CALL_STORE=0`` turns it off; off for a
``Settings()`` built in code, so tests do not write ``./data``) keeps every call in a SQLite file
under ``DATA_DIR``, or in PostgreSQL at ``DATABASE_URL`` (``database_url``,
``postgresql://user:pass@host/db``) for several bridges sharing one history. ``RETENTION_DAYS``
(``retention_days``, default 0 = keep forever) deletes older calls and their recordings.
``CONSOLE_TOKEN`` (``console_token``): the web console's bearer token (``API_KEYS`` work too);
without either the console serves loopback clients only.

Asterisk AudioSocket (server/audiosocket.py): ``AUDIOSOCKET_LISTEN`` (``audiosocket_listen``;
``serve --audiosocket``): comma-separated ``HOST:PORT`` or ``HOST:PORT=NUMBER`` TCP listeners, the
number being the dialed number of every call on that listener, routed like any other.
``AUDIOSOCKET_ALLOW``: the CIDRs an AudioSocket peer may connect from (unset: loopback only).

SIP trunks (server/sip_listener.py, docs/sip.md): ``SIP_LISTEN`` (``sip_listen``; ``serve --sip``):
comma-separated ``udp:HOST:PORT`` / ``tcp:HOST:PORT``. ``SIP_ALLOW`` (CIDRs admitted without a
challenge), ``SIP_USERS`` (``user:password`` for digest), ``RTP_PORTS`` (default 20000-20999),
``SIP_PUBLIC_ADDRESS`` (the address in SDP and Contact behind NAT).

``IDLE_RELEASE_S`` (``idle_release_s``, default 1; 0 turns it off): once no call has been in
progress for this long, the process runs a full garbage collection and returns free pages to the
OS (server/memory.py), so RSS comes back down after a busy period.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from telephony_bridge.carriers.audiosocket_carrier import ALLOW_ENV, Listener, parse_allow, parse_listen
from telephony_bridge.carriers.sip.carrier import ALLOW_ENV as SIP_ALLOW_ENV
from telephony_bridge.carriers.sip.carrier import DIGEST_ENV as SIP_DIGEST_ENV
from telephony_bridge.carriers.sip.carrier import INVITE_RATE_ENV as SIP_INVITE_RATE_ENV
from telephony_bridge.carriers.sip.carrier import OUTBOUND_ENV as SIP_OUTBOUND_ENV
from telephony_bridge.carriers.sip.carrier import USERS_ENV as SIP_USERS_ENV
from telephony_bridge.carriers.sip.carrier import (
    SipListenerSpec,
    parse_digest_algorithms,
    parse_invite_rate,
    parse_networks,
    parse_outbound,
    parse_sip_listen,
    parse_users,
)
from telephony_bridge.server.sip_media import parse_port_range


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None  # PUBLIC_URL: https://bridge.example.com — what Twilio calls
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_account_sid: str | None = None
    twilio_api_base_url: str | None = None  # TWILIO_API_BASE_URL: a stand-in REST API (tests)
    realtime_url: str | None = None  # REALTIME_URL: model endpoint override
    live_url: str | None = None  # LIVE_URL: the GPT-Live endpoint's full WebSocket URL, used as given
    openai_api_key: str | None = field(default=None, repr=False)
    scenarios_dir: Path = Path("scenarios")
    calls_dir: Path | None = None  # CALLS_DIR: per-call JSON transcripts (journal) go here
    engine_script: Path | None = None  # LOCAL_ENGINE_SCRIPT: the embedded engine's script
    reload: bool = False
    drain_timeout_s: float = 30.0  # DRAIN_TIMEOUT_S: on SIGTERM, how long calls in progress may finish
    peer_stall_timeout_s: float = 10.0  # PEER_STALL_TIMEOUT_S: see the module docstring
    media_stall_timeout_s: float = 10.0  # MEDIA_STALL_TIMEOUT_S
    start_timeout_s: float = 10.0  # START_TIMEOUT_S
    idle_release_s: float = 1.0  # IDLE_RELEASE_S: 0 = never give memory back when idle
    gc_freeze: bool = False  # GC_FREEZE: on (1) by default from the environment
    max_calls: int = 300  # MAX_CALLS: media streams in progress at once
    max_connections: int | None = None  # MAX_CONNECTIONS: default max_calls + 200
    http_header_timeout_s: float = 10.0  # HTTP_HEADER_TIMEOUT_S: slowloris guard
    http_body_timeout_s: float = 10.0  # HTTP_BODY_TIMEOUT_S
    stream_token_secret: bytes = field(default_factory=lambda: os.urandom(32), repr=False)  # STREAM_TOKEN_SECRET
    stream_token_ttl_s: float = 30.0  # STREAM_TOKEN_TTL_S
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # API_KEYS: bearer keys of the management API
    # The environment the settings were read from: each carrier reads its own names from it
    # (carriers/*: TWILIO_*, …) through carrier_config().
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    answer_stall_timeout_s: float = 1.0  # ANSWER_STALL_TIMEOUT_S: 0 = no answer watchdog
    preroll_ms: int = 1000  # PREROLL_MS: 0 = drop caller audio until a unit takes it
    data_dir: Path = Path("data")  # DATA_DIR: ApplicationStorage's file
    secrets_file: Path | None = None  # SECRETS_FILE: VoxEngine.getSecretValue's file (then the environment)
    scenario_session_max_s: float = 3600.0  # SCENARIO_SESSION_MAX_S: longest life of a session started by the API
    recordings_dir: Path = Path("data/recordings")  # RECORDINGS_DIR: where call.record() writes
    call_store: bool = False  # CALL_STORE: on (1) by default from the environment
    database_url: str | None = field(default=None, repr=False)  # DATABASE_URL: default SQLite under data_dir
    retention_days: float = 0.0  # RETENTION_DAYS: 0 = keep every call
    console_token: str | None = field(default=None, repr=False)  # CONSOLE_TOKEN: the console's bearer token
    audiosocket_listen: tuple[str, ...] = ()  # AUDIOSOCKET_LISTEN / --audiosocket: HOST:PORT[=NUMBER] each
    sip_listen: tuple[str, ...] = ()  # SIP_LISTEN / --sip: udp:HOST:PORT or tcp:HOST:PORT each

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ

        def opt(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def opt_path(name: str) -> Path | None:
            value = opt(name)
            return Path(value) if value else None

        values: dict[str, object] = {
            "public_url": (opt("PUBLIC_URL") or "").rstrip("/") or None,
            "twilio_auth_token": opt("TWILIO_AUTH_TOKEN"),
            "twilio_account_sid": opt("TWILIO_ACCOUNT_SID"),
            "twilio_api_base_url": opt("TWILIO_API_BASE_URL"),
            "realtime_url": opt("REALTIME_URL"),
            "live_url": opt("LIVE_URL"),
            "openai_api_key": opt("OPENAI_API_KEY"),
            "scenarios_dir": Path(opt("SCENARIOS_DIR") or "scenarios"),
            "calls_dir": opt_path("CALLS_DIR"),
            "engine_script": opt_path("LOCAL_ENGINE_SCRIPT"),
            "drain_timeout_s": float(opt("DRAIN_TIMEOUT_S") or 30.0),
            "peer_stall_timeout_s": _positive(opt("PEER_STALL_TIMEOUT_S"), "PEER_STALL_TIMEOUT_S", 10.0),
            "media_stall_timeout_s": _positive(opt("MEDIA_STALL_TIMEOUT_S"), "MEDIA_STALL_TIMEOUT_S", 10.0),
            "start_timeout_s": _positive(opt("START_TIMEOUT_S"), "START_TIMEOUT_S", 10.0),
            "idle_release_s": _non_negative(opt("IDLE_RELEASE_S"), "IDLE_RELEASE_S", 1.0),
            "gc_freeze": _flag(opt("GC_FREEZE"), "GC_FREEZE", True),
            "max_calls": _count(opt("MAX_CALLS"), "MAX_CALLS", 300),
            "max_connections": _count(opt("MAX_CONNECTIONS"), "MAX_CONNECTIONS", 0) or None,
            "http_header_timeout_s": _positive(opt("HTTP_HEADER_TIMEOUT_S"), "HTTP_HEADER_TIMEOUT_S", 10.0),
            "http_body_timeout_s": _positive(opt("HTTP_BODY_TIMEOUT_S"), "HTTP_BODY_TIMEOUT_S", 10.0),
            "stream_token_secret": _secret(opt("STREAM_TOKEN_SECRET"), "STREAM_TOKEN_SECRET"),
            "stream_token_ttl_s": _positive(opt("STREAM_TOKEN_TTL_S"), "STREAM_TOKEN_TTL_S", 30.0),
            "api_keys": tuple(key.strip() for key in (opt("API_KEYS") or "").split(",") if key.strip()) or None,
            "environ": dict(env),
            "answer_stall_timeout_s": _non_negative(opt("ANSWER_STALL_TIMEOUT_S"), "ANSWER_STALL_TIMEOUT_S", 1.0),
            "preroll_ms": _milliseconds(opt("PREROLL_MS"), "PREROLL_MS", 1000),
            "data_dir": Path(opt("DATA_DIR") or "data"),
            "secrets_file": _optional_path(opt("SECRETS_FILE")),
            "scenario_session_max_s": _positive(opt("SCENARIO_SESSION_MAX_S"), "SCENARIO_SESSION_MAX_S", 3600.0),
            "recordings_dir": Path(opt("RECORDINGS_DIR") or "data/recordings"),
            "call_store": _flag(opt("CALL_STORE"), "CALL_STORE", True),
            "database_url": opt("DATABASE_URL"),
            "retention_days": _non_negative(opt("RETENTION_DAYS"), "RETENTION_DAYS", 0.0),
            "console_token": opt("CONSOLE_TOKEN"),
            "audiosocket_listen": tuple(
                item.strip() for item in (opt("AUDIOSOCKET_LISTEN") or "").split(",") if item.strip()
            ),
            "sip_listen": tuple(item.strip() for item in (opt("SIP_LISTEN") or "").split(",") if item.strip()),
        }
        if values["stream_token_secret"] is None:
            del values["stream_token_secret"]  # the default: a fresh random one
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for name in (
            "peer_stall_timeout_s",
            "media_stall_timeout_s",
            "start_timeout_s",
            "http_header_timeout_s",
            "http_body_timeout_s",
            "stream_token_ttl_s",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not self.idle_release_s >= 0:
            raise ValueError(
                f"idle_release_s must be 0 (off) or a positive number of seconds, got {self.idle_release_s!r}"
            )
        if not self.answer_stall_timeout_s >= 0:
            raise ValueError(
                "answer_stall_timeout_s must be 0 (off) or a positive number of seconds, "
                f"got {self.answer_stall_timeout_s!r}"
            )
        if not self.preroll_ms >= 0:
            raise ValueError(
                f"preroll_ms must be 0 (off) or a positive number of milliseconds, got {self.preroll_ms!r}"
            )
        if self.max_calls < 1:
            raise ValueError(f"max_calls must be at least 1, got {self.max_calls!r}")
        if len(self.stream_token_secret) < 16:
            raise ValueError("stream_token_secret must be at least 16 bytes")
        for spec in self.audiosocket_listen:
            parse_listen(spec)  # ValueError at start-up, naming the bad listener
        parse_allow(self.environ.get(ALLOW_ENV, ""))
        for spec in self.sip_listen:
            parse_sip_listen(spec)
        if self.sip_listen:  # the SIP carrier's own names: a bad one fails start-up, naming it
            parse_networks(self.environ.get(SIP_ALLOW_ENV, ""))
            parse_users(self.environ.get(SIP_USERS_ENV, ""))
            parse_port_range(self.environ.get("RTP_PORTS") or "20000-20999")
            parse_digest_algorithms(self.environ.get(SIP_DIGEST_ENV, ""))
            parse_invite_rate(self.environ.get(SIP_INVITE_RATE_ENV, ""))
            parse_outbound(self.environ.get(SIP_OUTBOUND_ENV, ""))

    @property
    def sip_listeners(self) -> list[SipListenerSpec]:
        """The SIP listeners, parsed."""
        return [parse_sip_listen(spec) for spec in self.sip_listen]

    @property
    def audiosocket_listeners(self) -> list[Listener]:
        """The AudioSocket listeners, parsed."""
        return [parse_listen(spec) for spec in self.audiosocket_listen]

    @property
    def connection_limit(self) -> int:
        """uvicorn's limit_concurrency: every call's stream plus room for webhooks, health and metrics."""
        return self.max_connections or self.max_calls + 200

    @property
    def base_url(self) -> str:
        """Where carriers reach us: PUBLIC_URL, never a proxy header we cannot trust."""
        return self.public_url or f"http://{self.host}:{self.port}"

    def carrier_config(self) -> dict[str, str]:
        """What the carriers read their secrets and endpoints from: the environment, with the
        Twilio fields of these settings (which code and tests may set directly) in force."""
        config = dict(self.environ)
        for name, value in (
            ("TWILIO_AUTH_TOKEN", self.twilio_auth_token),
            ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
            ("TWILIO_API_BASE_URL", self.twilio_api_base_url),
        ):
            if value:
                config[name] = value
            else:
                config.pop(name, None)
        return config

    @property
    def uses_local_engine(self) -> bool:
        return not self.realtime_url and not self.openai_api_key

    def model_environ(self) -> dict[str, str]:
        """What the realtime client factory reads, from these settings rather than os.environ."""
        env = {"ANSWER_STALL_TIMEOUT_S": repr(self.answer_stall_timeout_s)}
        if self.realtime_url:
            env["REALTIME_URL"] = self.realtime_url
        if self.openai_api_key:
            env["OPENAI_API_KEY"] = self.openai_api_key
        if self.live_url:
            env["LIVE_URL"] = self.live_url
        # WebRTC model legs (`transport: "webrtc"`): their endpoints and ICE policy (webrtc/peer.py).
        env.update(
            (name, value)
            for name, value in self.environ.items()
            if name.startswith("WEBRTC_") or name in ("REALTIME_WEBRTC_URL", "LIVE_WEBRTC_URL")
        )
        return env


def _flag(text: str | None, name: str, default: bool) -> bool:
    if text is None:
        return default
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0 (on or off), got {text!r}")


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _count(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {text!r}")
    return value


def _secret(text: str | None, name: str) -> bytes | None:
    """None (a random secret) when unset; never echoed in an error."""
    if text is None:
        return None
    if len(text.encode("utf-8")) < 16:
        raise ValueError(f"{name} must be at least 16 characters long")
    return text.encode("utf-8")


def _seconds(text: str | None, name: str, default: float) -> float:
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {text!r}") from None


def _positive(text: str | None, name: str, default: float) -> float:
    value = _seconds(text, name, default)
    if not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {text!r}")
    return value


def _non_negative(text: str | None, name: str, default: float) -> float:
    value = _seconds(text, name, default)
    if not value >= 0:
        raise ValueError(f"{name} must be 0 (off) or a positive number of seconds, got {text!r}")
    return value


def _milliseconds(text: str | None, name: str, default: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name} must be a whole number of milliseconds, got {text!r}") from None
    if value < 0:
        raise ValueError(f"{name} must be 0 (off) or a positive number of milliseconds, got {text!r}")
    return value
