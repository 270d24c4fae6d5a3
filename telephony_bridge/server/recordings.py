"""GET /recordings/{id}.wav|.flac: a call's recording, to holders of an API key only.

Off (404) when no `API_KEYS` is configured, 401 without a key. The name in the URL is checked to be
a plain file name the bridge could have made (server/journal.py `safe_child`) before any path is
built from it; anything else, or a recording that does not exist, is 404.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from telephony_bridge.server.api_auth import api_key_refusal
from telephony_bridge.server.journal import UnsafeFileName, safe_child
from telephony_bridge.server.settings import Settings

MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac"}


def recording_routes(settings: Settings) -> list[Route]:
    async def recording(request: Request) -> Response:
        refused = api_key_refusal(request, settings)
        if refused is not None:
            return refused
        name = request.path_params["name"]
        stem, dot, suffix = name.rpartition(".")
        media_type = MEDIA_TYPES.get(dot + suffix)
        not_found = PlainTextResponse("no such recording", status_code=404)
        if media_type is None:
            return not_found
        try:
            path = safe_child(settings.recordings_dir, stem, dot + suffix)
        except UnsafeFileName:
            return not_found
        if not path.is_file():
            return not_found
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "no-store"})

    return [Route("/recordings/{name}", recording, methods=["GET"])]
