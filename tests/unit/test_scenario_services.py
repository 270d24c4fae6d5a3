"""VoxEngine.customData, getSecretValue, ApplicationStorage and Net.httpRequestAsync, one by one."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from telephony_bridge.server.kv_store import SqliteKeyValueStore
from telephony_bridge.server.scenario_secrets import SecretsFileError, load_secrets
from telephony_bridge.server.session_http import SessionAccess, _response
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.context import VoxEngine
from telephony_bridge.voxengine.events import AppEvents
from telephony_bridge.voxengine.listeners import EventPayload
from telephony_bridge.voxengine.net import MAX_RESPONSE_BYTES, Net, NetClient
from telephony_bridge.voxengine.services import ScenarioServices, SecretNotFound
from telephony_bridge.voxengine.storage import MAX_TTL_S, ApplicationStorage, StorageKey, StoragePage
from tests.http_stand_in import HttpStandIn

SECRET = "sk-live-0123456789abcdef"


def _vox(services: ScenarioServices | None = None) -> VoxEngine:
    return VoxEngine(TaskOwner("call CAtest"), services=services)


# --- customData -------------------------------------------------------------------------------
def test_custom_data_of_an_inbound_call_is_its_parameters_as_json_or_empty():
    vox = _vox()
    assert vox.customData() == "" and vox.custom_data is None  # the attribute a started session sets
    vox.call_custom_data = {"lang": "de", "crm": "42"}
    assert vox.customData() == '{"lang":"de","crm":"42"}'


def test_custom_data_of_a_started_session_wins_and_the_setter_is_bounded():
    vox = _vox()
    vox.call_custom_data = {"lang": "de"}
    vox.custom_data = '{"destination": "+15550100"}'  # what POST /api/scenarios/{name}/start puts there
    assert vox.customData() == '{"destination": "+15550100"}'
    assert vox.customData("step-2") == "step-2" and vox.customData() == "step-2"
    with pytest.raises(ValueError, match="200 bytes"):
        vox.customData("é" * 101)
    with pytest.raises(TypeError):
        vox.customData({"not": "a string"})


# --- secrets ----------------------------------------------------------------------------------
def test_secrets_come_from_the_file_then_the_environment(tmp_path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text(f"# comment\nexport CRM_TOKEN='{SECRET}'\nSHARED=from-file\n")
    secrets = load_secrets(env_file, {"SHARED": "from-env", "ONLY_ENV": "env-value"})
    vox = _vox(ScenarioServices(secret=secrets.get, secrets_source=secrets.source))
    assert vox.getSecretValue("CRM_TOKEN") == SECRET and vox.get_secret_value("SHARED") == "from-file"
    assert vox.getSecretValue("ONLY_ENV") == "env-value"
    assert SECRET not in repr(secrets)
    toml_file = tmp_path / "secrets.toml"
    toml_file.write_text(f'CRM_TOKEN = "{SECRET}"\n')
    assert load_secrets(toml_file, {}).get("CRM_TOKEN") == SECRET


def test_an_unknown_secret_is_an_error_naming_it(tmp_path):
    env_file = tmp_path / "secrets.env"
    env_file.write_text(f"CRM_TOKEN={SECRET}\n")
    secrets = load_secrets(env_file, {})
    vox = _vox(ScenarioServices(secret=secrets.get, secrets_source=secrets.source))
    with pytest.raises(SecretNotFound, match="'PAYMENTS_KEY' is not configured") as caught:
        vox.getSecretValue("PAYMENTS_KEY")
    assert str(env_file) in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(SecretNotFound):
        _vox().getSecretValue("CRM_TOKEN")  # a start-up check has no secrets


@pytest.mark.parametrize(("name", "text"), [
    ("bad.env", f"{SECRET}\n"),                       # no NAME=
    ("bad.env", f"TOKEN=\"{SECRET}\n"),               # unterminated quote
    ("bad.toml", f'TOKEN = "{SECRET}\nOTHER = 1\n'),  # broken TOML
    ("bad.toml", f'TOKEN = {{ value = "{SECRET}" }}\n'),  # not a string
])
def test_a_broken_secrets_file_fails_without_showing_a_value(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SecretsFileError) as caught:
        load_secrets(path, {})
    assert str(path) in str(caught.value) and SECRET not in str(caught.value)


# --- ApplicationStorage -----------------------------------------------------------------------
async def test_storage_put_get_delete_keys_with_voximplant_shapes(tmp_path):
    store = SqliteKeyValueStore(tmp_path / "data")
    storage = ApplicationStorage(store, clock=lambda: 1_000_000.0)
    item = await storage.put("caller:+15550199", "visits=1", 60)
    assert item == StorageKey("caller:+15550199", "visits=1", 1_000_060) and item.expireAt == 1_000_060
    assert await storage.get("caller:+15550199") == item
    assert (await storage.get("nope")) is None
    await storage.put("caller:+15550100", "visits=3")
    await storage.put("Caller:upper", "x")
    await storage.put("other", "y")
    assert await storage.keys("caller") == StoragePage(["caller:+15550100", "caller:+15550199"])  # case-sensitive
    assert (await storage.keys()).keys == ["Caller:upper", "caller:+15550100", "caller:+15550199", "other"]
    assert (await storage.keys(count=2)).keys == ["Caller:upper", "caller:+15550100"]
    assert await storage.delete("other") == StorageKey("other", "y", 1_000_000 + 2_592_000)
    assert await storage.delete("other") is None and await storage.get("other") is None
    store.close()
    assert (tmp_path / "data" / "application_storage.sqlite3").exists()


async def test_storage_expires_keys_and_checks_voximplant_limits(tmp_path):
    now = [1_000_000.0]
    store = SqliteKeyValueStore(tmp_path)
    storage = ApplicationStorage(store, clock=lambda: now[0])
    await storage.put("otp", "1234", 30)
    now[0] += 31
    assert await storage.get("otp") is None and (await storage.keys()).keys == []
    with pytest.raises(ValueError, match="2000"):
        await storage.put("k", "v" * 2001)
    with pytest.raises(ValueError, match="200"):
        await storage.put("k" * 201, "v")
    with pytest.raises(ValueError, match="ttl"):
        await storage.put("k", "v", MAX_TTL_S + 1)
    with pytest.raises(TypeError, match="strings"):
        await storage.put("k", 5)
    with pytest.raises(RuntimeError, match="not available"):
        await ApplicationStorage(None).get("k")
    store.close()


async def test_two_stores_on_one_file_share_keys_under_concurrent_writes(tmp_path):
    # Two processes (--workers) open the same file; each call's puts run off the loop at once.
    first, second = SqliteKeyValueStore(tmp_path), SqliteKeyValueStore(tmp_path)
    a, b = ApplicationStorage(first), ApplicationStorage(second)
    await asyncio.gather(*(a.put(f"n:{i}", str(i)) for i in range(50)), *(b.put(f"m:{i}", str(i)) for i in range(50)))
    assert len((await a.keys()).keys) == 100 and (await b.get("n:7")).value == "7"
    assert first._connection().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first.close()
    second.close()


# --- Net.httpRequestAsync ---------------------------------------------------------------------
@pytest.fixture
def stand_in():
    with HttpStandIn() as server:
        yield server


async def test_http_request_posts_and_returns_code_text_headers(stand_in):
    client = NetClient()
    net = Net(client, "call CAtest")
    try:
        result = await net.httpRequestAsync(stand_in.url + "/orders", {
            "method": "POST", "headers": {"Content-Type": "application/json", "X-Key": "k1"}, "postData": '{"n": 1}'})
        assert result.code == 201 and result["code"] == 201 and result.error is None
        assert result.text.startswith("{") and '"echo": "{\\"n\\": 1}"' in result.text
        assert {"key": "x-stand-in", "value": "yes"} in result.headers
        [seen] = stand_in.requests
        assert seen["method"] == "POST" and seen["path"] == "/orders" and seen["headers"]["X-Key"] == "k1"
        got = await net.http_request_async(stand_in.url + "/q", {"headers": ["X-Line: v"], "params": {"a": "1"},
                                                                  "rawOutput": True})
        assert got.code == 200 and stand_in.requests[-1]["path"] == "/q?a=1" and got.data.startswith(b"{")
        assert stand_in.requests[-1]["headers"]["X-Line"] == "v"
    finally:
        await client.aclose()


async def test_http_request_failures_are_results_with_voximplant_codes(stand_in, caplog):
    client = NetClient()
    net = Net(client, "call CAtest")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    try:
        big = await net.httpRequestAsync(stand_in.url + "/big")
        assert big.code == 0 and str(MAX_RESPONSE_BYTES) in big.error
        assert (await net.httpRequestAsync("ftp://example.com/file")).code == -2
        assert (await net.httpRequestAsync("not a url")).code == -2
        with caplog.at_level(logging.WARNING):
            refused = await net.httpRequestAsync(f"http://127.0.0.1:{port}/x?api_key={SECRET}")
        assert refused.code == -1 and SECRET not in refused.error
        assert SECRET not in caplog.text and f"127.0.0.1:{port}/x" in caplog.text  # the query stays out of the log
        slow = await net.httpRequestAsync(stand_in.url + "/slow", {"timeout": 0.2})
        assert slow.code == -4
    finally:
        await client.aclose()


async def test_net_is_unavailable_at_a_scenarios_top_level():
    with pytest.raises(RuntimeError, match="event handler"):
        await Net(None).httpRequestAsync("http://127.0.0.1/")


# --- the access URL's side --------------------------------------------------------------------
def test_access_tokens_are_unguessable_single_session_and_die_when_revoked():
    access = SessionAccess()

    async def deliver(payload):
        return True, None

    token = access.issue(deliver)
    assert len(token) == 43 and access.find(token) is deliver
    assert access.find(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert access.find("../../etc") is None and access.find("") is None
    access.revoke(token)
    assert access.find(token) is None and len(access) == 0


def test_replies_become_responses():
    assert _response(None).status_code == 200 and _response(None).body == b""
    assert _response("OK").body == b"OK" and _response("OK").media_type == "text/plain"
    assert _response({"a": 1}).body == b'{"a":1}' and _response({"a": 1}).media_type == "application/json"
    assert _response(b"\x00").body == b"\x00"


async def test_http_request_handlers_answer_with_their_first_reply():
    tasks = TaskOwner("call CAtest")
    vox = VoxEngine(tasks)
    seen = []

    def first(e):
        seen.append((e.method, e.path, e.content))

    async def second(e):
        await asyncio.sleep(0)
        return {"received": e.content}

    vox.addEventListener(AppEvents.HttpRequest, first)
    vox.addEventListener(AppEvents.HttpRequest, second)
    vox.addEventListener(AppEvents.HttpRequest, lambda e: "ignored: a reply came first")
    payload = EventPayload(name="HttpRequest", method="POST", path="/", content="hi", headers=[])
    assert await vox.answer_http_request(payload, 1.0) == (True, {"received": "hi"})
    assert seen == [("POST", "/", "hi")]

    async def stuck(e):
        await asyncio.sleep(10)

    vox.removeEventListener(AppEvents.HttpRequest)
    vox.addEventListener(AppEvents.HttpRequest, stuck)
    assert await vox.answer_http_request(payload, 0.05) == (False, None)
    await tasks.aclose()
