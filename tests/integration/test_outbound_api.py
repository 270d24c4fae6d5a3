"""The start API's authentication and validation, a call the carrier refuses (Failed {code,
reason}), and the signature check of the outbound status callback."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import pytest
from twilio.request_validator import RequestValidator

from telephony_bridge.testing.kit import CallFlow
from telephony_bridge.testing.simulator_webhook import _post_form

pytestmark = pytest.mark.timeout(60)

CUSTOM_DATA = '{"phone": "+15550123", "callerId": "+15550999", "name": "Ada", "appointment": "Tuesday"}'


async def test_the_start_api_is_off_without_keys_and_refuses_a_wrong_key(call_flow):
    call_flow.runtime.settings = _with_keys(call_flow.runtime.settings, ())
    status, _ = await asyncio.to_thread(call_flow.start_scenario_request, "outbound_call", CUSTOM_DATA)
    assert status == 404
    call_flow.runtime.settings = _with_keys(call_flow.runtime.settings, (call_flow.api_key,))
    status, _ = await asyncio.to_thread(call_flow.start_scenario_request, "outbound_call", CUSTOM_DATA, "wrong")
    assert status == 401
    assert not call_flow.runtime.scenario_sessions


@pytest.mark.parametrize("name", ["no_such_scenario", "..%2Froutes", "%2Fetc%2Fpasswd"])
async def test_an_unknown_scenario_is_404(call_flow, name):
    status, _ = await asyncio.to_thread(call_flow.start_scenario_request, urllib.parse.unquote(name), "")
    assert status == 404
    assert not call_flow.runtime.scenario_sessions


@pytest.mark.call_flow(twilio=True)
async def test_a_refused_call_fails_with_the_carriers_code_and_reason(call_flow, caplog):
    caplog.set_level(logging.INFO, "telephony_bridge")
    call_flow.twilio.answer = (400, {"code": 21211, "message": "The 'To' number +15550123 is not a valid phone number.",
                                     "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})
    status, body = await asyncio.to_thread(call_flow.start_scenario_request, "outbound_call", CUSTOM_DATA)
    assert status == 201 and "sessionId" in body
    await call_flow.wait_for_sessions()
    failed = [r.getMessage() for r in caplog.records if "===CALL_FAILED===" in r.getMessage()]
    assert failed and "400 Unable to create record: The 'To' number +15550123 is not a valid phone number." in failed[0]
    [create] = call_flow.twilio.requests
    assert create.path.endswith("/Calls.json")


async def test_without_carrier_credentials_callpstn_fails_503(call_flow, caplog):
    caplog.set_level(logging.INFO, "telephony_bridge")
    status, _ = await asyncio.to_thread(call_flow.start_scenario_request, "outbound_call", CUSTOM_DATA)
    assert status == 201
    await call_flow.wait_for_sessions()
    assert any("===CALL_FAILED=== 503" in r.getMessage() for r in caplog.records)


@pytest.mark.call_flow(twilio=True)
async def test_status_callbacks_must_be_signed(call_flow):
    url = f"{call_flow.url}/twilio/call-status?call=whatever"
    form = {"CallSid": "CA" + "0" * 32, "CallStatus": "busy", "AccountSid": "AC" + "0" * 32}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = await asyncio.to_thread(_post_form, url, form, headers, 5)
    assert status == 403  # no signature
    bad = {**headers, "X-Twilio-Signature": RequestValidator("not-the-token").compute_signature(url, form)}
    status, _, _ = await asyncio.to_thread(_post_form, url, form, bad, 5)
    assert status == 403
    good = {**headers, "X-Twilio-Signature": RequestValidator(call_flow._auth_token).compute_signature(url, form)}
    status, _, _ = await asyncio.to_thread(_post_form, url, form, good, 5)
    assert status == 204
    # The outbound answer is checked the same way.
    answer = f"{call_flow.url}/twilio/outbound-answer?call=whatever"
    status, _, _ = await asyncio.to_thread(_post_form, answer, {**form, "To": "+15550123"}, headers, 5)
    assert status == 403
    assert call_flow.runtime.metrics.webhooks_forbidden == 3


def _with_keys(settings, keys):
    from dataclasses import replace

    return replace(settings, api_keys=keys)


async def test_kit_start_scenario_needs_twilio(tmp_path):
    async with CallFlow("scenarios", calls_dir=tmp_path) as flow:
        with pytest.raises(RuntimeError, match="twilio=True"):
            await flow.start_scenario("outbound_call", custom_data=CUSTOM_DATA)
