"""Nothing of a finished call stays: after many short calls the process holds no call objects, no
tasks, no sockets, and its memory is flat; a model client the scenario left open is closed by the
session, whichever way the call ended (pitfall 13).

The figures (duration, RSS, fds, tasks) are printed with -s; the asserts use generous bounds, not
timings.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from pathlib import Path

import pytest

from telephony_bridge.server.settings import Settings
from telephony_bridge.testing.servers import running_bridge
from tests.integration.hostile_peers import (
    LEAK_TYPES,
    ModelServer,
    live_objects,
    open_fds,
    open_peer,
    rss_bytes,
    start_call,
    ws_url,
)
from tests.integration.scripted_model import eventually

pytestmark = pytest.mark.timeout(120)
SCENARIOS = Path(__file__).parent / "hostile_scenarios"
PROBE_EVENTS = ["alerting", "connected", "tone", "disconnected", "terminated"]


async def _short_call(url: str) -> str:
    """start, 3 media frames, a DTMF, stop; the probe scenario answers synchronously. No
    permessage-deflate, as with Twilio (else the peers' own zlib contexts, in this same process and
    freed only by the cyclic GC, dominate the RSS being measured)."""
    peer = await open_peer(url)
    await peer.start({"scenario": "default"})
    for _ in range(3):
        await peer.media()
    await peer.dtmf("1")
    await peer.stop()
    code, _ = await peer.wait_closed()
    assert code == 1000
    return peer.call_sid


async def _calls(url: str, probe, count: int, at_once: int = 50) -> None:
    for _ in range(count // at_once):
        call_ids = await asyncio.gather(*(_short_call(url) for _ in range(at_once)))
        for call_id in call_ids:  # every call completed, then the probe forgets them (its memory is not the bridge's)
            assert probe.kinds(call_id) == PROBE_EVENTS and probe.media_bytes[call_id] == 3 * 160
        probe.reset()


def _snapshot(runtime) -> dict:
    return {"objects": live_objects(), "tasks": len(asyncio.all_tasks()), "fds": open_fds(), "rss": rss_bytes(),
            "sessions": len(runtime.sessions)}


async def test_a_thousand_short_calls_leave_no_objects_tasks_sockets_or_memory(probe_settings, probe, caplog):
    # The RSS measured is the bridge's, not pytest's: pytest keeps every log record of a test until
    # it ends, so with INFO on (which an earlier test may have left on) the 1000 calls' ~5 lines each
    # would "grow" the process by tens of MB. Only warnings, whatever the process's logging state.
    caplog.set_level(logging.WARNING)
    async with running_bridge(probe_settings) as runtime:
        url = ws_url(runtime)
        before = _snapshot(runtime)
        started = time.monotonic()
        await _calls(url, probe, 200)
        await eventually(lambda: not runtime.sessions)
        warm = _snapshot(runtime)
        await _calls(url, probe, 800)
        await eventually(lambda: not runtime.sessions)
        after = _snapshot(runtime)
        elapsed = time.monotonic() - started
        print(f"\n1000 calls (50 at a time) in {elapsed:.1f} s; RSS {before['rss'] / 1e6:.1f} MB before, "
              f"{warm['rss'] / 1e6:.1f} MB after 200, {after['rss'] / 1e6:.1f} MB after 1000 "
              f"(growth {(after['rss'] - warm['rss']) / 1e6:+.2f} MB); fds {before['fds']} / {warm['fds']} / {after['fds']}; "
              f"tasks {before['tasks']} / {warm['tasks']} / {after['tasks']}; objects left {dict(after['objects'])}")
        assert runtime.metrics.calls_started == runtime.metrics.calls_ended == 1000
        assert after["sessions"] == 0
        assert not any(after["objects"][name] for name in LEAK_TYPES), after["objects"]
        assert after["tasks"] == before["tasks"]
        assert after["fds"] <= before["fds"] + 2
        assert after["rss"] - warm["rss"] < 10e6


async def test_model_clients_the_scenario_never_closed_are_closed_however_the_call_ends(probe):
    """Each call's scenario opens a RealtimeAPIClient and never closes it; the model streams an answer
    on every connection. Calls end three ways: hang up at once (the client may still be connecting),
    hang up normally, and drop the TCP connection mid-answer without a stop."""
    async with ModelServer(answer_s=30) as model:
        settings = Settings(scenarios_dir=SCENARIOS, realtime_url=model.url)
        async with running_bridge(settings) as runtime:
            url = ws_url(runtime)
            before = _snapshot(runtime)

            async def call(how: str) -> None:
                peer = await open_peer(url)
                await peer.start({"scenario": "default", "model": "1"})
                if how == "at once":
                    await peer.stop()
                    assert (await peer.wait_closed())[0] == 1000
                    return
                await probe.wait_for(lambda: "client" in probe.kinds(peer.call_sid))
                await model.wait_for(lambda: len(model.connections) > 0)
                for _ in range(3):
                    await peer.media()
                if how == "normally":
                    await peer.dtmf("2")
                    await peer.stop()
                    assert (await peer.wait_closed())[0] == 1000
                else:  # the caller's side vanishes while the answer is playing
                    client = next(d for k, d in probe.events[peer.call_sid] if k == "client")
                    await eventually(lambda: client.stats.model_audio_deltas > 20)
                    peer.ws.transport.abort()
                await probe.wait_for(lambda: "terminated" in probe.kinds(peer.call_sid))

            for _ in range(4):
                await asyncio.gather(*(call(how) for how in ("at once", "normally", "dropped") for _ in range(5)))
            await eventually(lambda: not runtime.sessions)
            probe.reset()
            # Promptly: a client left open by a dead reader is only closed ~10 s later by its own
            # keepalive failing (if its socket backed up), or never.
            await eventually(lambda: model.open_connections() == 0, timeout=3)
            after = _snapshot(runtime)
            print(f"\n60 calls with a model: {len(model.connections)} model connections opened, {model.open_connections()} open after; "
                  f"objects left {dict(after['objects'])}; tasks {before['tasks']} / {after['tasks']}; fds {before['fds']} / {after['fds']}")
            assert after["objects"]["RealtimeAPIClient"] == 0
            assert not any(after["objects"][name] for name in LEAK_TYPES)
            assert after["tasks"] == before["tasks"]


async def test_a_finished_call_is_freed_by_reference_counting_without_waiting_for_the_gc(probe):
    """With ~50 k long-lived objects, CPython runs a full collection only every few hundred calls;
    a finished call caught in a reference cycle waits that long, and a soak's RSS grew by 40 MB
    holding about a hundred of them. So no cycle may keep a call: with the cyclic GC off, its
    session, its model client and the client's connection must go as soon as the call has ended."""
    async with ModelServer(answer_s=0.5) as model:
        settings = Settings(scenarios_dir=SCENARIOS, realtime_url=model.url, idle_release_s=0)
        async with running_bridge(settings) as runtime:
            gc.collect()
            gc.disable()
            gone: dict[str, weakref.ref] = {}
            try:
                peer = await open_peer(ws_url(runtime))
                await start_call(peer, probe, model="1")
                await probe.wait_for(lambda: "client" in probe.kinds(peer.call_sid))
                client = next(d for k, d in probe.events[peer.call_sid] if k == "client")
                stats = client.stats  # not the client: the lambda must not keep it alive
                await eventually(lambda: stats.model_audio_deltas > 2)  # the answer is playing
                for _ in range(5):
                    await peer.media()
                (session,) = runtime.sessions
                gone = {"session": weakref.ref(session), "client": weakref.ref(client),
                        "model connection": weakref.ref(client._ws), "call": weakref.ref(session.call)}
                del session, client
                probe.reset()  # it holds the client
                await peer.stop()
                assert (await peer.wait_closed())[0] == 1000
                await eventually(lambda: not runtime.sessions)
                await eventually(lambda: all(ref() is None for ref in gone.values()), timeout=3)
            except TimeoutError:
                pytest.fail(f"kept alive by a reference cycle: {[name for name, ref in gone.items() if ref() is not None]}")
            finally:
                gc.enable()


async def test_a_model_that_sends_malformed_events_is_still_disconnected_when_the_call_ends(probe):
    async with ModelServer() as model:
        settings = Settings(scenarios_dir=SCENARIOS, realtime_url=model.url)
        async with running_bridge(settings) as runtime:
            peer = await open_peer(ws_url(runtime))
            await start_call(peer, probe, model="1")
            await probe.wait_for(lambda: "client" in probe.kinds(peer.call_sid))
            await model.wait_for(lambda: bool(model.received and model.received[0]))
            await model.connections[0].send("null")  # valid JSON, not an event
            await peer.stop()
            assert (await peer.wait_closed())[0] == 1000
            await eventually(lambda: not runtime.sessions)
            await eventually(lambda: model.open_connections() == 0, timeout=2)
