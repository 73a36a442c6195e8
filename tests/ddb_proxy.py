"""A loopback HTTP proxy in front of DynamoDB Local, to stage what a real region may do.

Every request is forwarded to the upstream server unless an ``intercept`` rule answers it
first. Rules see the operation (``"Query"``, ``"PutItem"`` ...) and the JSON request body,
and return ``(status, body_dict)`` to answer in DynamoDB's place, or None to forward.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Answer = tuple[int, dict[str, Any]]
Rule = Callable[[str, dict[str, Any]], "Answer | None"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class DynamoDBProxy:
    """A proxy on 127.0.0.1 and a free port; use as a context manager."""

    def __init__(self, upstream: str, intercept: Rule | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.intercept = intercept
        self.intercepted: list[str] = []
        self.forwarded: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> DynamoDBProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                body = json.loads(raw or b"{}")
                answer = proxy.intercept(operation, body) if proxy.intercept else None
                if answer is not None:
                    proxy.intercepted.append(operation)
                    status, payload = answer
                    self._reply(status, {"Content-Type": "application/x-amz-json-1.0"}, payload)
                    return
                proxy.forwarded.append(operation)
                upstream = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=30
                )
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
                    }
                    upstream.request("POST", self.path, body=raw, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                    kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
                    self._reply(response.status, kept, data)
                finally:
                    upstream.close()

            def _reply(self, status: int, headers: dict[str, str], payload: Any) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def lagging_correlation_index(operation: str, body: dict[str, Any]) -> Answer | None:
    """A GSI that has not caught up: every Query on ``correlationIndex`` finds nothing."""
    if operation == "Query" and body.get("IndexName") == "correlationIndex":
        return 200, {"Items": [], "Count": 0, "ScannedCount": 0}
    return None
