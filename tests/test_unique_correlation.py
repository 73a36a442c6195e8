"""unique_correlation: one saga per correlation id, enforced by DynamoDB's key condition."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from saga_store_pynamo import (
    DynamoDBSagaStore,
    SagaAlreadyExistsError,
    SagaValidationError,
    correlation_saga_id,
    create_table,
)
from tests.conftest import Backend, RequestRecorder
from tests.ddb_proxy import DynamoDBProxy, lagging_correlation_index
from tests.models import OrderSaga

NAME = "OrderSaga"


def count_sagas(backend: Backend, store: DynamoDBSagaStore[Any], correlation_id: str) -> int:
    items = backend.client().scan(TableName=store.table_name, ConsistentRead=True)["Items"]
    return sum(1 for item in items if item["correlationId"] == {"S": correlation_id})


# -- the derived id ------------------------------------------------------------------------------


def test_derived_id_is_a_stable_version_5_uuid() -> None:
    saga_id = correlation_saga_id("OrderSaga", "order-1")
    assert uuid.UUID(saga_id).version == 5
    assert saga_id == correlation_saga_id("OrderSaga", "order-1")
    # Pinned: stored sagas are keyed by this value, so it must never change between releases.
    assert saga_id == str(
        uuid.uuid5(uuid.UUID("6f1d3c1e-8a0b-5b64-9a59-5a6761c0ffee"), "9:OrderSagaorder-1")
    )


def test_derived_ids_of_distinct_pairs_differ() -> None:
    assert correlation_saga_id("ab", "c") != correlation_saga_id("a", "bc")
    assert correlation_saga_id("A", "x") != correlation_saga_id("B", "x")


# -- behaviour on both backends --------------------------------------------------------------------


def test_insert_derives_the_id_and_lookup_is_one_consistent_get(
    make_store: Any, recorder: RequestRecorder
) -> None:
    store = make_store(unique_correlation=True)
    state = OrderSaga(total_cents=5)
    store.insert(NAME, "order-7", state)
    assert state.saga_id == correlation_saga_id(NAME, "order-7")
    assert store.saga_id_for(NAME, "order-7") == state.saga_id
    recorder.take()

    found = store.get_by_correlation_id(NAME, "order-7")

    assert found == state
    ((operation, params),) = recorder.requests
    assert operation == "GetItem"
    assert params["ConsistentRead"] is True


def test_sixteen_racing_starts_make_exactly_one_saga(make_store: Any, backend: Backend) -> None:
    store = make_store(unique_correlation=True, max_pool_connections=16)
    barrier = threading.Barrier(16)
    won: list[str] = []
    refused: list[SagaAlreadyExistsError] = []
    other: list[BaseException] = []

    def start(worker: int) -> None:
        state = OrderSaga(total_cents=worker)  # a fresh state, as each message handler makes
        barrier.wait()
        try:
            store.insert(NAME, "order-race", state)
            won.append(state.saga_id)
        except SagaAlreadyExistsError as exc:
            refused.append(exc)
        except BaseException as exc:
            other.append(exc)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert other == []
    assert len(won) == 1
    assert len(refused) == 15
    assert count_sagas(backend, store, "order-race") == 1
    assert store.get_by_correlation_id(NAME, "order-race").saga_id == won[0]


def test_sagas_from_before_the_switch_are_still_found(
    make_store: Any, backend: Backend, recorder: RequestRecorder
) -> None:
    before = make_store()
    legacy = OrderSaga(total_cents=1)
    before.insert(NAME, "legacy-1", legacy)
    after = make_store(table_name=before.table_name, unique_correlation=True)
    recorder.take()

    found = after.get_by_correlation_id(NAME, "legacy-1")

    assert found == legacy
    assert recorder.take() == ["GetItem", "Query"]  # by key first, then the index
    found.total_cents = 2
    after.update(NAME, found, 0)
    assert after.get_by_id(NAME, legacy.saga_id).total_cents == 2
    after.delete(NAME, legacy.saga_id)
    assert count_sagas(backend, after, "legacy-1") == 0


def test_without_fallback_only_the_key_is_read(make_store: Any, recorder: RequestRecorder) -> None:
    before = make_store()
    before.insert(NAME, "legacy-2", OrderSaga())
    strict = make_store(
        table_name=before.table_name, unique_correlation=True, correlation_fallback=False
    )
    recorder.take()
    assert strict.get_by_correlation_id(NAME, "legacy-2") is None
    assert recorder.take() == ["GetItem"]


def test_a_foreign_saga_id_is_refused(make_store: Any, recorder: RequestRecorder) -> None:
    store = make_store(unique_correlation=True)
    recorder.take()
    with pytest.raises(SagaValidationError, match="derived from its correlation id"):
        store.insert(NAME, "order-8", OrderSaga(saga_id="my-own-id"))
    assert recorder.take() == []
    state = OrderSaga(saga_id=correlation_saga_id(NAME, "order-8"))
    store.insert(NAME, "order-8", state)  # the derived id itself is fine
    assert store.get_by_correlation_id(NAME, "order-8") == state


def test_correlation_id_cannot_change(make_store: Any, recorder: RequestRecorder) -> None:
    store = make_store(unique_correlation=True)
    state = OrderSaga()
    store.insert(NAME, "order-9", state)
    state.correlation_id = "order-10"
    recorder.take()
    with pytest.raises(SagaValidationError) as caught:
        store.update(NAME, state, 0)
    assert caught.value.field == "state.correlation_id"
    assert recorder.take() == []


def test_delete_frees_the_correlation_id_and_leaves_nothing(
    make_store: Any, backend: Backend
) -> None:
    store = make_store(unique_correlation=True)
    first = OrderSaga()
    store.insert(NAME, "order-11", first)
    store.delete(NAME, first.saga_id)
    assert backend.client().scan(TableName=store.table_name)["Items"] == []  # no orphan
    second = OrderSaga(total_cents=2)
    store.insert(NAME, "order-11", second)
    assert second.version == 0
    assert count_sagas(backend, store, "order-11") == 1


# -- a correlation index that lags, as a real GSI can ----------------------------------------------


@pytest.fixture
def lagging(dynamodb_local_endpoint: str) -> Iterator[tuple[Backend, DynamoDBProxy]]:
    """DynamoDB Local behind a proxy whose ``correlationIndex`` never has anything yet."""
    with DynamoDBProxy(dynamodb_local_endpoint, lagging_correlation_index) as proxy:
        yield Backend("dynamodb-local+lagging-index", proxy.endpoint, max_item_bytes=409_600), proxy


def lagging_store(backend: Backend, **options: Any) -> DynamoDBSagaStore[Any]:
    store = backend.store(table_name=f"lag-{uuid.uuid4().hex[:12]}", **options)
    create_table(store)
    return store


@pytest.mark.ddblocal
def test_unique_mode_does_not_depend_on_the_index(lagging: tuple[Backend, DynamoDBProxy]) -> None:
    backend, proxy = lagging
    store = lagging_store(backend, unique_correlation=True)
    try:
        state = OrderSaga()
        store.insert(NAME, "order-lag", state)
        assert store.get_by_correlation_id(NAME, "order-lag") == state
        with pytest.raises(SagaAlreadyExistsError):
            store.insert(NAME, "order-lag", OrderSaga())
        assert count_sagas(backend, store, "order-lag") == 1
        assert proxy.intercepted == []  # the index was never needed
    finally:
        store.connection.delete_table(store.table_name)


@pytest.mark.ddblocal
def test_seed_mode_misses_and_duplicates_when_the_index_lags(
    lagging: tuple[Backend, DynamoDBProxy],
) -> None:
    """The seed's weakness, documented: a lagging GSI hides the saga and lets a duplicate in."""
    backend, proxy = lagging
    store = lagging_store(backend)
    try:
        store.insert(NAME, "order-lag", OrderSaga())
        assert store.get_by_correlation_id(NAME, "order-lag") is None
        store.insert(NAME, "order-lag", OrderSaga())  # a second start is not refused
        assert count_sagas(backend, store, "order-lag") == 2
        assert proxy.intercepted == ["Query"]
    finally:
        store.connection.delete_table(store.table_name)


def test_lookup_by_key_checks_the_correlation_id(make_store: Any, backend: Backend) -> None:
    store = make_store(unique_correlation=True)
    state = OrderSaga(total_cents=5)
    store.insert(NAME, "order-21", state)
    # Changed behind the store's back (by hand, or by an older worker's full write).
    backend.client().update_item(
        TableName=store.table_name,
        Key={"sagaName": {"S": NAME}, "sagaId": {"S": state.saga_id}},
        UpdateExpression="SET correlationId = :c",
        ExpressionAttributeValues={":c": {"S": "order-22"}},
    )
    assert store.get_by_correlation_id(NAME, "order-21") is None
    found = store.get_by_correlation_id(NAME, "order-22")  # by the index fallback
    assert found is not None
    assert (found.saga_id, found.correlation_id) == (state.saga_id, "order-22")

    strict = make_store(
        unique_correlation=True, correlation_fallback=False, table_name=store.table_name
    )
    assert strict.get_by_correlation_id(NAME, "order-21") is None
