"""SIP digest authentication (RFC 3261 §22, RFC 8760: SHA-256 beside MD5), sans-I/O.

Server side (`DigestAuthenticator`): a challenge offers SHA-256 first and MD5 for old peers, with
`qop="auth"`, under one nonce. A nonce is the bridge's random token, kept with the time it was
issued and the highest `nc` it was used with: a response must use a nonce still fresh, a `nc`
above the last (single use per count: a replayed Authorization fails), and the right password.
An expired or unknown nonce is `STALE` (challenge again with `stale=true`). The table of nonces
is bounded: a flood of challenges evicts the oldest, never grows memory.

Client side (`authorization_for`): the Authorization value answering a challenge, for calls the
bridge places. The clock is an input (`now`), and no secret ever goes into an error or log text.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from telephony_bridge.carriers.sip.message import split_values

__all__ = [
    "ALGORITHMS",
    "AuthOutcome",
    "AuthResult",
    "DigestAuthenticator",
    "authorization_for",
    "parse_digest",
]

ALGORITHMS: Final[dict[str, str]] = {"SHA-256": "sha256", "MD5": "md5"}
NONCE_LIFETIME_S: Final = 60.0
MAX_NONCES: Final = 10_000
MAX_NC: Final = 0xFFFFFFFF


def _hash(algorithm: str, text: str) -> str:
    return hashlib.new(ALGORITHMS[algorithm], text.encode("utf-8")).hexdigest()


def parse_digest(value: str) -> dict[str, str]:
    """`Digest a="x, y", b=z` → {'a': 'x, y', 'b': 'z'} (names lower-cased); {} if not Digest."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    params: dict[str, str] = {}
    for item in split_values(rest):
        name, equals, raw = item.partition("=")
        if not equals:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[name.strip().lower()] = raw
    return params


def digest_response(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str | None,
    cnonce: str | None,
    qop: str | None,
) -> str:
    ha1 = _hash(algorithm, f"{username}:{realm}:{password}")
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop:
        return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")


class AuthOutcome(Enum):
    OK = "ok"
    MISSING = "missing"  # no credentials: challenge
    STALE = "stale"  # an expired, unknown or reused nonce: challenge again
    DENIED = "denied"  # wrong user or password, or malformed: 403 (or challenge once more)


@dataclass(frozen=True, slots=True)
class AuthResult:
    outcome: AuthOutcome
    user: str = ""
    reason: str = ""  # for the log: never the password or the response


class DigestAuthenticator:
    def __init__(
        self,
        realm: str,
        users: Mapping[str, str],
        lifetime_s: float = NONCE_LIFETIME_S,
        max_nonces: int = MAX_NONCES,
        algorithms: tuple[str, ...] = tuple(ALGORITHMS),
    ) -> None:
        unknown = [name for name in algorithms if name not in ALGORITHMS]
        if unknown or not algorithms:
            raise ValueError(f"digest algorithms are SHA-256 and MD5, got {', '.join(algorithms) or 'none'}")
        self.algorithms = algorithms  # offered in this order: a peer that reads only the first gets it
        self.realm = realm
        self._users = dict(users)
        self.lifetime_s = lifetime_s
        self.max_nonces = max_nonces
        self._nonces: OrderedDict[str, tuple[float, int]] = OrderedDict()  # nonce → (issued at, last nc)

    @property
    def configured(self) -> bool:
        return bool(self._users)

    def __len__(self) -> int:
        return len(self._nonces)

    def challenge(self, now: float, stale: bool = False) -> list[str]:
        """WWW-Authenticate (or Proxy-Authenticate) values: SHA-256, then MD5, one fresh nonce."""
        self._expire(now)
        nonce = secrets.token_urlsafe(24)
        self._nonces[nonce] = (now, 0)
        while len(self._nonces) > self.max_nonces:
            self._nonces.popitem(last=False)
        extra = ", stale=true" if stale else ""
        return [
            f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={algorithm}, qop="auth"{extra}'
            for algorithm in self.algorithms
        ]

    def _expire(self, now: float) -> None:
        while self._nonces:
            nonce, (issued, _) = next(iter(self._nonces.items()))
            if now - issued <= self.lifetime_s:
                break
            del self._nonces[nonce]

    def check(self, method: str, authorization: str | None, now: float) -> AuthResult:
        if not authorization:
            return AuthResult(AuthOutcome.MISSING)
        params = parse_digest(authorization)
        username, nonce, response = params.get("username", ""), params.get("nonce", ""), params.get("response", "")
        algorithm = params.get("algorithm", "MD5").upper()
        if not username or not nonce or not response or "uri" not in params:
            return AuthResult(AuthOutcome.DENIED, username, "incomplete Authorization")
        if algorithm not in self.algorithms:
            return AuthResult(AuthOutcome.DENIED, username, f"algorithm {algorithm[:20]!r} not offered")
        if params.get("realm") != self.realm:
            return AuthResult(AuthOutcome.DENIED, username, "another realm")
        self._expire(now)
        entry = self._nonces.get(nonce)
        if entry is None:
            return AuthResult(AuthOutcome.STALE, username, "unknown or expired nonce")
        issued, last_nc = entry
        qop = params.get("qop")
        nc_text = params.get("nc", "")
        if qop:
            if qop != "auth" or len(nc_text) != 8 or not all(c in "0123456789abcdefABCDEF" for c in nc_text):
                return AuthResult(AuthOutcome.DENIED, username, "bad qop or nc")
            nc = int(nc_text, 16)
            if nc <= last_nc:
                return AuthResult(AuthOutcome.STALE, username, "nonce count reused")
        else:
            nc = MAX_NC  # RFC 2069 style, no counter: the nonce is good once
        password = self._users.get(username)
        expected = digest_response(
            algorithm,
            username,
            self.realm,
            password if password is not None else secrets.token_hex(16),  # same work for unknown users
            method,
            params["uri"],
            nonce,
            nc_text if qop else None,
            params.get("cnonce", "") if qop else None,
            qop,
        )
        if password is None or not hmac.compare_digest(expected, response.lower()):
            return AuthResult(AuthOutcome.DENIED, username, "wrong credentials")
        self._nonces[nonce] = (issued, nc)
        return AuthResult(AuthOutcome.OK, username)


def authorization_for(
    challenge: str,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str | None:
    """The Authorization value answering one challenge; None when it is not a digest we can do."""
    params = parse_digest(challenge)
    algorithm = params.get("algorithm", "MD5").upper()
    if "nonce" not in params or algorithm not in ALGORITHMS:
        return None
    realm, nonce = params.get("realm", ""), params["nonce"]
    qop_options = [item.strip() for item in params.get("qop", "").split(",") if item.strip()]
    qop = "auth" if "auth" in qop_options else None
    cnonce = cnonce or secrets.token_hex(8)
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm, username, realm, password, method, uri, nonce, nc_text if qop else None, cnonce, qop
    )
    parts = [
        f'Digest username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc_text}", f'cnonce="{cnonce}"']
    if "opaque" in params:
        parts.append(f'opaque="{params["opaque"]}"')
    return ", ".join(parts)
