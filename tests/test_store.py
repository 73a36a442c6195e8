"""The store contract on every backend, run through the kit users get.

``TestOrderSagaContract`` is ``saga_store_pynamo.testing.SagaStoreContract`` pointed at
``OrderSaga``: the calls, one request each, saga-bus version semantics, bad input, TTL and
concurrency. The plain tests below cover what the contract cannot express generically: several
models in one table, an older model in a rolling deploy, OrderSaga's own fields, and more
threads.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import pytest

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    SagaAlreadyExistsError,
    SagaNotFoundError,
    SagaStoreError,
    SagaValidationError,
)
from saga_store_pynamo.testing import SagaStoreContract
from tests.conftest import Backend, RequestRecorder
from tests.models import OrderSaga, OrderSagaV1, PaymentSaga

NAME = "OrderSaga"


class TestOrderSagaContract(SagaStoreContract[OrderSaga]):
    """The contract with OrderSaga's own fields filled and changed."""

    model = OrderSaga

    def make_state(self) -> OrderSaga:
        return OrderSaga(
            order_id="order-1", total_cents=1250, items=["a", "b"], extra={"k": 1}, note="new"
        )

    def change_state(self, state: OrderSaga) -> None:
        super().change_state(state)
        state.total_cents += 100
        state.status = "paid"
        state.items = [*(state.items or []), "c"]


class TestOrderSagaContractWithOptions(TestOrderSagaContract):
    """The same contract with every option that changes what a call sends (moto only)."""

    backends = ("moto",)
    store_options: ClassVar[dict[str, Any]] = {
        "unique_correlation": True,
        "read_on_conflict": True,
        "ttl_days": 7,
    }


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


# -- OrderSaga's own fields -----------------------------------------------------------------


def test_order_fields_round_trip(store: Any, recorder: RequestRecorder) -> None:
    state = inserted(store, saga_id="saga-42", total_cents=7, items=["a", "b"], extra={"k": 1})
    recorder.take()

    loaded = store.get_by_id(NAME, "saga-42")

    assert recorder.take() == ["GetItem"]
    assert isinstance(loaded, OrderSaga)
    assert loaded == state
    assert (loaded.total_cents, loaded.items, loaded.extra.as_dict()) == (7, ["a", "b"], {"k": 1})


def test_order_update_saves_changed_fields(store: Any, backend: Backend) -> None:
    inserted(store, saga_id="u1")
    loaded = store.get_by_id(NAME, "u1")
    loaded.total_cents = 500
    loaded.status = "paid"
    store.update(NAME, loaded, 0)
    again = store.get_by_id(NAME, "u1")
    assert (again.version, again.total_cents, again.status) == (1, 500, "paid")
    assert raw_item(backend, store, "u1")["status"] == {"S": "paid"}


def test_order_field_set_to_none_is_removed(store: Any, backend: Backend) -> None:
    state = inserted(store, saga_id="rm", note="temporary")
    state.note = None
    store.update(NAME, state, 0)
    assert "note" not in raw_item(backend, store, "rm")


# -- options the contract runs with only on moto ------------------------------------------------


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


# -- a rolling deploy ---------------------------------------------------------------------------


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


# -- several saga types in one table ---------------------------------------------------------


def test_correlation_lookup_is_per_saga_name(make_store: Any) -> None:
    store = make_store(models={"PaymentSaga": PaymentSaga})
    order = inserted(store, correlation_id="shared")
    payment = PaymentSaga(amount_cents=5)
    store.insert("PaymentSaga", "shared", payment)

    assert store.get_by_correlation_id(NAME, "shared") == order
    assert store.get_by_correlation_id("PaymentSaga", "shared") == payment


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


def test_errors_share_one_root() -> None:
    for error in (ConcurrencyError, SagaAlreadyExistsError, SagaNotFoundError, SagaValidationError):
        assert issubclass(error, SagaStoreError)
