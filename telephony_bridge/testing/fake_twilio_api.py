"""A stand-in for api.twilio.com on 127.0.0.1: records every request and answers as told.

One fake for the call-flow kit, the integration tests and the REST client's unit tests. It runs
in a thread (http.server), so a test's event loop blocking on nothing still sees it answer.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import orjson

_CALL_PATH = re.compile(r"/Calls/([A-Za-z0-9]+)\.json")
_CREATE_PATH = re.compile(r"/Accounts/([A-Za-z0-9]+)/Calls\.json$")


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A request to the Twilio REST stand-in (in a report, `t` is seconds since the stream started)."""

    call_sid: str | None
    path: str
    form: Mapping[str, str]
    t: float = 0.0
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # Authorization among them
    body: str = ""


class TwilioApiStandIn:
    """A local HTTP server standing in for api.twilio.com: answers every call update with 200 and
    records it. Set `status` to make the next updates fail (e.g. 404 for a call that has ended), or
    `answer` to a (status, JSON body) pair to answer exactly that.

    `Calls.create` (POST .../Calls.json) is answered 201 with a new call SID, recorded under it,
    and handed to `on_create(call_sid, form)` (called in the stand-in's thread): the phone
    simulator then plays Twilio's part of the call (testing/simulator_callee.py).

    `start()`/`stop()`, or use it as a context manager."""

    def __init__(self, *, poll_interval: float = 0.5) -> None:
        self.requests: list[RestRequest] = []
        self.status = 200
        self.answer: tuple[int, Any] | None = None
        self.on_create: Callable[[str, Mapping[str, str]], object] | None = None
        self._poll_interval = poll_interval
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                status, payload = stand_in._record(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name="twilio-stand-in",
            daemon=True,
        )

    @property
    def base_url(self) -> str:
        return self.url

    def _record(self, path: str, headers: dict[str, str], body: str) -> tuple[int, bytes]:
        form = {key: values[0] for key, values in parse_qs(body).items()}
        events = parse_qs(body).get("StatusCallbackEvent", [])
        if len(events) > 1:  # a repeated field: every value, space-separated
            form["StatusCallbackEvent"] = " ".join(events)
        create = _CREATE_PATH.search(path)
        if create is not None:
            return self._create(create.group(1), path, headers, body, form)
        match = _CALL_PATH.search(path)
        self.requests.append(
            RestRequest(match.group(1) if match else None, path, form, time.monotonic(), "POST", headers, body)
        )
        if self.answer is not None:
            status, payload = self.answer
            return status, orjson.dumps(payload)
        sid = match.group(1) if match else "CA" + "0" * 32
        if self.status == 200:
            return 200, orjson.dumps({"sid": sid, "status": "in-progress"})
        return self.status, orjson.dumps(
            {"code": 20404, "message": "stand-in refused the request", "status": self.status}
        )

    def _create(
        self, account_sid: str, path: str, headers: dict[str, str], body: str, form: dict[str, str]
    ) -> tuple[int, bytes]:
        sid = "CA" + secrets.token_hex(16)
        self.requests.append(RestRequest(sid, path, form, time.monotonic(), "POST", headers, body))
        if self.answer is not None:
            status, payload = self.answer
            return status, orjson.dumps(payload)
        if self.status != 200:
            return self.status, orjson.dumps(
                {"code": 20404, "message": "stand-in refused the request", "status": self.status}
            )
        if self.on_create is not None:
            self.on_create(sid, form)
        return 201, orjson.dumps(
            {
                "sid": sid,
                "account_sid": account_sid,
                "status": "queued",
                "to": form.get("To"),
                "from": form.get("From"),
                "direction": "outbound-api",
            }
        )

    def start(self) -> TwilioApiStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> TwilioApiStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def requests_for(self, call_sid: str) -> list[RestRequest]:
        return [request for request in self.requests if request.call_sid == call_sid]
