"""The store contract, on every backend: one request per call, saga-bus version semantics."""

from __future__ import annotations

import calendar
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    SagaAlreadyExistsError,
    SagaNotFoundError,
    SagaStateMetadata,
    SagaStoreError,
    SagaValidationError,
)
from tests.conftest import Backend, RequestRecorder
from tests.models import OrderSaga, OrderSagaV1, PaymentSaga

NAME = "OrderSaga"


def raw_item(
    backend: Backend, store: DynamoDBSagaStore[Any], saga_id: str, name: str = NAME
) -> Any:
    """The item as stored, read behind the store's back."""
    response = backend.client().get_item(
        TableName=store.table_name,
        Key={"sagaName": {"S": name}, "sagaId": {"S": saga_id}},
        ConsistentRead=True,
    )
    return response.get("Item")


def all_items(backend: Backend, store: DynamoDBSagaStore[Any]) -> list[Any]:
    items: list[Any] = backend.client().scan(TableName=store.table_name, ConsistentRead=True)[
        "Items"
    ]
    return items


def inserted(
    store: DynamoDBSagaStore[Any], correlation_id: str = "order-1", **fields: Any
) -> OrderSaga:
    state = OrderSaga(**fields)
    store.insert(NAME, correlation_id, state)
    return state


# -- insert ---------------------------------------------------------------------------------


def test_insert_assigns_id_version_and_timestamps(store: Any, recorder: RequestRecorder) -> None:
    before = datetime.now(timezone.utc)
    state = OrderSaga(total_cents=1250, created_at=None, updated_at=None)
    store.insert(NAME, "order-1", state)

    assert recorder.take() == ["PutItem"]
    assert state.saga_name == NAME
    assert state.correlation_id == "order-1"
    assert uuid.UUID(state.saga_id).version == 4
    assert state.version == 0
    assert before <= state.created_at == state.updated_at <= datetime.now(timezone.utc)


def test_insert_keeps_a_given_id_and_round_trips(store: Any, recorder: RequestRecorder) -> None:
    state = inserted(store, saga_id="saga-42", total_cents=7, items=["a", "b"], extra={"k": 1})
    recorder.take()

    loaded = store.get_by_id(NAME, "saga-42")

    assert recorder.take() == ["GetItem"]
    assert isinstance(loaded, OrderSaga)
    assert loaded == state
    assert loaded.version == 0
    assert loaded.items == ["a", "b"]


def test_get_by_id_is_strongly_consistent(store: Any, recorder: RequestRecorder) -> None:
    inserted(store, saga_id="s1")
    recorder.take()
    store.get_by_id(NAME, "s1")
    ((operation, params),) = recorder.requests
    assert operation == "GetItem"
    assert params["ConsistentRead"] is True


def test_get_missing_saga_returns_none(store: Any, recorder: RequestRecorder) -> None:
    assert store.get_by_id(NAME, "nope") is None
    assert store.get_by_correlation_id(NAME, "nope") is None
    assert recorder.take() == ["GetItem", "Query"]


def test_duplicate_insert_is_refused_and_leaves_the_stored_saga(
    store: Any, backend: Backend, recorder: RequestRecorder
) -> None:
    first = inserted(store, saga_id="dup", total_cents=1)
    stored = raw_item(backend, store, "dup")
    recorder.take()

    with pytest.raises(SagaAlreadyExistsError) as caught:
        store.insert(NAME, "order-2", OrderSaga(saga_id="dup", total_cents=999))

    assert recorder.take() == ["PutItem"]
    assert caught.value.saga_id == "dup"
    assert isinstance(caught.value.__cause__, Exception)  # the AWS error is chained
    assert raw_item(backend, store, "dup") == stored
    assert store.get_by_id(NAME, "dup") == first


def test_insert_refuses_a_state_with_a_version(store: Any, recorder: RequestRecorder) -> None:
    with pytest.raises(SagaValidationError, match=r"state\.version"):
        store.insert(NAME, "c", OrderSaga(version=3))
    assert recorder.take() == []


# -- get_by_correlation_id ------------------------------------------------------------------


def test_get_by_correlation_id_queries_the_index_once(
    store: Any, recorder: RequestRecorder
) -> None:
    state = inserted(store, correlation_id="order-77", total_cents=77)
    inserted(store, correlation_id="order-78")
    recorder.take()

    found = store.get_by_correlation_id(NAME, "order-77")

    assert found == state
    ((operation, params),) = recorder.requests
    assert operation == "Query"
    assert params["IndexName"] == "correlationIndex"
    assert "ConsistentRead" not in params  # a GSI cannot be read consistently


def test_correlation_lookup_is_per_saga_name(make_store: Any) -> None:
    store = make_store(models={"PaymentSaga": PaymentSaga})
    order = inserted(store, correlation_id="shared")
    payment = PaymentSaga(amount_cents=5)
    store.insert("PaymentSaga", "shared", payment)

    assert store.get_by_correlation_id(NAME, "shared") == order
    assert store.get_by_correlation_id("PaymentSaga", "shared") == payment


# -- update ---------------------------------------------------------------------------------


def test_update_orm_style_loaded_changed_saved(
    store: Any, backend: Backend, recorder: RequestRecorder
) -> None:
    inserted(store, saga_id="u1")
    loaded = store.get_by_id(NAME, "u1")
    loaded.total_cents = 500
    loaded.status = "paid"
    recorder.take()

    store.update(NAME, loaded, 0)

    assert recorder.take() == ["UpdateItem"]
    assert loaded.version == 1
    again = store.get_by_id(NAME, "u1")
    assert (again.version, again.total_cents, again.status) == (1, 500, "paid")
    assert again.updated_at > again.created_at
    assert raw_item(backend, store, "u1")["version"] == {"N": "1"}


def test_update_saga_bus_style_version_already_incremented(store: Any) -> None:
    state = inserted(store, saga_id="u2")
    state.version = 1  # saga-bus increments before it saves
    state.total_cents = 9
    store.update(NAME, state, 0)
    assert state.version == 1
    assert store.get_by_id(NAME, "u2").version == 1


@pytest.mark.parametrize("version", [None, 2, 5])
def test_update_refuses_a_state_version_out_of_step(
    store: Any, recorder: RequestRecorder, version: int | None
) -> None:
    state = inserted(store, saga_id="u3")
    state.total_cents = 1
    if version is None:
        state.attribute_values.pop("version")
    else:
        state.version = version
    recorder.take()
    with pytest.raises(SagaValidationError, match=r"state\.version"):
        store.update(NAME, state, 0)
    assert recorder.take() == []
    assert store.get_by_id(NAME, "u3").total_cents == 0


def test_stale_update_reports_the_actual_version_in_one_request(
    store: Any, recorder: RequestRecorder
) -> None:
    state = inserted(store, saga_id="c1")
    for _ in range(3):
        store.update(NAME, state, state.version)
    stale = store.get_by_id(NAME, "c1")
    stale.version = 1
    recorder.take()

    with pytest.raises(ConcurrencyError) as caught:
        store.update(NAME, stale, 1)

    # Both backends return the old item with the failed condition: no extra read.
    assert recorder.take() == ["UpdateItem"]
    error = caught.value
    assert (error.saga_id, error.expected_version, error.actual_version) == ("c1", 1, 3)
    assert stale.version == 1  # unchanged on failure


def test_lost_race_between_two_writers(store: Any) -> None:
    inserted(store, saga_id="race")
    alice = store.get_by_id(NAME, "race")
    bob = store.get_by_id(NAME, "race")
    alice.status = "paid"
    bob.status = "cancelled"

    store.update(NAME, alice, 0)
    with pytest.raises(ConcurrencyError) as caught:
        store.update(NAME, bob, 0)

    assert (caught.value.expected_version, caught.value.actual_version) == (0, 1)
    final = store.get_by_id(NAME, "race")
    assert (final.status, final.version) == ("paid", 1)


def test_update_of_a_missing_saga_never_creates_it(
    store: Any, backend: Backend, recorder: RequestRecorder
) -> None:
    ghost = OrderSaga(saga_id="ghost", correlation_id="c", version=0)
    with pytest.raises(SagaNotFoundError) as caught:
        store.update(NAME, ghost, 0)
    assert isinstance(caught.value, LookupError)
    assert recorder.take() == ["UpdateItem"]
    assert raw_item(backend, store, "ghost") is None


def test_read_on_conflict_tells_missing_from_stale_with_one_read(
    make_store: Any, recorder: RequestRecorder
) -> None:
    store = make_store(read_on_conflict=True)
    state = inserted(store, saga_id="roc")
    store.update(NAME, state, 0)
    recorder.take()
    with pytest.raises(ConcurrencyError) as caught:
        store.update(NAME, state, 0)
    assert caught.value.actual_version == 1
    assert recorder.take() == ["UpdateItem"]  # the old item came with the failure
    with pytest.raises(SagaNotFoundError):
        store.update(NAME, OrderSaga(saga_id="none", correlation_id="c", version=0), 0)
    assert recorder.take() == ["UpdateItem", "GetItem"]


def test_update_after_delete_does_not_recreate(store: Any, backend: Backend) -> None:
    state = inserted(store, saga_id="gone")
    store.delete(NAME, "gone")
    state.total_cents = 3
    with pytest.raises(SagaNotFoundError):
        store.update(NAME, state, 0)
    assert raw_item(backend, store, "gone") is None
    assert all_items(backend, store) == []


def test_attribute_of_a_newer_model_survives_an_older_worker(
    make_store: Any, backend: Backend
) -> None:
    new_store = make_store(OrderSaga)
    old_store = make_store(OrderSagaV1, table_name=new_store.table_name)
    inserted(new_store, saga_id="roll", note="keep me", extra={"k": "v"})

    old = old_store.get_by_id(NAME, "roll")
    assert isinstance(old, OrderSagaV1)
    old.status = "paid"
    old_store.update(NAME, old, 0)

    item = raw_item(backend, new_store, "roll")
    assert item["note"] == {"S": "keep me"}
    assert item["status"] == {"S": "paid"}
    reread = new_store.get_by_id(NAME, "roll")
    assert (reread.note, reread.status, reread.version) == ("keep me", "paid", 1)


def test_declared_attribute_set_to_none_is_removed(store: Any, backend: Backend) -> None:
    state = inserted(store, saga_id="rm", note="temporary", trace_parent="00-abc-def-01")
    state.note = None
    state.trace_parent = None
    store.update(NAME, state, 0)
    item = raw_item(backend, store, "rm")
    assert "note" not in item
    assert "traceParent" not in item


# -- delete ---------------------------------------------------------------------------------


def test_delete_is_idempotent(store: Any, recorder: RequestRecorder) -> None:
    inserted(store, saga_id="d1")
    recorder.take()
    store.delete(NAME, "d1")
    store.delete(NAME, "d1")
    assert recorder.take() == ["DeleteItem", "DeleteItem"]
    assert store.get_by_id(NAME, "d1") is None


# -- several saga types in one table ---------------------------------------------------------


def test_same_saga_id_under_two_saga_names(make_store: Any, backend: Backend) -> None:
    store = make_store(models={"PaymentSaga": PaymentSaga})
    order = inserted(store, saga_id="same", total_cents=1)
    payment = PaymentSaga(saga_id="same", amount_cents=2)
    store.insert("PaymentSaga", "pay-1", payment)

    assert len(all_items(backend, store)) == 2
    assert store.get_by_id(NAME, "same") == order
    loaded = store.get_by_id("PaymentSaga", "same")
    assert isinstance(loaded, PaymentSaga)
    assert loaded.amount_cents == 2
    store.delete(NAME, "same")
    assert store.get_by_id("PaymentSaga", "same") == payment


def test_state_of_the_wrong_model_is_refused(make_store: Any, recorder: RequestRecorder) -> None:
    store = make_store(models={"PaymentSaga": PaymentSaga})
    recorder.take()
    with pytest.raises(SagaValidationError, match="PaymentSaga"):
        store.insert("PaymentSaga", "c", OrderSaga())
    assert recorder.take() == []


# -- TTL ------------------------------------------------------------------------------------


def test_ttl_only_on_completion(make_store: Any, backend: Backend) -> None:
    store = make_store(ttl_days=30)
    state = inserted(store, saga_id="ttl")
    assert "ttl" not in raw_item(backend, store, "ttl")

    state.status = "shipped"
    store.update(NAME, state, 0)
    assert "ttl" not in raw_item(backend, store, "ttl")

    state.is_completed = True
    store.update(NAME, state, 1)
    item = raw_item(backend, store, "ttl")
    expected = calendar.timegm((state.updated_at + timedelta(days=30)).utctimetuple())
    assert item["ttl"] == {"N": str(expected)}
    assert store.get_by_id(NAME, "ttl").metadata.is_completed is True

    # Re-opened: the expiry goes away again.
    state.is_completed = False
    store.update(NAME, state, 2)
    assert "ttl" not in raw_item(backend, store, "ttl")


def test_without_ttl_days_the_state_ttl_is_kept(store: Any, backend: Backend) -> None:
    expiry = datetime(2030, 1, 1, tzinfo=timezone.utc)
    inserted(store, saga_id="own-ttl", ttl=expiry)
    assert raw_item(backend, store, "own-ttl")["ttl"] == {
        "N": str(calendar.timegm(expiry.utctimetuple()))
    }


# -- metadata -------------------------------------------------------------------------------


def test_metadata_snapshot(store: Any) -> None:
    state = inserted(store, saga_id="meta", trace_parent="00-1-2-01", timeout_ms=5000)
    meta = store.get_by_id(NAME, "meta").metadata
    assert isinstance(meta, SagaStateMetadata)
    assert (meta.saga_id, meta.version, meta.trace_parent, meta.timeout_ms) == (
        "meta",
        0,
        "00-1-2-01",
        5000,
    )
    assert meta.created_at == state.created_at
    with pytest.raises(AttributeError):
        meta.version = 5  # type: ignore[misc]


# -- concurrency ----------------------------------------------------------------------------


def test_eight_threads_of_optimistic_increments_lose_nothing(make_store: Any) -> None:
    threads, increments = 8, 25
    store = make_store(max_pool_connections=threads)
    inserted(store, saga_id="counter")
    conflicts = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(increments):
                while True:
                    state = store.get_by_id(NAME, "counter")
                    state.total_cents += 1
                    try:
                        store.update(NAME, state, state.version)
                        break
                    except ConcurrencyError:
                        conflicts.append(1)
        except BaseException as exc:  # surfaced below: a thread must not fail silently
            errors.append(exc)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()

    assert errors == []
    final = store.get_by_id(NAME, "counter")
    assert final.total_cents == threads * increments
    assert final.version == threads * increments


# -- IAM ------------------------------------------------------------------------------------

SEED_IAM_ACTIONS = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"}


def test_data_plane_uses_only_the_seed_iam_actions(store: Any, recorder: RequestRecorder) -> None:
    state = inserted(store, saga_id="iam")
    store.get_by_id(NAME, "iam")
    store.get_by_correlation_id(NAME, "order-1")
    store.update(NAME, state, 0)
    with pytest.raises(ConcurrencyError):
        store.update(NAME, state, 0)
    with pytest.raises(SagaAlreadyExistsError):
        store.insert(NAME, "x", OrderSaga(saga_id="iam"))
    store.delete(NAME, "iam")
    with pytest.raises(SagaNotFoundError):
        store.update(NAME, state, 1)

    sent = recorder.take()
    assert set(sent) <= SEED_IAM_ACTIONS
    assert sent == [
        "PutItem",
        "GetItem",
        "Query",
        "UpdateItem",
        "UpdateItem",
        "PutItem",
        "DeleteItem",
        "UpdateItem",
    ]


def test_errors_share_one_root() -> None:
    for error in (ConcurrencyError, SagaAlreadyExistsError, SagaNotFoundError, SagaValidationError):
        assert issubclass(error, SagaStoreError)
