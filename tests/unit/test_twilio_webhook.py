"""Twilio webhook side: signatures and TwiML."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from twilio.request_validator import RequestValidator

from telephony_bridge.carriers.twilio_webhook import (
    MAX_PARAMETER_CHARS,
    connect_stream_twiml,
    dial_twiml,
    reject_twiml,
    signature_is_valid,
)
from telephony_bridge.server.carrier_routes import stream_url

# The published test vector (carriers.md, and Twilio's own docs).
TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


# -- signatures --------------------------------------------------------------------------------


def test_known_vector_is_valid() -> None:
    assert signature_is_valid(TOKEN, URL, PARAMS, SIGNATURE)


def test_known_vector_with_default_port_in_url() -> None:
    assert signature_is_valid(TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", PARAMS, SIGNATURE)


@pytest.mark.parametrize(
    "signature", ["RSOYDt4T1cUTdK1PDd93/VVr8B8", "rSOYDt4T1cUTdK1PDd93/VVr8B8=", "x" * 28, "é" * 28]
)
def test_wrong_signature(signature: str) -> None:
    assert not signature_is_valid(TOKEN, URL, PARAMS, signature)


@pytest.mark.parametrize("signature", [None, ""])
def test_missing_signature(signature: str | None) -> None:
    assert signature_is_valid(TOKEN, URL, PARAMS, signature) is False


def test_tampered_param() -> None:
    assert not signature_is_valid(TOKEN, URL, {**PARAMS, "To": "+18005551213"}, SIGNATURE)


def test_added_param() -> None:
    assert not signature_is_valid(TOKEN, URL, {**PARAMS, "CallStatus": "ringing"}, SIGNATURE)


def test_tampered_url_and_wrong_token() -> None:
    assert not signature_is_valid(TOKEN, URL.replace("foo=1", "foo=2"), PARAMS, SIGNATURE)
    assert not signature_is_valid("54321", URL, PARAMS, SIGNATURE)
    assert not signature_is_valid("", URL, PARAMS, SIGNATURE)


def test_websocket_upgrade_signature_over_wss_url() -> None:
    """The media-stream upgrade is signed over the wss:// URL with no parameters."""
    token = "0f3d8a1b2c4e6f8091a2b3c4d5e6f708"
    wss = "wss://bridge.example.com/media-stream"
    signed = RequestValidator(token).compute_signature(wss, {})
    assert signature_is_valid(token, wss, {}, signed)
    # Configured with an explicit default port, or signed by Twilio with one: both still match.
    assert signature_is_valid(token, "wss://bridge.example.com:443/media-stream", {}, signed)
    signed_with_port = RequestValidator(token).compute_signature("wss://bridge.example.com:443/media-stream", {})
    assert signature_is_valid(token, wss, {}, signed_with_port)
    assert not signature_is_valid(token, "wss://bridge.example.com/other", {}, signed)


def test_multi_valued_form_is_honoured() -> None:
    class FormLike(dict):  # Starlette's FormData exposes getlist
        def getlist(self, key: str) -> list[str]:
            return ["a", "b"] if key == "Multi" else [self[key]]

    form = FormLike(Multi="a", To="+18005551212")
    signed = RequestValidator(TOKEN).compute_signature(URL, form)
    assert signed != RequestValidator(TOKEN).compute_signature(URL, {"Multi": "a", "To": "+18005551212"})
    assert signature_is_valid(TOKEN, URL, form, signed)


# -- TwiML -------------------------------------------------------------------------------------


def test_connect_stream_twiml_shape() -> None:
    twiml = connect_stream_twiml(
        "wss://bridge.example.com/media-stream", {"scenario": "support", "note": 'a<b & "c"'}
    )
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    (connect,) = list(root)
    assert connect.tag == "Connect"
    (stream,) = list(connect)
    assert stream.tag == "Stream" and stream.get("url") == "wss://bridge.example.com/media-stream"
    params = [(p.tag, p.get("name"), p.get("value")) for p in stream]
    assert params == [("Parameter", "scenario", "support"), ("Parameter", "note", 'a<b & "c"')]


def test_connect_stream_twiml_without_parameters() -> None:
    stream = ET.fromstring(connect_stream_twiml("wss://h.example/media-stream", {})).find("Connect/Stream")
    assert stream is not None and list(stream) == []


def test_parameter_length_limit() -> None:
    name = "n"
    fits = "v" * (MAX_PARAMETER_CHARS - len(name) - 1)
    connect_stream_twiml("wss://h.example/media-stream", {name: fits})
    with pytest.raises(ValueError, match="under 500"):
        connect_stream_twiml("wss://h.example/media-stream", {name: fits + "v"})
    with pytest.raises(ValueError):
        connect_stream_twiml("wss://h.example/media-stream", {name: "x" * 600})


@pytest.mark.parametrize(
    "url", ["wss://h.example/media-stream?scenario=x", "https://h.example/media-stream", "media-stream"]
)
def test_stream_url_must_be_a_plain_websocket_url(url: str) -> None:
    with pytest.raises(ValueError):
        connect_stream_twiml(url, {})


def test_reject_twiml() -> None:
    root = ET.fromstring(reject_twiml())
    assert root.tag == "Response"
    assert [(e.tag, e.get("reason")) for e in root] == [("Reject", "rejected")]
    assert ET.fromstring(reject_twiml("busy")).find("Reject").get("reason") == "busy"  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        reject_twiml("go away")


def test_dial_twiml() -> None:
    root = ET.fromstring(dial_twiml("+14155550100"))
    dial = root.find("Dial")
    assert dial is not None and dial.get("callerId") is None
    assert [(e.tag, e.text) for e in dial] == [("Number", "+14155550100")]

    dial = ET.fromstring(dial_twiml("+14155550100", caller_id="+18005551212")).find("Dial")
    assert dial is not None and dial.get("callerId") == "+18005551212"

    dial = ET.fromstring(dial_twiml("sip:agent@pbx.example.com")).find("Dial")
    assert dial is not None and [(e.tag, e.text) for e in dial] == [("Sip", "sip:agent@pbx.example.com")]
    with pytest.raises(ValueError):
        dial_twiml("")


# -- stream URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public", "expected"),
    [
        ("https://bridge.example.com", "wss://bridge.example.com/media-stream"),
        ("https://bridge.example.com/", "wss://bridge.example.com/media-stream"),
        ("https://bridge.example.com/voice", "wss://bridge.example.com/voice/media-stream"),
        ("https://bridge.example.com/voice/", "wss://bridge.example.com/voice/media-stream"),
        ("https://bridge.example.com:8443/v", "wss://bridge.example.com:8443/v/media-stream"),
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/media-stream"),
        ("HTTPS://Bridge.Example.com", "wss://Bridge.Example.com/media-stream"),
    ],
)
def test_stream_url(public: str, expected: str) -> None:
    assert stream_url(public) == expected


@pytest.mark.parametrize(
    "public", ["https://bridge.example.com/?x=1", "https://bridge.example.com/#f", "ftp://h/", "bridge.example.com", ""]
)
def test_stream_url_refuses_bad_base(public: str) -> None:
    with pytest.raises(ValueError):
        stream_url(public)
