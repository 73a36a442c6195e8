"""The asyncio clients: the asyncio store on each transport and pydynox's async client.

Each sends the same calls as its sync twin in ``drivers``, as coroutines on the driver's own
event loop; ``measure.run_coroutines`` runs many at once (64 in the full run) and times them
with ``time.process_time()``, which counts every thread of the process: the store's worker
threads on the pool transport and pydynox's Rust (tokio) threads are the client's CPU too.
"""

from __future__ import annotations

from typing import Any

from saga_store_pynamo import ConcurrencyError
from saga_store_pynamo._aiohttp import aiohttp_available

from .backends import Fixture
from .common import (
    AIO_CONTROL,
    PYDYNOX_ASYNC,
    SAGA_NAME,
    STORE_AIO,
    STORE_AIO_POOL,
    BenchmarkError,
    BenchSaga,
    RequestCounter,
    bench_async_store,
)
from .drivers import AsyncCall, AsyncDriver, PydynoxDriver, store_inputs

__all__ = [
    "PydynoxAsyncControlDriver",
    "PydynoxAsyncDriver",
    "StoreAioDriver",
    "StoreAioPoolDriver",
    "aio_problem",
]


def aio_problem() -> str | None:
    """Why the asyncio store cannot send on the event loop here (no aiohttp), or None."""
    if not aiohttp_available():
        return "aiohttp is not installed (the `[aio]` extra): the store would use its pool"
    return None


class StoreAioDriver(AsyncDriver):
    """``AsyncDynamoDBSagaStore`` on its default transport: every request sent on the event
    loop through aiohttp (``store.native``), at most ``concurrency`` in flight.

    Requests are counted at the store's own send point (once per attempt, as for the sync
    store); ``verify`` fails the run if any of them went through botocore instead (or, on
    the pool, if any did not).
    """

    name = STORE_AIO
    transport: str | None = None
    #: Whether every request must go on the event loop (True) or through botocore (False).
    native = True

    def __init__(self, fixture: Fixture, concurrency: int) -> None:
        super().__init__(fixture)
        self.store = bench_async_store(
            fixture.table_name,
            fixture.backend.endpoint,
            max_workers=concurrency,
            transport=self.transport,  # type: ignore[arg-type]
        )
        if self.store.native != self.native:
            raise BenchmarkError(f"{self.name}: the store's native is {self.store.native}")
        self.counter = RequestCounter()
        self.counter.attach_store(self.store.sync)
        # Both kept over every sample until ``verify``: what the store sent, and what of it
        # botocore sent.
        self.sent = RequestCounter()
        self.sent.attach_store(self.store.sync)
        self.via_botocore = RequestCounter()
        self.via_botocore.attach(self.store.sync.connection.client)

    def inputs(self, op: str, count: int) -> list[Any]:
        return store_inputs(self.fixture, op, count)

    def verify(self) -> None:
        sent, through_botocore = self.sent.take(), self.via_botocore.take()
        expected = 0 if self.native else sent
        if through_botocore != expected:
            where = "the event loop" if self.native else "the thread pool (botocore)"
            raise BenchmarkError(
                f"{self.name}: {through_botocore} of {sent} request(s) went through botocore; "
                f"all should have gone through {where}"
            )

    def function(self, op: str) -> AsyncCall:
        store = self.store
        if op == "insert":

            async def insert(args: tuple[str, BenchSaga]) -> None:
                await store.insert(SAGA_NAME, args[0], args[1])

            return insert
        if op == "get_by_id":

            async def get_by_id(saga_id: str) -> None:
                if await store.get_by_id(SAGA_NAME, saga_id) is None:
                    raise BenchmarkError("get_by_id found nothing")

            return get_by_id
        if op == "get_by_correlation_id":

            async def get_by_correlation_id(corr: str) -> None:
                if await store.get_by_correlation_id(SAGA_NAME, corr) is None:
                    raise BenchmarkError("get_by_correlation_id found nothing")

            return get_by_correlation_id
        if op == "update":

            async def update(state: BenchSaga) -> None:
                await store.update(SAGA_NAME, state, 0)

            return update
        if op == "delete":

            async def delete(saga_id: str) -> None:
                await store.delete(SAGA_NAME, saga_id)

            return delete
        if op == "update_conflict":

            async def update_conflict(state: BenchSaga) -> None:
                try:
                    await store.update(SAGA_NAME, state, 0)
                except ConcurrencyError as exc:
                    if exc.actual_version != 1:
                        raise BenchmarkError(f"conflict reported {exc.actual_version}") from exc
                else:
                    raise BenchmarkError("a stale update succeeded")

            return update_conflict
        raise ValueError(op)

    async def aclose(self) -> None:
        """Close the store (its aiohttp session, or its pool's threads)."""
        await self.store.aclose()


class StoreAioPoolDriver(StoreAioDriver):
    """The same asyncio store built with ``transport="botocore"``: each request sent by
    botocore on the store's thread pool (``max_workers`` threads), awaited on the loop."""

    name = STORE_AIO_POOL
    transport = "botocore"
    native = False


class PydynoxAsyncDriver(PydynoxDriver, AsyncDriver):
    """pydynox's ``DynamoDBClient`` through its coroutine methods (``await get_item(...)``),
    the same requests as the sync pydynox driver; the AWS SDK for Rust sends them on its own
    tokio threads. Its requests cannot be counted from Python."""

    name = PYDYNOX_ASYNC

    def __init__(self, fixture: Fixture, concurrency: int) -> None:
        super().__init__(fixture)
        del concurrency  # pydynox has no limit of requests in flight: the coroutines are it

    def function(self, op: str) -> AsyncCall:  # type: ignore[override]
        from pydynox.exceptions import ConditionalCheckFailedException

        client = self.client
        if op == "insert":
            put_item = client.put_item

            async def insert(kwargs: dict[str, Any]) -> None:
                await put_item(**kwargs)

            return insert
        if op == "get_by_id":
            get_item = client.get_item

            async def get_by_id(kwargs: dict[str, Any]) -> None:
                if await get_item(**kwargs) is None:
                    raise BenchmarkError("pydynox get_item found nothing")

            return get_by_id
        if op == "get_by_correlation_id":
            query = client.query

            async def get_by_correlation_id(kwargs: dict[str, Any]) -> None:
                if await anext(aiter(query(**kwargs)), None) is None:
                    raise BenchmarkError("pydynox query found nothing")

            return get_by_correlation_id
        if op == "update":
            update_item = client.update_item

            async def update(kwargs: dict[str, Any]) -> None:
                await update_item(**kwargs)

            return update
        if op == "delete":
            delete_item = client.delete_item

            async def delete(kwargs: dict[str, Any]) -> None:
                await delete_item(**kwargs)

            return delete
        if op == "update_conflict":
            update_item = client.update_item
            version = self.version_name

            async def update_conflict(kwargs: dict[str, Any]) -> None:
                try:
                    await update_item(**kwargs)
                except ConditionalCheckFailedException as exc:
                    item = getattr(exc, "item", None)
                    if item is None or int(item[version]) != 1:
                        raise BenchmarkError("pydynox's conflict returned no old item") from exc
                else:
                    raise BenchmarkError("a stale pydynox update_item succeeded")

            return update_conflict
        raise ValueError(op)

    def close(self) -> None:
        AsyncDriver.close(self)


class PydynoxAsyncControlDriver(PydynoxAsyncDriver):
    """A second pydynox async client, identical to the first: the asyncio A/A control.

    Its ratio to ``pydynox-async`` would be exactly 1 with a perfect measurement, so its
    spread is the asyncio run's own error.
    """

    name = AIO_CONTROL
