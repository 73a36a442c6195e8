"""``AsyncDynamoDBSagaStore``: the store's calls as coroutines, for asyncio programs.

The store keeps a ``DynamoDBSagaStore`` (``.sync``) and runs the very same steps as its calls
(validation, request building, write tokens, conflict handling: ``DynamoDBSagaStore._run``),
awaiting each request instead of blocking on it. With aiohttp installed (the ``[aio]``
extra) and the store's own transport (the default), requests are sent on the event loop
itself, no thread per request in flight; otherwise (no aiohttp, ``transport="botocore"``, a
passed ``connection``, or moto's in-process mock) each request is sent by botocore on a
bounded thread pool the store owns. Either way the event loop never waits on the network::

    async with AsyncDynamoDBSagaStore(OrderSaga, ttl_days=30) as store:
        state = await store.get_by_id("OrderSaga", saga_id)
        await store.modify("OrderSaga", saga_id, mark_paid)

See ``docs/asyncio.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Generic

from typing_extensions import Self, TypeVar

from . import _telemetry
from ._aiohttp import AsyncHttpTransport, aiohttp_available
from ._dispatch import ConditionFailed, dispatch_async
from ._modify import (
    DEFAULT_BASE_DELAY,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_DELAY,
    check_retry_options,
    modify_by_correlation_id_steps,
    modify_steps,
)
from ._steps import Call, Send, Steps
from .errors import SagaStoreError, SagaStoreUnavailableError, SagaValidationError
from .models import SagaModel
from .store import DynamoDBSagaStore, SagaPage
from .views import AsyncSagaView

__all__ = ["AsyncDynamoDBSagaStore"]

M = TypeVar("M", bound=SagaModel, default=SagaModel)
V = TypeVar("V", bound=SagaModel)
T = TypeVar("T")

_log = logging.getLogger("saga_store_pynamo")


class AsyncDynamoDBSagaStore(Generic[M]):
    """The saga store's calls as coroutines: sent on the event loop when it can be (``native``).

    :param model: as for ``DynamoDBSagaStore``.
    :param max_workers: the most store requests in flight at once (per event loop): the
        connections of the native transport, or the threads of the pool otherwise; further
        requests wait their turn without blocking the loop. Unless ``max_pool_connections``
        or ``connection`` is given, the sync store's HTTP connection pool is sized to match
        (this takes precedence over the model's ``Meta.max_pool_connections``).
    :param options: the keyword options of ``DynamoDBSagaStore``, passed on unchanged; that
        store is built with them and kept as ``sync``, so its validation errors are raised
        here, and options it gains later work here too.

    Use it as ``async with store:`` or call ``aclose()`` when done. Cancelling a call on the
    native transport closes the connection of a request in flight (its fate, for a write,
    is unknown: as for a dropped connection); on the thread pool it does not stop a request
    that a worker thread has already sent.
    """

    def __init__(
        self,
        model: type[M] = SagaModel,  # type: ignore[assignment]
        *,
        max_workers: int = 8,
        **options: Any,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise SagaValidationError("max_workers", f"must be an int >= 1, got {max_workers!r}")
        if options.get("max_pool_connections") is None and options.get("connection") is None:
            options["max_pool_connections"] = max_workers
        self._sync: DynamoDBSagaStore[M] = DynamoDBSagaStore(model, **options)
        self._max_workers = max_workers
        self._transport: AsyncHttpTransport | None = None
        if self._sync.transport == "http":
            if aiohttp_available():
                self._transport = AsyncHttpTransport(
                    self._sync.connection, max_connections=max_workers
                )
            else:
                _log.info(
                    "AsyncDynamoDBSagaStore sends on a thread pool: install the [aio] extra "
                    "(aiohttp) to send on the event loop"
                )
        self._executor = ThreadPoolExecutor(max_workers, thread_name_prefix="saga-store")
        self._closed = False
        #: One future per call in flight (any loop), done when the call ends.
        self._calls: set[asyncio.Future[None]] = set()
        self._shut_down: concurrent.futures.Future[None] | None = None
        self._client_ready = False
        self._close_lock = threading.Lock()
        self._client_lock = threading.Lock()

    # -- configuration ---------------------------------------------------------------------

    @property
    def sync(self) -> DynamoDBSagaStore[M]:
        """The synchronous store doing the work (e.g. for ``create_table(store.sync)``)."""
        return self._sync

    @property
    def model(self) -> type[M]:
        """The model class used for saga names not listed in ``models``."""
        return self._sync.model

    @property
    def table_name(self) -> str:
        """The DynamoDB table the store reads and writes."""
        return self._sync.table_name

    @property
    def max_workers(self) -> int:
        """The most requests in flight at once (per event loop)."""
        return self._max_workers

    @property
    def native(self) -> bool:
        """Whether requests are sent on the event loop (aiohttp and the store's own
        transport); False when each is sent by botocore on the store's thread pool.

        Even when True, a request is sent on the pool while moto's in-process mock is
        active, or when the endpoint's settings need botocore (see ``docs/asyncio.md``).
        """
        return self._transport is not None

    @property
    def closed(self) -> bool:
        """True once ``aclose()`` has been called."""
        return self._closed

    def __repr__(self) -> str:
        sync = self._sync
        return (
            f"{type(self).__name__}(model={sync.model.__name__}, table_name={sync.table_name!r}, "
            f"region={sync.region!r}, endpoint={sync.endpoint!r}, "
            f"max_workers={self._max_workers}, native={self.native})"
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Wait for calls in flight, stop the pool and close the store's HTTP connections.

        The waiting happens off the event loop. Idempotent; any call made afterwards raises
        ``SagaStoreError("store is closed")``.
        """
        with self._close_lock:
            self._closed = True
        # Calls in flight on this loop end first; they may still send requests meanwhile.
        loop = asyncio.get_running_loop()
        in_flight = [call for call in list(self._calls) if call.get_loop() is loop]
        if in_flight:
            await asyncio.shield(asyncio.wait(in_flight))
        if self._transport is not None:
            await self._transport.aclose()
        with self._close_lock:
            if self._shut_down is None:
                self._shut_down = concurrent.futures.Future()
                threading.Thread(
                    target=self._shut_down_in_thread,
                    args=(self._shut_down,),
                    name="saga-store-close",
                    daemon=True,
                ).start()
        # Shielded: a cancelled aclose() leaves the shutdown running to its end.
        await asyncio.shield(asyncio.wrap_future(self._shut_down))

    def _shut_down_in_thread(self, done: concurrent.futures.Future[None]) -> None:
        try:
            self._executor.shutdown(wait=True)
            self._sync.close()
        except BaseException as exc:  # handed to every aclose() caller
            done.set_exception(exc)
        else:
            done.set_result(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the SagaStore calls ---------------------------------------------------------------

    async def get_by_id(self, saga_name: str, saga_id: str) -> M | None:
        """Load a saga by id, strongly consistent; see ``DynamoDBSagaStore.get_by_id()``."""
        return await self._run(
            self._sync._get_by_id(saga_name, saga_id), "get_by_id", saga_name, saga_id, "GetItem"
        )

    async def get_by_correlation_id(self, saga_name: str, correlation_id: str) -> M | None:
        """Find a saga by correlation id (eventually consistent GSI); see the sync store."""
        return await self._run(
            self._sync._get_by_correlation_id(saga_name, correlation_id),
            "get_by_correlation_id",
            saga_name,
            None,
            self._sync._correlation_operation(),
        )

    def saga_id_for(self, saga_name: str, correlation_id: str) -> str | None:
        """The id ``insert`` gives a new saga with this correlation id under
        ``unique_correlation`` (else None); see ``DynamoDBSagaStore.saga_id_for()``."""
        return self._sync.saga_id_for(saga_name, correlation_id)

    def view(self, model: type[V], *, saga_name: str | None = None) -> AsyncSagaView[V]:
        """The calls of one saga type as coroutines, typed with its model; see
        ``DynamoDBSagaStore.view()``."""
        return AsyncSagaView(self, model, saga_name)

    async def insert(self, saga_name: str, correlation_id: str, state: SagaModel) -> None:
        """Store a new saga at version 0; see ``DynamoDBSagaStore.insert()``."""
        await self._run(
            self._sync._insert(saga_name, correlation_id, state),
            "insert",
            saga_name,
            getattr(state, "saga_id", None),
            "PutItem",
        )

    async def update(self, saga_name: str, state: SagaModel, expected_version: int) -> None:
        """Save a saga if its stored version is ``expected_version``; see the sync store."""
        await self._run(
            self._sync._update(saga_name, state, expected_version),
            "update",
            saga_name,
            getattr(state, "saga_id", None),
            "UpdateItem",
        )

    async def delete(self, saga_name: str, saga_id: str) -> None:
        """Delete a saga (idempotent); see ``DynamoDBSagaStore.delete()``."""
        await self._run(
            self._sync._delete(saga_name, saga_id), "delete", saga_name, saga_id, "DeleteItem"
        )

    async def write_landed(self, error: SagaStoreUnavailableError) -> bool:
        """Whether the write that raised ``error`` was applied after all (one read); see
        ``DynamoDBSagaStore.write_landed()``."""
        write = getattr(error, "write", None)
        return await self._run(
            self._sync._write_landed(error),
            "write_landed",
            getattr(write, "saga_name", None),
            getattr(write, "saga_id", None),
            "GetItem",
        )

    async def find_by_name(
        self,
        saga_name: str,
        *,
        completed: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
        consistent_read: bool = False,
    ) -> SagaPage[M]:
        """One page of the sagas of one saga name; see ``DynamoDBSagaStore.find_by_name()``."""
        return await self._run(
            self._sync._find_by_name(saga_name, completed, limit, cursor, consistent_read),
            "find_by_name",
            saga_name,
        )

    async def iter_by_name(
        self, saga_name: str, *, completed: bool | None = None, page_size: int = 100
    ) -> AsyncIterator[M]:
        """Every saga of one saga name, page by page: ``async for state in ...``."""
        cursor = None
        while True:
            page = await self.find_by_name(
                saga_name, completed=completed, limit=page_size, cursor=cursor
            )
            for state in page.items:
                yield state
            if page.cursor is None:
                return
            cursor = page.cursor

    async def purge_completed(
        self,
        saga_name: str,
        *,
        before: datetime,
        dry_run: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Delete the completed sagas of one saga name last updated before ``before``; see
        ``DynamoDBSagaStore.purge_completed()`` (``on_progress`` runs on the loop)."""
        return await self._run(
            self._sync._purge_completed(saga_name, before, dry_run, on_progress),
            "purge_completed",
            saga_name,
        )

    async def modify(
        self,
        saga_name: str,
        saga_id: str,
        fn: Callable[[M], M | Awaitable[M | None] | None],
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> M:
        """Load a saga, apply ``fn``, save it; on a version conflict reload and try again.

        The semantics of the sync ``modify`` (``DynamoDBSagaStore.modify()``); ``fn`` runs on
        the event loop and may be a coroutine function; between attempts the coroutine
        sleeps (``await asyncio.sleep``) for an exponential backoff with full jitter.
        Anything ``fn`` raises propagates, and nothing is written for that attempt.

        :param saga_name: the saga's name.
        :param saga_id: the saga's id.
        :param fn: called with the loaded state; changes it in place and returns None, or
            returns the state to save. It may run once per attempt.
        :param max_attempts: attempts in total (>= 1) before the last conflict is re-raised.
        :param base_delay: backoff before the second attempt, at most (seconds).
        :param max_delay: cap on any backoff (seconds).
        :param sleep: the coroutine function that waits (``asyncio.sleep``).

        :returns: the saved state, with its new ``version``.
        :raises SagaNotFoundError: the saga does not exist (or was deleted meanwhile).
        :raises ConcurrencyError: all ``max_attempts`` attempts hit a conflict.
        :raises SagaValidationError: bad arguments, or ``fn`` returned neither None nor a
            state of this saga (nothing is written).
        """
        max_attempts, base_delay, max_delay = check_retry_options(
            max_attempts, base_delay, max_delay
        )
        return await self._run(
            modify_steps(self._sync, saga_name, saga_id, fn, max_attempts, base_delay, max_delay),
            "modify",
            saga_name,
            saga_id,
            sleep=sleep,
        )

    async def modify_by_correlation_id(
        self,
        saga_name: str,
        correlation_id: str,
        fn: Callable[[M], M | Awaitable[M | None] | None],
        *,
        start: Callable[[], M | Awaitable[M]] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay: float = DEFAULT_BASE_DELAY,
        max_delay: float = DEFAULT_MAX_DELAY,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> M:
        """Continue the saga of ``correlation_id`` with ``fn``, or start it with ``start``;
        see ``DynamoDBSagaStore.modify_by_correlation_id()``. ``fn`` and ``start`` may be
        plain or coroutine functions."""
        max_attempts, base_delay, max_delay = check_retry_options(
            max_attempts, base_delay, max_delay
        )
        return await self._run(
            modify_by_correlation_id_steps(
                self._sync,
                saga_name,
                correlation_id,
                fn,
                start,
                max_attempts,
                base_delay,
                max_delay,
            ),
            "modify_by_correlation_id",
            saga_name,
            sleep=sleep,
        )

    # -- running the steps ------------------------------------------------------------------

    async def _run(
        self,
        steps: Steps[T],
        call_name: str,
        saga_name: object,
        saga_id: object = None,
        operation: str | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> T:
        """``DynamoDBSagaStore._run`` on asyncio: each request is awaited, each function's
        result awaited when it is awaitable, each backoff slept with ``sleep``. The call's
        telemetry follows the task (``contextvars``)."""
        if self._closed:
            steps.close()
            raise SagaStoreError("store is closed")
        sync = self._sync
        call: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._calls.add(call)
        trace = _telemetry.start_call(call_name, sync.table_name, saga_name, saga_id, operation)
        try:
            step = next(steps)
            while True:
                if isinstance(step, Send):
                    try:
                        response = await dispatch_async(
                            sync.connection,
                            sync.table_name,
                            step.operation,
                            step.request,
                            sync.retry,
                            self._transport,
                            self._offload,
                            sync._request_observers,
                            None if trace is None else trace.request(step),
                        )
                    except ConditionFailed as failure:
                        step = steps.throw(failure)
                    except SagaStoreUnavailableError as exc:
                        step.identify(exc)
                        raise
                    else:
                        step = steps.send(response)
                elif isinstance(step, Call):
                    returned = step.fn(*step.args)
                    if inspect.isawaitable(returned):
                        returned = await returned
                    step = steps.send(returned)
                else:
                    await sleep(step.seconds)
                    step = steps.send(None)
        except StopIteration as done:
            result: T = done.value
            if trace is not None:
                trace.end(result)
            return result
        except BaseException as error:
            if trace is not None:
                trace.fail(error)
            raise
        finally:
            self._calls.discard(call)
            call.set_result(None)

    async def _offload(self, call: Callable[[], T]) -> T:
        """Run one botocore attempt on the store's thread pool, in a copy of the caller's
        context: the request's span stays the parent of what runs beneath it."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        try:
            future = loop.run_in_executor(self._executor, context.run, self._in_worker, call)
        except RuntimeError:  # the pool was shut down from another thread meanwhile
            if self._closed:
                raise SagaStoreError("store is closed") from None
            raise
        return await future

    def _in_worker(self, call: Callable[[], T]) -> T:
        if not self._client_ready:
            # PynamoDB builds its botocore client lazily and without a lock: make it once,
            # rather than once per worker racing on the first calls.
            # Should that fail, the call below fails the same way, as the sync store would.
            with self._client_lock, contextlib.suppress(Exception):
                if not self._client_ready:
                    self._sync.connection.client  # noqa: B018
                    self._client_ready = True
        return call()
