"""A loopback HTTP proxy in front of DynamoDB Local, to stage what a real region may do.

Every request is forwarded to the upstream server unless an ``intercept`` rule decides
otherwise. Rules see the operation (``"Query"``, ``"PutItem"`` ...) and the JSON request
body, and return None to forward, ``(status, body_dict)`` to answer in DynamoDB's place,
``RESET`` to reset the connection without forwarding, or ``DROP_RESPONSE`` to forward the
request (DynamoDB applies it) and then reset the connection instead of answering.

``drop_delay`` holds a dropped response for a random time up to that many seconds before
the reset, as a client that waits for a response that never comes does: other clients'
requests go on meanwhile.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

Answer = tuple[int, dict[str, Any]]
RESET = "reset"
DROP_RESPONSE = "drop-response"
#: Forward (DynamoDB applies the request), then change one byte of the response body.
CORRUPT_BODY = "corrupt-body"
#: Forward, then send the body unchanged with a wrong ``x-amz-crc32`` header.
CORRUPT_CRC32 = "corrupt-crc32"
_CORRUPTIONS = (CORRUPT_BODY, CORRUPT_CRC32)
Decision = Any  # Answer | RESET | DROP_RESPONSE | None
Rule = Callable[[str, dict[str, Any]], Decision]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class DynamoDBProxy:
    """A proxy on 127.0.0.1 and a free port; use as a context manager."""

    def __init__(
        self, upstream: str, intercept: Rule | None = None, drop_delay: float = 0.0
    ) -> None:
        parts = urlsplit(upstream)
        self.drop_delay = drop_delay
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
            # Headers and body go out in two writes: with Nagle's algorithm on, the body then
            # waits for the client's delayed ACK (~40 ms per request on Linux).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                operation = self.headers.get("X-Amz-Target", "").rpartition(".")[2]
                body = json.loads(raw or b"{}")
                answer = proxy.intercept(operation, body) if proxy.intercept else None
                if answer == RESET:
                    proxy.intercepted.append(operation)
                    self._reset()
                    return
                if answer is not None and answer != DROP_RESPONSE and answer not in _CORRUPTIONS:
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
                    if answer == DROP_RESPONSE:
                        if proxy.drop_delay > 0:
                            time.sleep(random.uniform(0.0, proxy.drop_delay))
                        self._reset()  # applied upstream; the client never hears of it
                        return
                    kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
                    if answer == CORRUPT_BODY and data:
                        middle = len(data) // 2  # a byte inside the JSON, not its braces
                        data = data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]
                    elif answer == CORRUPT_CRC32:
                        kept = {k: v for k, v in kept.items() if k.lower() != "x-amz-crc32"}
                        kept["x-amz-crc32"] = str((zlib.crc32(data) + 1) & 0xFFFFFFFF)
                    self._reply(response.status, kept, data)
                finally:
                    upstream.close()

            def _reset(self) -> None:
                """Close the client connection with a TCP reset, as a failing network does."""
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()

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


def error(code: str, status: int = 400, message: str = "injected by the test proxy") -> Answer:
    """A DynamoDB error response."""
    prefix = "com.amazon.coral.service" if status >= 500 else "com.amazonaws.dynamodb.v20120810"
    return status, {"__type": f"{prefix}#{code}", "message": message}


#: The faults the injector mixes, by name.
FAULTS: dict[str, Decision] = {
    "throttling": error("ThrottlingException"),
    "provisioned-throughput": error("ProvisionedThroughputExceededException"),
    "internal-error-500": error("InternalServerError", status=500),
    "reset-before-forwarding": RESET,
    "forward-then-drop-response": DROP_RESPONSE,
}
DATA_PLANE = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"})


class FaultInjector:
    """A rule that answers a share of data-plane requests with a random fault of ``kinds``.

    ``script`` queues exact decisions per operation, taken before any random fault: for
    deterministic tests, e.g. ``{"PutItem": [DROP_RESPONSE]}``.
    """

    def __init__(
        self,
        rate: float = 0.0,
        kinds: tuple[str, ...] = tuple(FAULTS),
        seed: int = 0,
        script: dict[str, list[Decision]] | None = None,
    ) -> None:
        self.rate = rate
        self.kinds = kinds
        self.injected: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._random = random.Random(seed)
        self._script = {op: deque(decisions) for op, decisions in (script or {}).items()}
        self._lock = threading.Lock()

    def queue(self, operation: str, *decisions: Decision) -> None:
        """Answer the next requests of ``operation`` with ``decisions``, in order."""
        with self._lock:
            self._script.setdefault(operation, deque()).extend(decisions)

    def __call__(self, operation: str, body: dict[str, Any]) -> Decision:
        with self._lock:
            self.requests[operation] += 1
            queued = self._script.get(operation)
            if queued:
                decision = queued.popleft()
                if decision is not None:
                    self.injected[_name_of(decision)] += 1
                return decision
            if operation not in DATA_PLANE or self._random.random() >= self.rate:
                return None
            kind = self._random.choice(self.kinds)
            self.injected[kind] += 1
            return FAULTS[kind]


def _name_of(decision: Decision) -> str:
    for name, fault in FAULTS.items():
        if fault == decision:
            return name
    return "scripted"
