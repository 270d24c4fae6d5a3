"""A tiny HTTP server on 127.0.0.1 for tests of Net.httpRequestAsync: records requests, answers by path."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpStandIn:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                stand_in.requests.append({"method": self.command, "path": self.path, "body": body,
                                          "headers": dict(self.headers.items())})
                if self.path.startswith("/big"):
                    payload = b"x" * (3 * 1024 * 1024)
                    content_type = "application/octet-stream"
                elif self.path.startswith("/slow"):
                    time.sleep(1.0)
                    payload, content_type = b"late", "text/plain"
                else:
                    payload = json.dumps({"ok": True, "method": self.command, "path": self.path, "echo": body}).encode()
                    content_type = "application/json"
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("Content-Type", content_type)
                self.send_header("X-Stand-In", "yes")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> HttpStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
