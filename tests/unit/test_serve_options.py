"""What `telephony-bridge serve` hands uvicorn: the C HTTP parser and uvloop when installed."""

import sys

import uvicorn

from telephony_bridge.cli import uvicorn_options
from telephony_bridge.server.settings import Settings


async def app(scope, receive, send):  # the protocol choice does not depend on the app
    pass


def loaded(options: dict) -> uvicorn.Config:
    config = uvicorn.Config(app, **options)
    config.load()
    return config


def test_webhooks_are_parsed_by_httptools():
    # The `fast` extra (make, the container image) installs httptools: this fails if it is missing.
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    options = uvicorn_options(Settings.from_environ({}))
    assert options["http"] == "httptools"
    assert loaded(options).http_protocol_class is HttpToolsProtocol


def test_without_httptools_serve_falls_back_to_h11(monkeypatch):
    from uvicorn.protocols.http.h11_impl import H11Protocol

    monkeypatch.setitem(sys.modules, "httptools", None)  # import httptools now raises ImportError
    options = uvicorn_options(Settings.from_environ({}))
    assert options["http"] == "h11"
    assert loaded(options).http_protocol_class is H11Protocol
