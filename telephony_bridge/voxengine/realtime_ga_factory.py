"""`OpenAI.createRealtimeAPIClient`: the GA client of the type asked for (realtime, transcription, or
translation — a subclass in its own module, so the factory sits above both)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from telephony_bridge.realtime import translation as translation_wire
from telephony_bridge.tasks import TaskOwner
from telephony_bridge.voxengine.realtime_client import (
    client_options,
    model_for,
    resolve_realtime_url,
    resolve_transport_url,
)
from telephony_bridge.voxengine.realtime_ga import (
    DEFAULT_TRANSCRIPTION_MODEL,
    GARealtimeAPIClient,
    RealtimeAPIClientType,
    _transcription_url,
    realtime_url_from_base,
)
from telephony_bridge.voxengine.realtime_translation import TranslationRealtimeAPIClient

__all__ = ["create_ga_realtime_api_client"]


async def create_ga_realtime_api_client(
    parameters: Mapping[str, Any] | None,
    *,
    tasks: TaskOwner,
    environ: Mapping[str, str] | None = None,
    local_engine_url: str | None = None,
) -> GARealtimeAPIClient:
    """`OpenAI.createRealtimeAPIClient(parameters)`; connects before returning."""
    environ = os.environ if environ is None else environ
    parameters = dict(parameters or {})
    client_type = RealtimeAPIClientType(parameters.get("type") or RealtimeAPIClientType.REALTIME)
    explicit = parameters.get("url") or (
        realtime_url_from_base(parameters["baseUrl"]) if parameters.get("baseUrl") else None
    )
    url = resolve_realtime_url(explicit, environ, local_engine_url)
    options = client_options(parameters, environ)
    dialect = parameters.get("dialect", "ga")
    client: GARealtimeAPIClient
    if client_type is RealtimeAPIClientType.TRANSLATION:
        if dialect != "ga":
            raise ValueError("a translation session exists only on the GA wire; leave dialect at 'ga'")
        if options["transport"] != "websocket":
            raise ValueError("a translation session runs over a WebSocket only; leave transport at 'websocket'")
        # REALTIME_MODEL names the realtime model, not the interpreter: only `model` overrides the default.
        model = model_for({"model": parameters.get("model") or translation_wire.DEFAULT_MODEL}, {})
        client = TranslationRealtimeAPIClient(
            url=translation_wire.translation_url(url), model=model, dialect="ga", tasks=tasks, **options
        )
    else:
        transcription = client_type is RealtimeAPIClientType.TRANSCRIPTION
        if transcription and options["transport"] != "websocket":
            raise ValueError("a transcription session runs over a WebSocket only; leave transport at 'websocket'")
        url = resolve_transport_url(url, parameters, environ)
        model = model_for(parameters, environ, DEFAULT_TRANSCRIPTION_MODEL if transcription else None)
        client = GARealtimeAPIClient(
            client_type=client_type,
            url=_transcription_url(url) if transcription else url,
            model=model,
            model_in_url=not transcription,
            dialect=dialect,
            tasks=tasks,
            **options,
        )
    await client.connect()
    return client
