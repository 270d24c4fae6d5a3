"""What real scenarios reach for beyond the call, through a real call: VoxEngine.customData, a secret,
ApplicationStorage across two calls, Net.httpRequestAsync to a local stand-in, and an outside
system's request to the call's accessSecureURL raising AppEvents.HttpRequest."""

from __future__ import annotations

import asyncio
import logging
import textwrap

import httpx
import pytest

from tests.http_stand_in import HttpStandIn

pytestmark = pytest.mark.timeout(60)

CRM_TOKEN = "crm-secret-7f3a9c51e2d84b06"

SCENARIO = """
import json

session = {}

def on_started(e):
    session["access_url"] = e.accessSecureURL

async def on_call_alerting(e):
    e.call.answer()
    token = VoxEngine.getSecretValue("CRM_TOKEN")
    key = "visits:" + e.callerid
    before = await ApplicationStorage.get(key)
    visits = int(before.value) + 1 if before else 1
    stored = await ApplicationStorage.put(key, str(visits), 3600)
    result = await Net.httpRequestAsync(VoxEngine.getSecretValue("CRM_URL") + "/calls", {
        "method": "POST",
        "headers": {"Authorization": "Bearer " + token, "Content-Type": "application/json"},
        "postData": json.dumps({"caller": e.callerid, "visits": visits, "accessURL": session["access_url"],
                                "customData": VoxEngine.customData()}),
    })
    Logger.info("visit %d stored until %d; CRM answered %d: %s", visits, stored.expireAt, result.code,
                json.loads(result.text)["ok"])
    try:
        VoxEngine.getSecretValue("NOT_CONFIGURED")
    except LookupError as error:
        Logger.warning("%s", error)

def on_http_request(e):
    Logger.info("outside system: %s %s %s", e.method, e.path, e.content)
    return "OK"

VoxEngine.addEventListener(AppEvents.Started, on_started)
VoxEngine.addEventListener(AppEvents.CallAlerting, on_call_alerting)
VoxEngine.addEventListener(AppEvents.HttpRequest, on_http_request)
"""


@pytest.fixture
def crm():
    with HttpStandIn() as server:
        yield server


@pytest.fixture
def call_flow_scenarios(tmp_path):
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / "default.py").write_text(textwrap.dedent(SCENARIO))
    return directory


@pytest.fixture
async def call_flow(call_flow_scenarios, crm, tmp_path):
    from telephony_bridge.testing.kit import CallFlow

    async with CallFlow(call_flow_scenarios, calls_dir=tmp_path / "calls", data_dir=tmp_path / "data",
                        secret_values={"CRM_TOKEN": CRM_TOKEN, "CRM_URL": crm.url}) as flow:
        yield flow


async def _post_to_the_call_while_it_runs(crm: HttpStandIn, posted: list) -> None:
    """What the outside system does: learn the call's access URL (from the CRM request), POST to it."""
    seen = len(crm.requests)
    while len(crm.requests) == seen:
        await asyncio.sleep(0.05)
    access_url = httpx.Response(200, content=crm.requests[-1]["body"]).json()["accessURL"]
    async with httpx.AsyncClient() as client:
        answer = await client.post(access_url + "/notes", content="caller is a VIP")
    posted.append((access_url, answer))


async def test_a_scenario_uses_custom_data_secrets_storage_net_and_its_access_url(call_flow, crm, caplog):
    caplog.set_level(logging.DEBUG)
    reports, posted = [], []
    for _ in range(2):  # the same caller twice: the second call finds the first one's visit
        outside = asyncio.create_task(_post_to_the_call_while_it_runs(crm, posted))
        reports.append(await call_flow.call(duration=2.5))
        await outside
    first, second = reports

    # ApplicationStorage outlived the first call; Net reached the stand-in with the secret.
    assert [r["body"] for r in crm.requests] and all(r["path"] == "/calls" for r in crm.requests)
    bodies = [httpx.Response(200, content=r["body"]).json() for r in crm.requests]
    assert [b["visits"] for b in bodies] == [1, 2] and bodies[0]["customData"] == ""  # inbound, no parameters
    assert crm.requests[0]["headers"]["Authorization"] == f"Bearer {CRM_TOKEN}"
    assert any(line.message.startswith("visit 1 stored until") and line.message.endswith("CRM answered 201: True")
               for line in first.log)
    assert any(line.message.startswith("visit 2 stored") for line in second.log)

    # The outside system's POST reached the running call's HttpRequest handler, and its reply came back.
    for report, (access_url, answer) in zip(reports, posted, strict=True):
        assert answer.status_code == 200 and answer.text == "OK"
        assert any(line.message == "outside system: POST /notes caller is a VIP" for line in report.log)
        assert "app.http_request" in report.kinds
        assert access_url.startswith(call_flow.url + "/api/sessions/") and access_url.endswith("/http")
    assert posted[0][0] != posted[1][0]  # one token per call
    # Once the call is over its access URL is gone.
    async with httpx.AsyncClient() as client:
        late = await client.post(posted[0][0], content="too late")
    assert late.status_code == 404 and len(call_flow.runtime.session_access) == 0

    # An unknown secret is an error naming it; no secret value reached any log.
    assert any("'NOT_CONFIGURED' is not configured" in line.message for line in first.log)
    assert CRM_TOKEN not in caplog.text
    assert not any(CRM_TOKEN in line.message for report in reports for line in report.log)
    assert not first.errors and not second.errors
