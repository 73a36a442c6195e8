"""Client CPU with the network taken out: every request answered from memory.

For every request, the HTTP response the real server gave the same request during the
warm-up is handed back at once. For botocore (the store's default transport and raw
botocore) a ``before-send`` handler returns it: the store's checks and model work,
botocore's serialization, endpoint resolution, signing, event hooks, retry checks and
parsing run; urllib3/http.client and the server do not. For the store's own transport
(``store-http``), its pool's connection is one end of a socket pair on which each request's
``sendall`` puts the recorded response: the store, the wire codec, the signer and the pool's
writing and reading all run, and two local syscalls stand for the network. Either way the
difference between clients is measured without network or server noise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from urllib3 import HTTPHeaderDict

from saga_store_pynamo import DynamoDBSagaStore
from saga_store_pynamo._http import ConnectionPool

from .backends import Fixture
from .common import bench_store
from .drivers import BotocoreDriver, Driver, StoreDriver, StoreHttpDriver
from .measure import Results, Settings, measure_backend

__all__ = ["CannedResponses", "answer_http_transport", "measure_offline"]


class _Body:
    """What ``AWSResponse.content`` reads: an object with ``stream()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class CannedResponses:
    """A ``before-send`` handler answering with the response recorded for the current call."""

    def __init__(self, responses: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.responses = responses
        self.current = next(iter(responses))
        self._raw: dict[str, bytes] = {}

    def use(self, op: str) -> None:
        """Answer with ``op``'s recorded response from now on."""
        self.current = op

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        status, headers, body = self.responses[self.current]
        return AWSResponse(request.url, status, HTTPHeaderDict(headers), _Body(body))

    def raw(self) -> bytes:
        """The current response as it came over the wire (HTTP/1.1, ``Content-Length``)."""
        raw = self._raw.get(self.current)
        if raw is None:
            status, headers, body = self.responses[self.current]
            fields = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            fields["Content-Length"] = str(len(body))
            head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
            raw = self._raw[self.current] = (head + "\r\n").encode("latin-1") + body
        return raw


class _CannedSocket(socket.socket):
    """One end of a socket pair; writing a request puts the recorded answer on the other."""

    canned: CannedResponses
    peer: socket.socket

    def sendall(self, data: Any, flags: int = 0) -> None:
        self.peer.sendall(self.canned.raw())


@contextlib.contextmanager
def answer_http_transport(store: DynamoDBSagaStore[Any], canned: CannedResponses) -> Iterator[None]:
    """While open, ``store`` (``transport="http"``) gets every answer from ``canned``.

    The connections its pools open become canned sockets, so nothing reaches the endpoint;
    other stores' pools are left alone.
    """
    transport = store._http  # the store's HttpTransport
    if transport is None:
        raise RuntimeError("the store does not send through its own transport")
    original = ConnectionPool._connect

    def connect(pool: ConnectionPool) -> socket.socket:
        if not any(pool is mine for mine in _pools_of(transport)):
            return original(pool)
        ours, theirs = socket.socketpair()
        sock = _CannedSocket(ours.family, ours.type, fileno=ours.detach())
        sock.canned, sock.peer = canned, theirs
        return sock

    ConnectionPool._connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        ConnectionPool._connect = original  # type: ignore[method-assign]


def _pools_of(transport: Any) -> list[ConnectionPool]:
    """The pools a store's HttpTransport has built (one per endpoint, or its only one)."""
    pools = getattr(transport, "pools", None)
    if pools is not None:
        return list(pools)
    pool = getattr(transport, "_pool", None)
    return [] if pool is None else [pool]


def measure_offline(fixture: Fixture, settings: Settings) -> Results:
    """Measure the store on each transport and raw botocore, one thread, answered from
    memory."""
    store = bench_store(fixture.table_name, fixture.backend.endpoint, fixture.store.ttl_days)
    canned = CannedResponses(fixture.responses)
    offline = dataclasses.replace(fixture, store=store, offline=True)
    store_driver, botocore_driver = StoreDriver(offline), BotocoreDriver(offline)
    http_driver = StoreHttpDriver(offline)
    store.connection.client.meta.events.register_first("before-send.dynamodb", canned)
    botocore_driver.client.meta.events.register_first("before-send.dynamodb", canned)
    drivers: list[Driver] = [store_driver, http_driver, botocore_driver]
    try:
        with answer_http_transport(http_driver.store, canned):
            return measure_backend("offline", drivers, settings, before_op=canned.use)
    finally:
        for driver in drivers:
            driver.close()
        store.close()
