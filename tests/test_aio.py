"""``AsyncDynamoDBSagaStore``: the store's calls as coroutines, on every backend.

Plain sync tests drive each scenario with ``asyncio.run``: no pytest plugin needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from pynamodb.connection import Connection

from saga_store_pynamo import (
    ConcurrencyError,
    SagaAlreadyExistsError,
    SagaNotFoundError,
    SagaStoreError,
    SagaStoreUnavailableError,
    SagaValidationError,
    TableNotFoundError,
    UnresolvedWrite,
    aio,
    create_table,
)
from saga_store_pynamo._tokens import incarnation_of
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from tests.conftest import CREDENTIALS, REGION, Backend, RequestRecorder, store_behind
from tests.ddb_proxy import DynamoDBProxy, FaultInjector
from tests.models import CounterSaga, OrderSaga, PaymentSaga

NAME = "OrderSaga"
T = TypeVar("T")

MakeAsyncStore = Callable[..., AsyncDynamoDBSagaStore[Any]]


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture
def make_async_store(backend: Backend, recorder: RequestRecorder) -> Iterator[MakeAsyncStore]:
    """Async stores on fresh tables, with the options ``Backend.store`` uses.

    ``make_async_store(model=OrderSaga, create=True, **options)``; the requests after the
    table is created are recorded by ``recorder``. Stores are closed and tables dropped after.
    """
    stores: list[AsyncDynamoDBSagaStore[Any]] = []

    def factory(
        model: type[Any] = OrderSaga, *, create: bool = True, **options: Any
    ) -> AsyncDynamoDBSagaStore[Any]:
        options.setdefault("table_name", f"sagas-aio-{uuid.uuid4().hex[:12]}")
        store: AsyncDynamoDBSagaStore[Any] = AsyncDynamoDBSagaStore(
            model, **backend.options(options)
        )
        stores.append(store)
        if create:
            create_table(store.sync)
        recorder.attach(store.sync)
        return store

    yield factory
    for store in stores:
        run(store.aclose())
    if backend.endpoint is not None:
        client = backend.client()
        for store in stores:
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=store.table_name)


@pytest.fixture
def async_store(make_async_store: MakeAsyncStore) -> AsyncDynamoDBSagaStore[OrderSaga]:
    return make_async_store()


def increment(state: OrderSaga) -> None:
    state.total_cents += 1


async def async_increment(state: OrderSaga) -> None:
    await asyncio.sleep(0)  # a real suspension point inside fn
    state.total_cents += 1


async def insert(
    store: AsyncDynamoDBSagaStore[Any], saga_id: str, correlation_id: str | None = None
) -> OrderSaga:
    state = OrderSaga(saga_id=saga_id)
    await store.insert(NAME, correlation_id or f"order-{saga_id}", state)
    return state


# -- the five calls -------------------------------------------------------------------------


def test_the_five_calls_round_trip(
    async_store: AsyncDynamoDBSagaStore[OrderSaga], recorder: RequestRecorder, backend: Backend
) -> None:
    threads: set[str] = set()
    async_store.sync.connection.client.meta.events.register(
        "before-send.dynamodb", lambda **_: threads.add(threading.current_thread().name)
    )

    async def scenario() -> None:
        state = OrderSaga(total_cents=12)
        await async_store.insert(NAME, "order-1", state)
        assert state.version == 0
        assert state.saga_id is not None

        loaded = await async_store.get_by_id(NAME, state.saga_id)
        assert isinstance(loaded, OrderSaga)
        assert loaded == state
        found = await async_store.get_by_correlation_id(NAME, "order-1")
        assert found == state

        loaded.status = "paid"
        await async_store.update(NAME, loaded, 0)
        assert loaded.version == 1
        reread = await async_store.get_by_id(NAME, state.saga_id)
        assert reread is not None
        assert (reread.status, reread.version) == ("paid", 1)

        await async_store.delete(NAME, state.saga_id)
        await async_store.delete(NAME, state.saga_id)  # idempotent
        assert await async_store.get_by_id(NAME, state.saga_id) is None
        assert await async_store.get_by_correlation_id(NAME, "order-1") is None

    run(scenario())
    assert recorder.take() == [
        "PutItem",
        "GetItem",
        "Query",
        "UpdateItem",
        "GetItem",
        "DeleteItem",
        "DeleteItem",
        "GetItem",
        "Query",
    ]
    if backend.transport == "http":
        # On the event loop: no request was sent by botocore, in any thread.
        assert async_store.native
        assert threads == set()
    else:
        # moto intercepts botocore only; botocore sends on the store's pool.
        assert threads
        assert all(name.startswith("saga-store") for name in threads)  # never the loop's


def test_errors_are_those_of_the_sync_store(
    async_store: AsyncDynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    async def scenario() -> None:
        state = await insert(async_store, "e1")
        await async_store.update(NAME, state, 0)
        recorder.take()

        with pytest.raises(SagaAlreadyExistsError) as exists:
            await insert(async_store, "e1")
        assert exists.value.saga_id == "e1"

        stale = await async_store.get_by_id(NAME, "e1")
        assert stale is not None
        await async_store.update(NAME, stale, 1)
        with pytest.raises(ConcurrencyError) as conflict:
            await async_store.update(NAME, state, 1)
        assert (conflict.value.expected_version, conflict.value.actual_version) == (1, 2)

        ghost = OrderSaga(saga_id="ghost", correlation_id="c", version=0)
        with pytest.raises(SagaNotFoundError):
            await async_store.update(NAME, ghost, 0)
        assert recorder.take() == ["PutItem", "GetItem", "UpdateItem", "UpdateItem", "UpdateItem"]

        # Bad input: the sync store's checks, before any request.
        with pytest.raises(SagaValidationError, match="saga_id"):
            await async_store.get_by_id(NAME, "")
        with pytest.raises(SagaValidationError, match="correlation_id"):
            await async_store.get_by_correlation_id(NAME, "x" * 1025)
        with pytest.raises(SagaValidationError, match="PaymentSaga"):
            await async_store.insert(NAME, "c", PaymentSaga())
        with pytest.raises(SagaValidationError, match="expected_version"):
            await async_store.update(NAME, state, -1)
        with pytest.raises(SagaValidationError, match="saga_name"):
            await async_store.delete("", "e1")
        assert recorder.take() == []

    run(scenario())


def test_missing_table_is_the_sync_stores_error(make_async_store: MakeAsyncStore) -> None:
    store = make_async_store(create=False)
    with pytest.raises(TableNotFoundError):
        run(store.get_by_id(NAME, "any"))


# -- modify ---------------------------------------------------------------------------------


def test_sixty_four_concurrent_modify_increments_lose_nothing(
    async_store: AsyncDynamoDBSagaStore[OrderSaga],
) -> None:
    async def scenario() -> OrderSaga | None:
        await insert(async_store, "counter")
        functions = [increment, async_increment] * 32
        await asyncio.gather(
            *(async_store.modify(NAME, "counter", fn, max_attempts=500) for fn in functions)
        )
        return await async_store.get_by_id(NAME, "counter")

    final = run(scenario())
    assert final is not None
    assert (final.total_cents, final.version) == (64, 64)


def test_modify_with_plain_and_async_fn(
    async_store: AsyncDynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    async def replace(state: OrderSaga) -> OrderSaga:
        await asyncio.sleep(0)
        return OrderSaga(total_cents=state.total_cents + 10, status="paid")

    async def scenario() -> None:
        await insert(async_store, "m")
        recorder.take()
        saved = await async_store.modify(NAME, "m", increment)
        assert (saved.total_cents, saved.version) == (1, 1)
        saved = await async_store.modify(NAME, "m", async_increment)
        assert (saved.total_cents, saved.version) == (2, 2)
        saved = await async_store.modify(NAME, "m", replace)
        assert (saved.saga_id, saved.total_cents, saved.status, saved.version) == (
            "m",
            12,
            "paid",
            3,
        )
        assert recorder.take() == ["GetItem", "UpdateItem"] * 3
        assert await async_store.get_by_id(NAME, "m") == saved

    run(scenario())


def test_modify_errors(
    async_store: AsyncDynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    async def fail(state: OrderSaga) -> None:
        state.total_cents = 999
        raise KeyError("boom")

    async def scenario() -> None:
        await insert(async_store, "err")
        recorder.take()

        with pytest.raises(KeyError, match="boom"):
            await async_store.modify(NAME, "err", fail)
        assert recorder.take() == ["GetItem"]

        with pytest.raises(SagaNotFoundError):
            await async_store.modify(NAME, "ghost", increment)
        assert recorder.take() == ["GetItem"]

        with pytest.raises(SagaValidationError, match="fn"):
            await async_store.modify(NAME, "err", lambda state: "nonsense")  # type: ignore[arg-type,return-value]
        assert recorder.take() == ["GetItem"]

        with pytest.raises(SagaValidationError) as caught:
            await async_store.modify(NAME, "err", increment, max_attempts=0)
        assert caught.value.field == "max_attempts"
        assert recorder.take() == []

        stored = await async_store.get_by_id(NAME, "err")
        assert stored is not None
        assert (stored.version, stored.total_cents) == (0, 0)

    run(scenario())


def test_modify_exhausts_attempts_then_reraises(
    async_store: AsyncDynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    async def bump_behind_its_back(state: OrderSaga) -> None:
        other = await async_store.get_by_id(NAME, "busy")
        assert other is not None
        await async_store.update(NAME, other, state.version)
        increment(state)

    async def scenario() -> None:
        await insert(async_store, "busy")
        recorder.take()
        with pytest.raises(ConcurrencyError) as caught:
            await async_store.modify(
                NAME, "busy", bump_behind_its_back, max_attempts=3, sleep=fake_sleep
            )
        assert (caught.value.expected_version, caught.value.actual_version) == (2, 3)

    run(scenario())
    assert recorder.take() == ["GetItem", "GetItem", "UpdateItem", "UpdateItem"] * 3
    assert len(delays) == 2
    assert 0 <= delays[0] <= 0.01
    assert 0 <= delays[1] <= 0.02


# -- the event loop stays free --------------------------------------------------------------

HEARTBEAT_INTERVAL = 0.010
LAG_BOUND = 1.0


async def heartbeat(stop: asyncio.Event, lags: list[float]) -> None:
    """Tick every 10 ms and record how late each tick came."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    while not stop.is_set():
        await asyncio.sleep(HEARTBEAT_INTERVAL)
        now = loop.time()
        lags.append(now - last - HEARTBEAT_INTERVAL)
        last = now


def thread_heartbeat(stop: threading.Event, lags: list[float]) -> None:
    """The same heartbeat in a plain thread: the stalls the process sees as a whole."""
    last = time.monotonic()
    while not stop.is_set():
        time.sleep(HEARTBEAT_INTERVAL)
        now = time.monotonic()
        lags.append(now - last - HEARTBEAT_INTERVAL)
        last = now


def test_the_loop_stays_responsive_under_sixty_four_concurrent_calls(
    async_store: AsyncDynamoDBSagaStore[OrderSaga],
) -> None:
    """A 10 ms heartbeat on the loop is never late by 250 ms while 64 tasks use the store.

    For scale: the same workload with the sync calls made on the loop thread stalls it for
    seconds (measured: about 4 s on DynamoDB Local, 8 s on moto).
    """

    async def worker(n: int) -> None:
        saga_id = f"w{n}"
        await insert(async_store, saga_id)
        assert await async_store.get_by_id(NAME, saga_id) is not None
        assert await async_store.get_by_correlation_id(NAME, f"order-{saga_id}") is not None
        await async_store.modify(NAME, "shared", increment, max_attempts=500)
        await async_store.delete(NAME, saga_id)

    async def scenario() -> tuple[list[float], OrderSaga | None]:
        await insert(async_store, "shared")
        stop = asyncio.Event()
        lags: list[float] = []
        beat = asyncio.create_task(heartbeat(stop, lags))
        await asyncio.sleep(0)
        try:
            await asyncio.gather(*(worker(n) for n in range(64)))
        finally:
            stop.set()
            await beat
        return lags, await async_store.get_by_id(NAME, "shared")

    # A full garbage collection stops every thread of the process, for a time that depends
    # on the heap of the whole test run (pytest, moto's in-process server), not on the store.
    gc.collect()
    gc.disable()
    # Worker threads running Python (botocore; moto's whole server, in this process) hold the
    # GIL in turns of sys.getswitchinterval(); the loop thread gives it up at every select()
    # and queues again for it each time. A shorter turn shortens those queues; it cannot hide
    # work done on the loop thread, which would still delay the heartbeat by its full length.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    # Only for the failure message: how late a plain thread of this process wakes up over
    # the same period. If it stalls as long as the loop, the machine was overloaded.
    control_lags: list[float] = []
    stop_control = threading.Event()
    control = threading.Thread(target=thread_heartbeat, args=(stop_control, control_lags))
    control.start()
    try:
        lags, shared = run(scenario())
    finally:
        stop_control.set()
        control.join()
        sys.setswitchinterval(switch_interval)
        gc.enable()
    assert shared is not None
    assert shared.total_cents == 64
    assert len(lags) >= 5, "the work ended before the heartbeat could measure anything"
    assert max(lags) < LAG_BOUND, (
        f"the loop stalled for {max(lags) * 1000:.0f} ms (a plain thread of this process, "
        f"at most {max(control_lags, default=0) * 1000:.0f} ms)"
    )


# -- lifecycle ------------------------------------------------------------------------------


def test_close_waits_for_calls_in_flight_and_refuses_new_ones(
    make_async_store: MakeAsyncStore,
) -> None:
    store = make_async_store()

    async def scenario() -> None:
        async with store as entered:
            assert entered is store
            await insert(store, "c")
            in_flight = [asyncio.ensure_future(store.get_by_id(NAME, "c")) for _ in range(16)]
            await asyncio.sleep(0)  # every call is handed to the pool
            await store.aclose()
            assert all(state is not None for state in await asyncio.gather(*in_flight))
        assert store.closed
        await store.aclose()  # idempotent

        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.get_by_id(NAME, "c"),
            lambda: store.get_by_correlation_id(NAME, "order-c"),
            lambda: store.insert(NAME, "x", OrderSaga()),
            lambda: store.update(NAME, OrderSaga(saga_id="c", correlation_id="x", version=0), 0),
            lambda: store.delete(NAME, "c"),
            lambda: store.modify(NAME, "c", increment),
        ]
        for call in calls:
            with pytest.raises(SagaStoreError, match="store is closed"):
                await call()

    run(scenario())
    assert store.sync.connection._client is None  # the HTTP connections were closed
    assert store.sync.get_by_id(NAME, "c") is not None  # the sync store is not stuck


def test_concurrent_and_repeated_aclose(make_async_store: MakeAsyncStore) -> None:
    store = make_async_store()

    async def scenario() -> None:
        await insert(store, "r")
        await asyncio.gather(store.aclose(), store.aclose(), store.aclose())

    run(scenario())
    run(store.aclose())  # from another event loop too
    assert store.closed


# -- construction (no requests) -------------------------------------------------------------


def test_options_are_forwarded_and_the_pool_sized() -> None:
    store: AsyncDynamoDBSagaStore[OrderSaga] = AsyncDynamoDBSagaStore(
        OrderSaga, max_workers=3, table_name="orders", ttl_days=7, region=REGION
    )
    try:
        assert (store.table_name, store.model, store.max_workers) == ("orders", OrderSaga, 3)
        assert store.sync.ttl_days == 7
        assert store.sync.region == REGION
        assert store.sync.connection.client.meta.config.max_pool_connections == 3
        assert "orders" in repr(store)
    finally:
        run(store.aclose())

    explicit: AsyncDynamoDBSagaStore[OrderSaga] = AsyncDynamoDBSagaStore(
        OrderSaga, max_workers=3, max_pool_connections=20
    )
    assert explicit.sync.connection.client.meta.config.max_pool_connections == 20
    run(explicit.aclose())

    # An existing connection fixes its own pool: nothing is added that would conflict.
    shared = AsyncDynamoDBSagaStore(OrderSaga, connection=Connection(region=REGION))
    assert shared.sync.connection is not None
    run(shared.aclose())


def test_bad_configuration_is_refused_at_construction() -> None:
    with pytest.raises(SagaValidationError) as caught:
        AsyncDynamoDBSagaStore(OrderSaga, max_workers=0)
    assert caught.value.field == "max_workers"
    with pytest.raises(SagaValidationError) as caught:
        AsyncDynamoDBSagaStore(OrderSaga, ttl_days=-1)
    assert caught.value.field == "ttl_days"
    with pytest.raises(SagaValidationError) as caught:
        AsyncDynamoDBSagaStore(dict)  # type: ignore[type-var]
    assert caught.value.field == "model"
    with pytest.raises(TypeError):
        AsyncDynamoDBSagaStore(OrderSaga, no_such_option=1)


def test_write_landed_reads_the_write_token(
    async_store: AsyncDynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    def unresolved(saga_id: str, version: int, token: str) -> SagaStoreUnavailableError:
        error = SagaStoreUnavailableError(
            "UpdateItem", None, "reset", attempts=5, may_have_landed=True
        )
        error.write = UnresolvedWrite(NAME, saga_id, version, token)
        return error

    async def scenario() -> tuple[bool, ...]:
        state = await insert(async_store, "landed")
        inserted_as = incarnation_of(state)
        assert inserted_as
        await async_store.update(NAME, state, 0)
        recorder.take()
        answers = (
            await async_store.write_landed(unresolved("landed", 0, inserted_as)),
            await async_store.write_landed(unresolved("landed", 0, "someone-else")),
            await async_store.write_landed(unresolved("landed", 1, "someone-else")),
            await async_store.write_landed(unresolved("ghost", 0, inserted_as)),
        )
        assert recorder.take() == ["GetItem"] * 4
        with pytest.raises(SagaValidationError):
            await async_store.write_landed(
                SagaStoreUnavailableError("GetItem", None, "x", attempts=1, may_have_landed=False)
            )
        return answers

    assert run(scenario()) == (True, False, False, False)


# -- the native transport ---------------------------------------------------------------------


@pytest.mark.ddblocal
def test_without_aiohttp_every_request_goes_to_the_pool(
    dynamodb_local_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aio, "aiohttp_available", lambda: False)
    store: AsyncDynamoDBSagaStore[OrderSaga] = AsyncDynamoDBSagaStore(
        OrderSaga,
        table_name=f"sagas-aio-{uuid.uuid4().hex[:12]}",
        endpoint=dynamodb_local_endpoint,
        region=REGION,
        credentials=CREDENTIALS,
    )
    assert not store.native
    assert "native=False" in repr(store)
    create_table(store.sync)
    sender_threads: set[str] = set()

    def observe(operation: str, request: dict[str, Any]) -> None:
        sender_threads.add(threading.current_thread().name)

    store.sync._observe_requests(observe)  # called where each attempt is sent from
    botocore_threads: set[str] = set()
    store.sync.connection.client.meta.events.register(
        "before-send.dynamodb", lambda **_: botocore_threads.add(threading.current_thread().name)
    )

    async def scenario() -> OrderSaga | None:
        state = OrderSaga()
        await store.insert(NAME, "c", state)
        await store.modify(NAME, state.saga_id, increment)
        return await store.get_by_id(NAME, state.saga_id)

    try:
        final = run(scenario())
    finally:
        run(store.aclose())
        Backend("dynamodb-local", dynamodb_local_endpoint, 0).client().delete_table(
            TableName=store.table_name
        )
    assert final is not None
    assert (final.total_cents, final.version) == (1, 1)
    assert botocore_threads
    assert all(name.startswith("saga-store") for name in botocore_threads)
    assert sender_threads == {threading.main_thread().name}  # attempts start on the loop


@pytest.mark.ddblocal
def test_the_native_store_sends_nothing_through_botocore(
    dynamodb_local_endpoint: str,
) -> None:
    store: AsyncDynamoDBSagaStore[OrderSaga] = AsyncDynamoDBSagaStore(
        OrderSaga,
        table_name=f"sagas-aio-{uuid.uuid4().hex[:12]}",
        endpoint=dynamodb_local_endpoint,
        region=REGION,
        credentials=CREDENTIALS,
        max_workers=4,
    )
    assert store.native
    create_table(store.sync)
    through_botocore: list[str] = []
    store.sync.connection.client.meta.events.register(
        "before-send.dynamodb", lambda **kwargs: through_botocore.append("sent")
    )

    async def scenario() -> OrderSaga | None:
        state = OrderSaga()
        await store.insert(NAME, "c", state)
        await asyncio.gather(
            *(store.modify(NAME, state.saga_id, increment, max_attempts=200) for _ in range(16))
        )
        return await store.get_by_id(NAME, state.saga_id)

    try:
        first = run(scenario())
        second = run(scenario())  # another event loop: the store follows it
    finally:
        run(store.aclose())
        Backend("dynamodb-local", dynamodb_local_endpoint, 0).client().delete_table(
            TableName=store.table_name
        )
    assert first is not None
    assert second is not None
    assert (first.total_cents, second.total_cents) == (16, 16)
    assert through_botocore == []
    assert not any(thread.name.startswith("saga-store") for thread in threading.enumerate())


@pytest.mark.ddblocal
def test_cancelled_calls_leave_the_store_consistent_and_usable(
    faulty: tuple[FaultInjector, DynamoDBProxy],
) -> None:
    """Calls cancelled at every point of their requests (some held by the proxy after
    DynamoDB applied them) never make a later call read another call's response."""
    injector, proxy = faulty
    sync = store_behind(proxy, CounterSaga)
    store: AsyncDynamoDBSagaStore[CounterSaga] = AsyncDynamoDBSagaStore(
        CounterSaga,
        table_name=sync.table_name,
        endpoint=proxy.endpoint,
        region=REGION,
        credentials=CREDENTIALS,
        max_workers=8,
    )
    proxy.drop_delay = 0.05
    chosen = random.Random(7)

    def step(state: CounterSaga) -> None:
        state.count += 1
        state.ops = [*state.ops, str(state.version + 1)]

    async def scenario() -> tuple[CounterSaga | None, int]:
        saga = CounterSaga(saga_id="counted")
        await store.insert("CounterSaga", "c", saga)
        injector.rate = 0.2
        injector.kinds = ("forward-then-drop-response",)
        tasks = [
            asyncio.ensure_future(store.modify("CounterSaga", "counted", step, max_attempts=500))
            for _ in range(40)
        ]
        for task in chosen.sample(tasks, 20):
            await asyncio.sleep(chosen.uniform(0, 0.02))
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        injector.rate = 0.0
        finished = [o for o in outcomes if isinstance(o, CounterSaga)]
        # After the cancellations, each call still gets its own answer.
        for _ in range(10):
            before = await store.get_by_id("CounterSaga", "counted")
            after = await store.modify("CounterSaga", "counted", step)
            assert before is not None
            assert after.version == before.version + 1
            assert after.count == before.count + 1
        return await store.get_by_id("CounterSaga", "counted"), len(finished)

    try:
        final, finished = run(scenario())
    finally:
        run(store.aclose())
        sync.close()
    assert final is not None
    # Every applied step bumped count and version together, and recorded its version once.
    assert final.count == final.version
    assert final.ops == [str(version) for version in range(1, final.version + 1)]
    assert finished + 10 <= final.count  # a cancelled step may have been applied too
