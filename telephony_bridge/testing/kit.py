"""The call-flow test kit: test a scenario without a phone, an API key or a network.

`CallFlow` runs, in the test's own event loop, the real bridge server (webhook, media WebSocket,
your scenarios directory), the local engine as the model (scripted turn by turn) and, if asked, a
stand-in for Twilio's REST API, all on free 127.0.0.1 ports. `call()` places one simulated phone
call (caller speech synthesised offline, DTMF keys at given times) and returns a `CallReport`:
what the caller heard, tool calls and their results, barge-ins, hang-up, transfers, what the
scenario logged, and the whole timeline of the call.

Tests normally get a `CallFlow` from the `call_flow` pytest fixture (telephony_bridge.testing.plugin):

    async def test_tells_the_time(call_flow):
        call_flow.script(["Hello, Acme here.",
                          Turn(call=ToolCall("get_current_time"), then="It's {output.time}.")])
        report = await call_flow.call(to="+15550100", caller_says=[(2.0, "What time is it?")])
        assert report.tool_calls[0].name == "get_current_time"

Everything a report holds comes from public artefacts of the call: the server's call journal
(server/journal.py), the phone simulator's result, the requests the REST stand-in received, the
bridge's log records for that call, and the client events the local engine received.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from telephony_bridge.local_engine import Script, ToolCall, Turn, synthesize_async
from telephony_bridge.testing.call_records import MODEL_CLOSE_WAIT_S, CallFlowError, CallRecords
from telephony_bridge.testing.caller_audio import CALLER_VOICE, SAMPLE_RATE, caller_audio_pcm16
from telephony_bridge.testing.fake_twilio_api import RestRequest, TwilioApiStandIn
from telephony_bridge.testing.recorder import ObservedEngine
from telephony_bridge.testing.report import (
    CallReport,
    Event,
    Line,
    LogLine,
    ModelConnection,
    ToolCallRecord,
    Transfer,
)
from telephony_bridge.testing.simulator import CallResult, TimelineEvent, make_profile, place_call
from telephony_bridge.testing.simulator_callee import answer_outbound_call

__all__ = [
    "CALLER_VOICE",
    "CallFlow",
    "CallFlowError",
    "CallReport",
    "Event",
    "Line",
    "LogLine",
    "ModelConnection",
    "RestRequest",
    "Script",
    "ToolCall",
    "ToolCallRecord",
    "Transfer",
    "Turn",
    "TwilioApiStandIn",
]

DEFAULT_TO = "+15550100"  # the phone simulator's default number
DEFAULT_FROM = "+15550199"
DEFAULT_PATIENCE_S = 1.5  # a simulated caller hangs up after this long with nothing said either way
DEFAULT_CALL_TIMEOUT_S = 30.0  # after the caller's last line
PLACE_CALL_WAIT_S = 10.0  # how long start_scenario waits for the scenario to place its call


# ------------------------------------------------------------------------------------- CallFlow


class CallFlow:
    """A bridge, a scripted model and (optionally) Twilio's REST API, for call-flow tests.

    `async with CallFlow(scenarios="scenarios", calls_dir=tmp) as flow:` or the `call_flow` fixture.

    - `scenarios`: the scenarios directory (with routes.toml, or default.py).
    - `calls_dir`: where the bridge writes each call's JSON journal.
    - `twilio`: give the bridge Twilio credentials and point its REST client at a local stand-in,
      so hang-ups and transfers go through REST and can be asserted (`report.transfers`). Without
      (the default, like a bridge with no TWILIO_* set) `transferTo` fires TransferFailed.
    - `realtime_factor`: how much faster than real time the engine sends audio (default 4).
    - `call_timeout`: the longest a call may take after the caller's last line, in seconds.
    - `data_dir`: the bridge's DATA_DIR (ApplicationStorage's file); `secret_values`: the secrets
      `VoxEngine.getSecretValue` finds, as if in the bridge's environment.
    - `recordings_dir`: where `call.record()` writes (the `call_flow` fixture: a temporary directory).
    - `api_keys`: the bridge's API_KEYS (to fetch recordings from `flow.url + "/recordings/…"`); by
      default one random key, `api_key` (start_scenario, the dial CLI); `()` for none.
    - `call_store`: keep every call in the call store (SQLite under `data_dir`, or `database_url`),
      which the web console at `flow.url + "/console"` reads.
    """

    def __init__(
        self,
        scenarios: str | Path = "scenarios",
        *,
        calls_dir: str | Path | None = None,
        twilio: bool = False,
        realtime_factor: float = 4.0,
        call_timeout: float = DEFAULT_CALL_TIMEOUT_S,
        data_dir: str | Path | None = None,
        secret_values: Mapping[str, str] | None = None,
        recordings_dir: str | Path | None = None,
        api_keys: Sequence[str] | None = None,
        call_store: bool = False,
        database_url: str | None = None,
        webrtc: bool = False,
    ) -> None:
        self.scenarios = Path(scenarios)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self._secrets = dict(secret_values or {})
        self.recordings_dir = Path(recordings_dir) if recordings_dir is not None else None
        # The bridge's API_KEYS: by default one key of the flow's own (`api_key`: start_scenario, the
        # dial CLI); `api_keys=()` runs the bridge without any (its API endpoints are then off).
        self.api_key = api_keys[0] if api_keys else secrets.token_hex(16)
        self.api_keys = (self.api_key,) if api_keys is None else tuple(api_keys)
        self.call_store = call_store
        self.database_url = database_url
        self.calls_dir = Path(calls_dir) if calls_dir is not None else None
        self.call_timeout = call_timeout
        self.reports: list[CallReport] = []
        # `webrtc`: the engine also takes WebRTC offers, and the bridge is told where (scenarios
        # on `transport: "webrtc"`), gathering ICE candidates on loopback only.
        self.engine = ObservedEngine(realtime_factor=realtime_factor, webrtc=webrtc)
        self.webrtc = webrtc
        self.twilio: TwilioApiStandIn | None = TwilioApiStandIn() if twilio else None
        self.runtime: Any = None
        self._account_sid = "AC" + secrets.token_hex(16)
        self._auth_token = secrets.token_hex(16)
        self._stack = contextlib.AsyncExitStack()
        self.records = CallRecords(self.engine, self.twilio)
        self._audiosocket_urls: dict[str, str] = {}  # dialed number → tcp:// of its AudioSocket listener
        self._rendered: list[Script] = []
        self._placed: asyncio.Queue[tuple[str, dict[str, str]]] | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    async def __aenter__(self) -> CallFlow:
        from telephony_bridge.server.runtime import load_runtime
        from telephony_bridge.server.settings import Settings
        from telephony_bridge.testing.servers import running_bridge

        stack = self._stack
        try:
            await self.engine.start()
            stack.push_async_callback(self.engine.stop)
            if self.twilio is not None:
                self._placed = asyncio.Queue()
                loop = asyncio.get_running_loop()
                placed = self._placed
                self.twilio.on_create = lambda sid, form: loop.call_soon_threadsafe(
                    placed.put_nowait, (sid, dict(form))
                )
                self.twilio.start()
                stack.push_async_callback(asyncio.to_thread, self.twilio.stop)  # shutdown() blocks up to 0.5 s
            self.records.capture_logs(stack)
            environ = dict(self._secrets)
            if self.webrtc:
                environ |= {
                    "REALTIME_WEBRTC_URL": self.engine.webrtc_url,
                    "LIVE_WEBRTC_URL": self.engine.webrtc_live_url,
                    "WEBRTC_HOST_ADDRESSES": "127.0.0.1",
                }
            settings = Settings(
                host="127.0.0.1",
                scenarios_dir=self.scenarios,
                calls_dir=self.calls_dir,
                realtime_url=self.engine.url,
                live_url=self.engine.live_url,  # GPT-Live scenarios (OpenAI.createLiveAPIClient)
                twilio_account_sid=self._account_sid if self.twilio else None,
                twilio_auth_token=self._auth_token if self.twilio else None,
                twilio_api_base_url=self.twilio.url if self.twilio else None,
                environ=environ,
                api_keys=self.api_keys,
            )
            if self.data_dir is not None:
                settings = replace(settings, data_dir=self.data_dir)
            if self.recordings_dir is not None:
                settings = replace(settings, recordings_dir=self.recordings_dir)
            if self.call_store:
                settings = replace(settings, call_store=True, database_url=self.database_url)
            runtime = load_runtime(settings)
            runtime.on_session_start.append(self.records.session_added)
            runtime.on_session_end.append(self.records.session_ended)
            self.runtime = self.records.runtime = await stack.enter_async_context(running_bridge(settings, runtime))
        except BaseException:
            await stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    @property
    def url(self) -> str:
        """The bridge's base URL (the webhook is URL/incoming-call)."""
        return self.runtime.settings.base_url

    # -- the model --------------------------------------------------------------------------------
    def script(
        self,
        turns: Script | Iterable[Turn | str | Mapping[str, Any]],
        *,
        fallback: str | None = None,
        voice: str | None = None,
    ) -> Script:
        """What the model says from now on, turn by turn (calls placed after this use it).

        Each turn is a line to say, a `Turn(say=, hears=, call=ToolCall(name, args), then=)` or a dict
        with those keys; see docs/local-engine.md. Returns the Script."""
        if not isinstance(turns, Script):
            options = {k: v for k, v in (("fallback", fallback), ("voice", voice)) if v is not None}
            turns = Script.from_turns(turns, **options)
        self.engine.set_script(turns)
        return turns

    async def _render_script(self) -> None:
        """Synthesise the script's fixed lines before the call (the engine's speech cache keeps them),
        so the agent starts talking as soon as it is asked to, not after a first-time espeak run."""
        script = self.engine.script
        if any(done is script for done in self._rendered):  # identity: a Script with tool arguments is unhashable
            return
        lines = {turn.say for turn in script.turns if turn.say} | {script.fallback}
        await asyncio.gather(*(synthesize_async(line, 24000, script.voice) for line in lines))
        self._rendered.append(script)

    async def model_connections_closed(self, timeout: float = MODEL_CLOSE_WAIT_S) -> bool:
        """Wait until the model has no open connection left; False if one is still open after `timeout`."""
        return await self.engine.wait_until(lambda: all(c.closed for c in self.engine.model_connections), timeout)

    # -- routing ----------------------------------------------------------------------------------
    def scenario_for(self, number: str) -> str | None:
        """The scenario the bridge would run for a call to `number` (None: the call is rejected)."""
        return self.runtime.scenario_for(number)

    # -- calls ------------------------------------------------------------------------------------
    async def call(
        self,
        to: str = DEFAULT_TO,
        *,
        from_: str = DEFAULT_FROM,
        caller_says: Sequence[tuple[float, str]] = (),
        audio: bytes | str | Path | None = None,
        digits: Sequence[tuple[float, str]] = (),
        hang_up_after_silence: float = DEFAULT_PATIENCE_S,
        duration: float | None = None,
        timeout: float | None = None,
        carrier: str = "twilio",
    ) -> CallReport:
        """Place one simulated call and return its report once the bridge has finished with it.

        - `caller_says`: (seconds after the call connects, text) lines, spoken by an offline voice.
        - `audio`: instead, what the caller says as PCM16 8 kHz bytes or a WAV file.
        - `digits`: (seconds, key) DTMF presses, keys 0-9 * #.
        - The caller hangs up once its own lines are over and nothing has been said either way
          for `hang_up_after_silence` seconds, or at `duration` seconds if given, unless the
          bridge ends the call first.
        - `timeout` (default: the CallFlow's `call_timeout`): the caller hangs up at the latest
          this many seconds after its last line, however busy the agent is. If the bridge then
          still does not let go of the call, CallFlowError is raised with the timeline so far.
        - `carrier`: which carrier's phone calls (a name in testing/profiles PROFILES): its answer
          endpoint, document and media stream. The report reads the same for every carrier (heard
          audio normalised to μ-law 8 kHz). Only Twilio's requests are signed (with `twilio=True`);
          the others reach the bridge unsigned, from loopback.
        """
        if self.runtime is None:
            raise RuntimeError("CallFlow is not started: use `async with CallFlow(...)` or the call_flow fixture")
        pcm16, _ = await asyncio.gather(caller_audio_pcm16(caller_says, audio, digits), self._render_script())
        audio_s = len(pcm16) / 2 / SAMPLE_RATE
        limit = audio_s + (timeout if timeout is not None else self.call_timeout)
        twilio = carrier == "twilio"
        # AudioSocket has no answer request: its dialed number is its listener's, one per number.
        url = await self._audiosocket_url(to) if carrier == "audiosocket" else self.url
        profile = make_profile(
            carrier,
            url,
            secret=self._auth_token if self.twilio and twilio else None,
            account_id=self._account_sid if twilio else None,
        )
        new_call_id = getattr(profile, "new_call_id", None)
        call_sid = str(new_call_id()) if new_call_id is not None else "CA" + secrets.token_hex(16)
        return await self._follow(
            call_sid,
            to,
            from_,
            limit,
            lambda on_event: place_call(
                url,
                to=to,
                from_=from_,
                caller_audio=pcm16,
                digits=list(digits),
                duration_s=duration if duration is not None else limit,
                hangup_after_silence_s=None if duration is not None else hang_up_after_silence,
                call_sid=call_sid,
                on_event=on_event,
                profile=profile,
            ),
        )

    async def _follow(
        self,
        call_sid: str,
        to: str,
        from_: str,
        limit: float,
        phone: Callable[[Callable[[TimelineEvent], None]], Awaitable[CallResult]],
    ) -> CallReport:
        """Run the phone's side of one call (at most `limit` s and a margin), wait for the bridge to
        finish with it, and report it; CallFlowError with the timeline so far when either hangs."""
        phone_events: list[TimelineEvent] = []
        records = self.records
        records.in_flight[call_sid] = (to, from_, phone_events)
        deadline = asyncio.get_running_loop().time() + limit
        try:
            try:
                result = await asyncio.wait_for(phone(phone_events.append), limit + 5)
            except TimeoutError:
                raise CallFlowError(
                    f"call {call_sid} did not end within {limit + 5:.0f} s\n"
                    + self.records.in_flight_timeline(call_sid)
                ) from None
            ended = await self.records.wait_ended(call_sid, deadline) if result.connected else None
        finally:
            del self.records.in_flight[call_sid]
        report = self.records.report(call_sid, to, from_, result, ended)
        self.reports.append(report)
        return report

    async def _audiosocket_url(self, number: str) -> str:
        """The tcp:// address of an AudioSocket listener whose calls dial `number` (opened on first use)."""
        url = self._audiosocket_urls.get(number)
        if url is None:
            from telephony_bridge.carriers.audiosocket_carrier import Listener
            from telephony_bridge.server.audiosocket import AudioSocketServer

            assert self.runtime is not None
            server = AudioSocketServer(
                self.runtime, [Listener("127.0.0.1", 0, number)], self.runtime.settings.carrier_config()
            )
            await server.start()
            self._stack.push_async_callback(server.stop)  # before the bridge stops
            url = self._audiosocket_urls[number] = f"tcp://127.0.0.1:{server.bound[0][1]}"
        return url

    async def start_scenario(
        self,
        name: str,
        *,
        custom_data: str = "",
        callee_says: Sequence[tuple[float, str]] = (),
        audio: bytes | str | Path | None = None,
        outcome: str = "answered",
        answered_by: str = "human",
        hang_up_after_silence: float = DEFAULT_PATIENCE_S,
        duration: float | None = None,
        timeout: float | None = None,
    ) -> CallReport:
        """Start scenario `name` as `POST /api/scenarios/{name}/start` would (with `custom_data`),
        answer the call it places, and return that call's report (`to`: the number it called,
        `from_`: its caller id). Needs `CallFlow(twilio=True)`: the REST stand-in receives
        `Calls.create`, and the phone simulator then plays Twilio's part of the call.

        - `callee_says`: (seconds after the callee answers, text) lines; or `audio`.
        - `outcome`: "answered", or "busy" / "no-answer" / "failed" (the call never connects;
          the report is `rejected`).
        - `answered_by`: what answering-machine detection reports, when the scenario asked for it.
        - `hang_up_after_silence`, `duration`, `timeout`: as for `call()`.
        """
        if self.runtime is None:
            raise RuntimeError("CallFlow is not started: use `async with CallFlow(...)` or the call_flow fixture")
        if self.twilio is None or self._placed is None:
            raise RuntimeError(
                "start_scenario needs CallFlow(twilio=True) (the fixture: "
                "@pytest.mark.call_flow(twilio=True)): Twilio's REST stand-in places the call"
            )
        pcm16, _ = await asyncio.gather(caller_audio_pcm16(callee_says, audio, ()), self._render_script())
        status, body = await asyncio.to_thread(self.start_scenario_request, name, custom_data)
        if status != 201:
            raise CallFlowError(f"starting scenario {name!r} failed: HTTP {status} {body}")
        try:
            call_sid, form = await asyncio.wait_for(self._placed.get(), PLACE_CALL_WAIT_S)
        except TimeoutError:
            raise CallFlowError(f"scenario {name!r} placed no call within {PLACE_CALL_WAIT_S:g} s") from None
        to, from_ = form.get("To", ""), form.get("From", "")
        audio_s = len(pcm16) / 2 / SAMPLE_RATE
        limit = audio_s + (timeout if timeout is not None else self.call_timeout)
        return await self._follow(
            call_sid,
            to,
            from_,
            limit,
            lambda on_event: answer_outbound_call(
                form,
                call_sid=call_sid,
                account_sid=self._account_sid,
                callee_audio=pcm16,
                outcome=outcome,
                answered_by=answered_by,
                auth_token=self._auth_token,
                duration_s=duration if duration is not None else limit,
                hangup_after_silence_s=None if duration is not None else hang_up_after_silence,
                on_event=on_event,
            ),
        )

    async def wait_for_sessions(self, timeout: float = 10.0) -> None:
        """Wait until every scenario session started through the API has ended (CallFlowError if not)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.runtime.scenario_sessions:
            if loop.time() >= deadline:
                raise CallFlowError(
                    f"{len(self.runtime.scenario_sessions)} scenario session(s) still running after {timeout:g} s"
                )
            await asyncio.sleep(0.05)

    def start_scenario_request(self, name: str, custom_data: str = "", api_key: str | None = None) -> tuple[int, str]:
        """`POST /api/scenarios/{name}/start` to this flow's bridge (blocking): (status, body)."""
        import urllib.error
        import urllib.parse
        import urllib.request

        import orjson

        request = urllib.request.Request(
            f"{self.url}/api/scenarios/{urllib.parse.quote(name, safe='')}/start",
            data=orjson.dumps({"customData": custom_data}),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key or self.api_key}"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def timelines(self) -> list[tuple[str, str]]:
        """(title, text) of every call placed so far, finished or not: what a failing test prints."""
        out = [(f"call {n} to {r.to}", r.timeline()) for n, r in enumerate(self.reports, start=1)]
        for call_sid, (to, _, _) in list(self.records.in_flight.items()):
            out.append((f"call to {to} (unfinished)", self.records.in_flight_timeline(call_sid)))
        return out
