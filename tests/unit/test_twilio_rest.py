"""TwilioRest against a real HTTP server on 127.0.0.1 that records what it receives."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from telephony_bridge.carriers.twilio_rest import TwilioRest, TwilioRestError
from telephony_bridge.carriers.twilio_webhook import dial_twiml
from telephony_bridge.testing.fake_twilio_api import RestRequest, TwilioApiStandIn

ACCOUNT_SID = "AC3f9a2c0e5b7d41e8a6c2f0b9d1e4a7c3"
AUTH_TOKEN = "9b1e5c7d3a2f4e6081b3d5f7a9c2e4d6"
CALL_SID = "CA8e1d4b6f2a9c03e7b5d8f1a2c4e6b9d0"
CALL_PATH = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json"
BASIC = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
STEP_TIMEOUT_S = 5.0


@pytest.fixture
def fake_twilio() -> Iterator[TwilioApiStandIn]:
    # (status, JSON body) to answer with; the default mimics a call resource.
    # A short poll interval keeps shutdown() (and so each test) fast.
    with TwilioApiStandIn(poll_interval=0.02) as stand_in:
        stand_in.answer = (200, {"sid": CALL_SID, "account_sid": ACCOUNT_SID, "status": "completed", "direction": "inbound"})
        yield stand_in


def rest(base_url: str, timeout_s: float = STEP_TIMEOUT_S) -> TwilioRest:
    return TwilioRest(ACCOUNT_SID, AUTH_TOKEN, base_url, timeout_s=timeout_s)


def assert_no_secret(error: BaseException) -> None:
    for text in (str(error), repr(error), error.message if isinstance(error, TwilioRestError) else ""):
        assert AUTH_TOKEN not in text
        assert BASIC not in text
    assert error.__cause__ is None and error.__context__ is None


def assert_common_request(recorded: RestRequest) -> None:
    assert recorded.method == "POST"
    assert recorded.path == CALL_PATH
    assert recorded.headers["Authorization"] == f"Basic {BASIC}"
    assert recorded.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_hangup_posts_status_completed(fake_twilio: TwilioApiStandIn) -> None:
    await asyncio.wait_for(rest(fake_twilio.base_url).hangup(CALL_SID), STEP_TIMEOUT_S)
    (recorded,) = fake_twilio.requests
    assert_common_request(recorded)
    assert parse_qs(recorded.body, strict_parsing=True) == {"Status": ["completed"]}


async def test_update_twiml_posts_twiml(fake_twilio: TwilioApiStandIn) -> None:
    twiml = dial_twiml("+14155550100", caller_id="+18005551212")
    await asyncio.wait_for(rest(fake_twilio.base_url).update_twiml(CALL_SID, twiml), STEP_TIMEOUT_S)
    (recorded,) = fake_twilio.requests
    assert_common_request(recorded)
    assert parse_qs(recorded.body, strict_parsing=True) == {"Twiml": [twiml]}


async def test_base_url_with_trailing_slash(fake_twilio: TwilioApiStandIn) -> None:
    await asyncio.wait_for(rest(fake_twilio.base_url + "/").hangup(CALL_SID), STEP_TIMEOUT_S)
    assert fake_twilio.requests[0].path == CALL_PATH


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        (404, 20404, f"The requested resource {CALL_PATH} was not found"),
        (401, 20003, "Authenticate"),
    ],
)
async def test_error_answer_raises_without_the_token(
    fake_twilio: TwilioApiStandIn, status: int, code: int, message: str
) -> None:
    fake_twilio.answer = (
        status,
        {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status},
    )
    with pytest.raises(TwilioRestError) as info:
        await asyncio.wait_for(rest(fake_twilio.base_url).hangup(CALL_SID), STEP_TIMEOUT_S)
    assert info.value.status == status
    assert info.value.code == code
    assert message in info.value.message
    assert_no_secret(info.value)


async def test_server_echoing_the_credentials_is_scrubbed(fake_twilio: TwilioApiStandIn) -> None:
    fake_twilio.answer = (400, {"code": 21220, "message": f"bad request from {AUTH_TOKEN} / Basic {BASIC}"})
    with pytest.raises(TwilioRestError) as info:
        await asyncio.wait_for(rest(fake_twilio.base_url).update_twiml(CALL_SID, "<Response/>"), STEP_TIMEOUT_S)
    assert info.value.status == 400 and "***" in info.value.message
    assert_no_secret(info.value)


async def test_problem_details_error(fake_twilio: TwilioApiStandIn) -> None:
    fake_twilio.answer = (
        422,
        {"type": "https://www.twilio.com/docs/errors/21220", "title": "Invalid call state", "status": 422,
         "code": 21220, "detail": "Call is not in-progress"},
    )
    with pytest.raises(TwilioRestError) as info:
        await asyncio.wait_for(rest(fake_twilio.base_url).hangup(CALL_SID), STEP_TIMEOUT_S)
    assert (info.value.status, info.value.code) == (422, 21220)
    assert "Call is not in-progress" in info.value.message
    assert_no_secret(info.value)


async def test_connection_refused_raises_without_the_token() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TwilioRestError) as info:
        await asyncio.wait_for(rest(f"http://127.0.0.1:{port}").hangup(CALL_SID), STEP_TIMEOUT_S)
    assert info.value.status == 0
    assert_no_secret(info.value)


async def test_unanswered_request_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        base_url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(TwilioRestError) as info:
            await asyncio.wait_for(rest(base_url, timeout_s=0.3).hangup(CALL_SID), STEP_TIMEOUT_S)
    assert info.value.status == 0
    assert_no_secret(info.value)


@pytest.mark.parametrize("call_sid", ["", "CA../../Accounts", "CA1?Status=x", "CA 1"])
async def test_malformed_call_sid_is_refused_before_any_request(fake_twilio: TwilioApiStandIn, call_sid: str) -> None:
    with pytest.raises(ValueError):
        await rest(fake_twilio.base_url).hangup(call_sid)
    assert fake_twilio.requests == []


def test_repr_and_constructor_keep_the_token_out() -> None:
    client = TwilioRest(ACCOUNT_SID, AUTH_TOKEN)
    assert AUTH_TOKEN not in repr(client) and ACCOUNT_SID in repr(client)
    with pytest.raises(ValueError):
        TwilioRest(ACCOUNT_SID, "")
