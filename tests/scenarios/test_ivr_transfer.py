"""scenarios/ivr_transfer.py: keys go to the agent, 0 transfers to a person."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.timeout(60)

IVR = "+15550200"
HUMAN = "+15550123456"
MENU = "Press 0 for a person, or 1 for our opening hours."  # about 3 s


@pytest.mark.call_flow(twilio=True)
async def test_zero_transfers_the_call_to_a_person_through_rest(call_flow):
    call_flow.script([MENU])
    report = await call_flow.call(to=IVR, digits=[(1.0, "0")])
    [transfer] = report.transfers
    assert transfer.to == HUMAN
    dial = ET.fromstring(transfer.twiml).find("Dial")
    assert [number.text for number in dial.findall("Number")] == [HUMAN]
    assert report.rest_requests[0].path.endswith(f"/Calls/{report.call_sid}.json")
    assert report.agent_lines[0].cut  # the agent stopped talking at the key press
    assert any(f"transferred to {HUMAN}" in line.message for line in report.log)
    assert not report.errors


async def test_other_keys_are_told_to_the_model_which_answers(call_flow):
    call_flow.script([MENU, "We are open from nine to five."])
    report = await call_flow.call(to=IVR, digits=[(1.0, "1")])  # pressed while the menu plays
    assert report.messages_to_model == ["The caller pressed 1"]
    menu, answer = report.agent_lines
    assert menu.cut and answer == "We are open from nine to five." and not answer.cut
    assert report.kinds.index("caller.dtmf") < report.kinds.index("barge_in")
    assert not report.errors


async def test_a_transfer_without_twilio_credentials_fails_and_the_agent_says_so(call_flow):
    call_flow.script([MENU])
    report = await call_flow.call(to=IVR, digits=[(1.0, "0")])
    assert report.transfers == [] and report.rest_requests == []
    assert report.agent_lines[-1] == "Sorry, no one can take your call right now. How else can I help?"
    assert report.messages_to_model[0].startswith("The transfer to a person failed: no carrier credentials")
    assert any(line.level == "WARNING" and f"transfer to {HUMAN} failed" in line.message for line in report.log)
    assert not report.errors
