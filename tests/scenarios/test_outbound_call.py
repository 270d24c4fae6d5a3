"""scenarios/outbound_call.py: Voximplant's outbound example with custom data, started as the start
API would start it, its call answered by the phone simulator's callee."""

from __future__ import annotations

import json

import pytest

from telephony_bridge.testing.kit import Turn

pytestmark = [pytest.mark.timeout(90), pytest.mark.call_flow(twilio=True)]

CUSTOM_DATA = json.dumps({"phone": "+15550123", "callerId": "+15550999", "name": "Ada",
                          "appointment": "Tuesday at 10"})


async def test_calls_the_number_in_the_custom_data_and_talks(call_flow):
    call_flow.script(["Hello Ada, this is Harbour Dental reminding you of Tuesday at 10.",
                      Turn(hears="Yes, I will be there.", say="Thank you, see you then.")])
    report = await call_flow.start_scenario("outbound_call", custom_data=CUSTOM_DATA,
                                            callee_says=[(4.5, "Yes, I will be there.")])
    assert report.scenario == "outbound_call"
    assert (report.to, report.from_) == ("+15550123", "+15550999")
    [create] = [r for r in report.rest_requests if r.path.endswith("/Calls.json")]
    assert create.form["To"] == "+15550123" and create.form["From"] == "+15550999"
    assert create.form["MachineDetection"] == "Enable"  # {amd: true}
    assert report.transcript[0] == "Hello Ada, this is Harbour Dental reminding you of Tuesday at 10."
    assert "Yes, I will be there." in report.transcript
    assert report.end_reason == "caller hung up" and not report.errors
    # The custom data reached the model through the scenario's instructions.
    [session] = [e["session"] for e in report.model_inputs
                 if e["type"] == "session.update" and "instructions" in e["session"]]
    assert "calling Ada" in session["instructions"] and "Tuesday at 10" in session["instructions"]
    assert await call_flow.model_connections_closed()


async def test_an_answering_machine_is_hung_up_on(call_flow):
    call_flow.script(["Hello Ada."])
    report = await call_flow.start_scenario("outbound_call", custom_data=CUSTOM_DATA, answered_by="machine_start")
    assert report.hung_up and report.model_connections == 0
    assert report.caller.heard_ulaw.strip(b"\xff") == b""


async def test_a_busy_callee_fails_the_call(call_flow, caplog):
    report = await call_flow.start_scenario("outbound_call", custom_data=CUSTOM_DATA, outcome="busy")
    assert report.rejected and not report.caller.connected
    await call_flow.wait_for_sessions()
    assert any("===CALL_FAILED=== 486 busy" in r.getMessage() for r in caplog.records)
