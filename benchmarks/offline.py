"""Client CPU with the network taken out: botocore's HTTP send answered from memory.

A ``before-send`` handler returns, for every request, the HTTP response the real server gave
the same request during the warm-up. Everything else runs as usual: the store's checks and
model work, PynamoDB's dispatch, botocore's serialization, endpoint resolution, signing,
event hooks, retry checks and parsing. Only urllib3/http.client and the server are gone, so
the difference between the store and raw botocore is measured without network or server
noise, and is the store's whole added cost per call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from urllib3 import HTTPHeaderDict

from .backends import Fixture
from .common import bench_store
from .drivers import BotocoreDriver, Driver, StoreDriver
from .measure import Results, Settings, measure_backend

__all__ = ["CannedResponses", "measure_offline"]


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

    def use(self, op: str) -> None:
        """Answer with ``op``'s recorded response from now on."""
        self.current = op

    def __call__(self, request: Any, **_: Any) -> AWSResponse:
        status, headers, body = self.responses[self.current]
        return AWSResponse(request.url, status, HTTPHeaderDict(headers), _Body(body))


def measure_offline(fixture: Fixture, settings: Settings) -> Results:
    """Measure the store and raw botocore, one thread, with recorded responses."""
    store = bench_store(fixture.table_name, fixture.backend.endpoint, fixture.store.ttl_days)
    canned = CannedResponses(fixture.responses)
    offline = dataclasses.replace(fixture, store=store, offline=True)
    store_driver, botocore_driver = StoreDriver(offline), BotocoreDriver(offline)
    store.connection.client.meta.events.register_first("before-send.dynamodb", canned)
    botocore_driver.client.meta.events.register_first("before-send.dynamodb", canned)
    drivers: list[Driver] = [store_driver, botocore_driver]
    try:
        return measure_backend("offline", drivers, settings, before_op=canned.use)
    finally:
        for driver in drivers:
            driver.close()
        store.close()
