"""The bridge's API keys: off without any, refused without the right bearer, never by prefix."""

from __future__ import annotations

from starlette.requests import Request

from telephony_bridge.server.api_auth import api_key_refusal, has_api_key
from telephony_bridge.server.settings import Settings


def request(authorization: str | None) -> Request:
    headers = [(b"authorization", authorization.encode())] if authorization is not None else []
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


def test_without_keys_the_endpoint_is_off():
    refusal = api_key_refusal(request("Bearer anything"), Settings())
    assert refusal is not None and refusal.status_code == 404


def test_the_environment_lists_keys_comma_separated():
    settings = Settings.from_environ({"API_KEYS": " k-one , k-two ,"})
    assert settings.api_keys == ("k-one", "k-two") and "k-one" not in repr(settings)


def test_only_a_configured_key_as_a_bearer_passes():
    settings = Settings(api_keys=("k-one", "k-two"))
    assert has_api_key(request("Bearer k-two"), settings) and has_api_key(request("bearer k-one"), settings)
    for bad in (None, "", "Bearer", "Bearer k-on", "Bearer k-one-more", "Basic k-one", "k-one"):
        assert not has_api_key(request(bad), settings), bad
        assert api_key_refusal(request(bad), settings).status_code == 401
    assert api_key_refusal(request("Bearer k-one"), settings) is None
