"""Starting scenarios from outside, and the carrier's side of the calls they place.

- `POST /api/scenarios/{name}/start` with JSON `{"customData": "..."}` (Voximplant's
  StartScenarios; `Authorization: Bearer <one of API_KEYS>`, and off — 404 — with no key
  configured): runs scenario `name` in a new session (server/scenario_sessions.py) and answers
  `201 {"sessionId": ..., "scenario": name}`. `name` is looked up among the loaded scenarios,
  never used as a path.
- Per carrier that can dial, per prefix: `POST {prefix}/outbound-answer?call=KEY` (the callee
  answered: the answer document binds the stream with a stream token naming the waiting call) and
  `POST {prefix}/call-status?call=KEY` (progress). Both are checked like the answer endpoint: the
  carrier's signature when its secret is configured, else loopback clients only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from telephony_bridge.carriers.base import AnswerRefused, Carrier
from telephony_bridge.server.api_auth import api_key_refusal
from telephony_bridge.server.carrier_routes import (
    read_carrier_request,
    refusal,
    stream_url,
)
from telephony_bridge.server.outbound import (
    CALL_KEY_PARAMETER,
    OUTBOUND_ANSWER_PATH,
    STATUS_PATH,
)
from telephony_bridge.server.runtime import BridgeRuntime
from telephony_bridge.server.scenario_sessions import start_scenario_session
from telephony_bridge.server.stream_tokens import StreamGrant

__all__ = ["MAX_CUSTOM_DATA_BYTES", "MAX_START_BODY", "START_PATH", "scenario_routes"]

log = logging.getLogger("telephony_bridge.server")

START_PATH: Final = "/api/scenarios/{name}/start"
MAX_START_BODY: Final = 16 * 1024
# Voximplant's script_custom_data is small (200 bytes in its Control Panel, 2,000 characters in
# its docs); a few KiB leaves room for a JSON object of call parameters.
MAX_CUSTOM_DATA_BYTES: Final = 8 * 1024


def scenario_routes(runtime: BridgeRuntime) -> list[BaseRoute]:
    routes: list[BaseRoute] = [Route(START_PATH, _start_endpoint(runtime), methods=["POST"])]
    for carrier in runtime.carriers:
        if not carrier.capabilities.dial:
            continue
        for prefix in carrier.prefixes:
            routes.append(
                Route(prefix + OUTBOUND_ANSWER_PATH, _outbound_answer(runtime, carrier, prefix), methods=["POST"])
            )
            routes.append(Route(prefix + STATUS_PATH, _status_callback(runtime, carrier), methods=["POST"]))
    return routes


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def _start_endpoint(runtime: BridgeRuntime) -> Endpoint:
    async def start(request: Request) -> Response:
        refused = api_key_refusal(request, runtime.settings)
        if refused is not None:
            return refused
        if runtime.draining:
            return PlainTextResponse("draining for shutdown", status_code=503, headers={"Retry-After": "5"})
        scenario = runtime.scenarios.get(request.path_params["name"])
        if scenario is None:
            return PlainTextResponse("no such scenario", status_code=404)
        if len(runtime.scenario_sessions) >= runtime.settings.max_calls:
            return PlainTextResponse("at capacity", status_code=503, headers={"Retry-After": "5"})
        custom_data = await _custom_data(request, runtime.settings.http_body_timeout_s)
        if isinstance(custom_data, Response):
            return custom_data
        session = start_scenario_session(runtime, scenario, custom_data)
        log.info(
            "%s: scenario %s started through the API (%d bytes of custom data)",
            session.label,
            scenario.name,
            len(custom_data.encode()),
        )
        return JSONResponse({"sessionId": session.session_id, "scenario": scenario.name}, status_code=201)

    return start


async def _custom_data(request: Request, timeout_s: float) -> str | Response:
    """The request's `customData` (a string, "" when absent), or the response refusing the body."""
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_START_BODY:
                    return PlainTextResponse(f"request too large (over {MAX_START_BODY} bytes)", status_code=413)
    except ClientDisconnect:
        return PlainTextResponse("request body incomplete", status_code=400)
    except TimeoutError:
        return PlainTextResponse(f"request body not received within {timeout_s:g} s", status_code=408)
    if not body.strip():
        return ""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return PlainTextResponse('the body is JSON: {"customData": "..."}', status_code=415)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return PlainTextResponse("the body is not JSON", status_code=400)
    if not isinstance(document, dict):
        return PlainTextResponse('the body is a JSON object: {"customData": "..."}', status_code=400)
    custom_data = document.get("customData", "")
    if custom_data is None:
        custom_data = ""
    if not isinstance(custom_data, str):
        return PlainTextResponse("customData is a string (JSON-encode an object into it)", status_code=400)
    if len(custom_data.encode()) > MAX_CUSTOM_DATA_BYTES:
        return PlainTextResponse(f"customData over {MAX_CUSTOM_DATA_BYTES} bytes", status_code=413)
    return custom_data


def _outbound_answer(runtime: BridgeRuntime, carrier: Carrier, prefix: str) -> Endpoint:
    async def answer(request: Request) -> Response:
        http_request = await read_carrier_request(runtime, carrier, request)
        if isinstance(http_request, Response):
            return http_request
        try:
            answered = carrier.read_answer(http_request)
        except AnswerRefused as refused:
            return refusal(runtime, carrier, refused, http_request.client_host)
        outbound = runtime.outbound_calls.get(request.query_params.get(CALL_KEY_PARAMETER, ""))
        if outbound is None or not outbound.answered(answered.call_id, answered.answered_by):
            runtime.metrics.calls_rejected += 1
            log.info("outbound call %s answered, but no scenario waits for it: hanging up", answered.call_id)
            rejection = carrier.reject_document()
            return Response(rejection.body, status_code=rejection.status, media_type=rejection.media_type)
        call = outbound.call
        token = runtime.stream_tokens.issue(
            StreamGrant(
                call_id=answered.call_id,
                scenario=outbound.host.scenario_name,
                caller=call.callerid(),
                number=call.number(),
                outbound=outbound.key,
            )
        )
        document = carrier.answer_document(stream_url(runtime.settings.base_url, prefix), token)
        log.info(
            "%s: call %s to %s answered%s",
            outbound.host.label,
            answered.call_id,
            call.number(),
            f" ({answered.answered_by})" if answered.answered_by else "",
        )
        return Response(document.body, status_code=document.status, media_type=document.media_type)

    return answer


def _status_callback(runtime: BridgeRuntime, carrier: Carrier) -> Endpoint:
    async def status(request: Request) -> Response:
        http_request = await read_carrier_request(runtime, carrier, request)
        if isinstance(http_request, Response):
            return http_request
        try:
            update = carrier.read_call_status(http_request)
        except AnswerRefused as refused:
            return refusal(runtime, carrier, refused, http_request.client_host)
        outbound = runtime.outbound_calls.get(request.query_params.get(CALL_KEY_PARAMETER, ""))
        if outbound is not None and not outbound.status(update):
            log.warning("status callback for %s names another outbound call: ignored", update.call_id)
        # A callback after the call has finished (or for an unknown one) is normal: the carrier is told it arrived.
        return Response(status_code=204)

    return status
