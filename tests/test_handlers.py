"""The handler's path: ``modify`` skips writes that change nothing, and
``modify_by_correlation_id`` starts or continues a saga, on every backend, sync and asyncio."""

from __future__ import annotations

import asyncio
import copy
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from saga_store_pynamo import (
    DynamoDBSagaStore,
    SagaNotFoundError,
    SagaValidationError,
)
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from tests.conftest import Backend, RequestRecorder
from tests.models import CounterSaga, OrderSaga

NAME = "CounterSaga"
MakeStore = Callable[..., DynamoDBSagaStore[Any]]


def step(op: str) -> Callable[[CounterSaga], None]:
    """A handler step that records ``op`` once (a duplicate delivery changes nothing)."""

    def apply(state: CounterSaga) -> None:
        if op not in state.ops:
            state.count += 1
            state.ops = [*state.ops, op]

    return apply


@pytest.fixture
def counters(make_store: MakeStore) -> DynamoDBSagaStore[CounterSaga]:
    return make_store(CounterSaga)


@pytest.fixture
def unique_counters(make_store: MakeStore) -> DynamoDBSagaStore[CounterSaga]:
    return make_store(CounterSaga, unique_correlation=True)


@pytest.fixture
def async_counters(
    backend: Backend, make_store: MakeStore
) -> Iterator[Callable[..., AsyncDynamoDBSagaStore[CounterSaga]]]:
    """Async stores on a fresh table (made through ``make_store``, so it is dropped after)."""
    made: list[AsyncDynamoDBSagaStore[CounterSaga]] = []

    def factory(**options: Any) -> AsyncDynamoDBSagaStore[CounterSaga]:
        table = make_store(CounterSaga, **options).table_name
        store: AsyncDynamoDBSagaStore[CounterSaga] = AsyncDynamoDBSagaStore(
            CounterSaga, **backend.options({"table_name": table, **options})
        )
        made.append(store)
        return store

    yield factory
    for store in made:
        asyncio.run(store.aclose())


# -- modify writes only when fn changed something -------------------------------------------


def test_a_step_that_changes_nothing_sends_only_the_read(
    counters: DynamoDBSagaStore[CounterSaga], recorder: RequestRecorder
) -> None:
    counters.insert(NAME, "c", CounterSaga(saga_id="s"))
    first = counters.modify(NAME, "s", step("paid"))
    assert first.version == 1
    recorder.take()

    again = counters.modify(NAME, "s", step("paid"))  # the same message, delivered again
    assert recorder.take() == ["GetItem"]
    assert (again.version, again.count, again.ops) == (1, 1, ["paid"])
    stored = counters.get_by_id(NAME, "s")
    assert stored is not None
    assert stored.updated_at == first.updated_at  # nothing was written


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda state: setattr(state, "count", state.count), id="same-value"),
        pytest.param(lambda state: setattr(state, "ops", list(state.ops)), id="equal-copy"),
        pytest.param(
            lambda state: setattr(state, "updated_at", state.created_at), id="only-updated-at"
        ),
        pytest.param(copy.deepcopy, id="equal-replacement"),
    ],
)
def test_what_counts_as_no_change(
    counters: DynamoDBSagaStore[CounterSaga],
    recorder: RequestRecorder,
    change: Callable[[CounterSaga], Any],
) -> None:
    counters.insert(NAME, "c", CounterSaga(saga_id="n", ops=["a"], count=1))
    recorder.take()
    result = counters.modify(NAME, "n", change)
    assert recorder.take() == ["GetItem"]
    assert result.version == 0


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda state: setattr(state, "count", 2), id="a-field"),
        pytest.param(lambda state: state.ops.append("b"), id="a-list-in-place"),
        pytest.param(lambda state: setattr(state, "is_completed", True), id="completed"),
        pytest.param(lambda state: setattr(state, "creator", None), id="set-to-none-from-value"),
    ],
)
def test_every_real_change_is_written(
    counters: DynamoDBSagaStore[CounterSaga],
    recorder: RequestRecorder,
    change: Callable[[CounterSaga], Any],
) -> None:
    counters.insert(NAME, "c", CounterSaga(saga_id="w", ops=["a"], count=1, creator="x"))
    recorder.take()
    result = counters.modify(NAME, "w", change)
    assert recorder.take() == ["GetItem", "UpdateItem"]
    assert result.version == 1


def test_with_ttl_days_the_derived_ttl_is_not_a_change(make_store: MakeStore) -> None:
    store = make_store(CounterSaga, ttl_days=1)
    store.insert(NAME, "c", CounterSaga(saga_id="t", is_completed=True))
    recorder = RequestRecorder()
    recorder.attach(store)
    result = store.modify(NAME, "t", lambda state: None)
    assert recorder.take() == ["GetItem"]
    assert result.version == 0


def test_the_async_store_skips_unchanged_steps_too(
    async_counters: Callable[..., AsyncDynamoDBSagaStore[CounterSaga]],
) -> None:
    store = async_counters()
    recorder = RequestRecorder()
    recorder.attach(store.sync)

    async def scenario() -> CounterSaga:
        await store.insert(NAME, "c", CounterSaga(saga_id="a"))
        await store.modify(NAME, "a", step("x"))
        recorder.take()

        async def duplicate(state: CounterSaga) -> None:
            await asyncio.sleep(0)
            step("x")(state)

        return await store.modify(NAME, "a", duplicate)

    result = asyncio.run(scenario())
    assert recorder.take() == ["GetItem"]
    assert (result.version, result.ops) == (1, ["x"])


# -- modify_by_correlation_id ---------------------------------------------------------------


@pytest.mark.parametrize("unique", [False, True], ids=["index", "unique"])
def test_it_continues_an_existing_saga(
    make_store: MakeStore, recorder: RequestRecorder, unique: bool
) -> None:
    store = make_store(CounterSaga, unique_correlation=unique)
    store.insert(NAME, "order-1", CounterSaga())
    recorder.take()
    result = store.modify_by_correlation_id(
        NAME, "order-1", step("paid"), start=lambda: pytest.fail("start called")
    )
    assert (result.version, result.count, result.ops) == (1, 1, ["paid"])
    lookup = "GetItem" if unique else "Query"
    assert recorder.take() == [lookup, "UpdateItem"]  # the lookup's state is not read again


@pytest.mark.parametrize("unique", [False, True], ids=["index", "unique"])
def test_it_starts_a_missing_saga_with_one_write(
    make_store: MakeStore, recorder: RequestRecorder, unique: bool
) -> None:
    store = make_store(CounterSaga, unique_correlation=unique)
    recorder.take()
    result = store.modify_by_correlation_id(
        NAME, "order-2", step("created"), start=lambda: CounterSaga(creator="handler")
    )
    assert (result.version, result.count, result.ops) == (0, 1, ["created"])
    assert result.correlation_id == "order-2"
    fallback = ["GetItem", "Query"] if unique else ["Query"]  # unique: key, then the index
    assert recorder.take() == [*fallback, "PutItem"]
    found = store.get_by_correlation_id(NAME, "order-2")
    assert found is not None
    assert (found.saga_id, found.creator, found.ops) == (result.saga_id, "handler", ["created"])


def test_without_start_a_missing_saga_is_not_found(
    unique_counters: DynamoDBSagaStore[CounterSaga], recorder: RequestRecorder
) -> None:
    recorder.take()
    with pytest.raises(SagaNotFoundError) as caught:
        unique_counters.modify_by_correlation_id(NAME, "nobody", step("x"))
    assert (caught.value.saga_id, caught.value.correlation_id) == (None, "nobody")
    assert "nobody" in str(caught.value)
    assert "PutItem" not in recorder.take()


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (lambda: None, "got NoneType"),
        (lambda: OrderSaga(), "got OrderSaga"),
        (lambda: CounterSaga(version=3), "version 3"),
    ],
)
def test_a_bad_start_writes_nothing(
    unique_counters: DynamoDBSagaStore[CounterSaga],
    recorder: RequestRecorder,
    start: Callable[[], Any],
    message: str,
) -> None:
    recorder.take()
    with pytest.raises(SagaValidationError) as caught:
        unique_counters.modify_by_correlation_id(NAME, "bad", step("x"), start=start)
    assert caught.value.field == "start"
    assert message in str(caught.value)
    assert "PutItem" not in recorder.take()


def test_sixteen_workers_racing_to_start_one_saga_make_one_saga_with_every_step(
    unique_counters: DynamoDBSagaStore[CounterSaga],
) -> None:
    workers = 16
    barrier = threading.Barrier(workers)
    results: list[CounterSaga] = []
    errors: list[BaseException] = []

    def handle(n: int) -> None:
        barrier.wait()
        try:
            results.append(
                unique_counters.modify_by_correlation_id(
                    NAME,
                    "race",
                    step(f"m{n}"),
                    start=lambda: CounterSaga(creator=f"w{n}"),
                    max_attempts=200,
                    base_delay=0.001,
                    max_delay=0.02,
                )
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=handle, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sagas = unique_counters.find_by_name(NAME).items
    assert len(sagas) == 1
    (saga,) = sagas
    assert saga.count == workers
    assert sorted(saga.ops) == sorted(f"m{n}" for n in range(workers))
    assert saga.version == workers - 1  # one insert, then one update per other step
    assert [r.version for r in results].count(0) == 1  # exactly one call started it
    assert saga.creator == next(r.creator for r in results if r.version == 0)


def test_the_async_store_starts_or_continues_with_async_functions(
    async_counters: Callable[..., AsyncDynamoDBSagaStore[CounterSaga]],
) -> None:
    store = async_counters(unique_correlation=True)

    async def start() -> CounterSaga:
        await asyncio.sleep(0)
        return CounterSaga(creator="async")

    async def apply(state: CounterSaga) -> None:
        await asyncio.sleep(0)
        state.count += 1
        state.ops = [*state.ops, uuid.uuid4().hex[:6]]

    async def scenario() -> list[CounterSaga]:
        return list(
            await asyncio.gather(
                *(
                    store.modify_by_correlation_id(
                        NAME, "async-race", apply, start=start, max_attempts=200
                    )
                    for _ in range(16)
                )
            )
        )

    results = asyncio.run(scenario())
    assert [r.version for r in results].count(0) == 1
    final = asyncio.run(store.get_by_correlation_id(NAME, "async-race"))
    assert final is not None
    assert (final.count, len(final.ops), final.version, final.creator) == (16, 16, 15, "async")


def test_the_started_state_is_checked_before_anything_is_written(
    make_store: MakeStore, recorder: RequestRecorder
) -> None:
    store = make_store(CounterSaga)
    recorder.take()
    with pytest.raises(SagaValidationError):
        store.modify_by_correlation_id(
            NAME, "c", lambda state: OrderSaga(), start=lambda: CounterSaga()
        )
    assert recorder.take() == ["Query"]
