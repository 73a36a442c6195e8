"""The store contract on every backend, run through the kit users get.

``TestOrderSagaContract`` is ``saga_store_pynamo.testing.SagaStoreContract`` pointed at
``OrderSaga``: the calls, one request each, saga-bus version semantics, bad input, TTL and
concurrency. The plain tests below cover what the contract cannot express generically: several
models in one table, an older model in a rolling deploy, OrderSaga's own fields, and more
threads.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, ClassVar

import pytest
from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    SagaAlreadyExistsError,
    SagaModel,
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


class TestOrderSagaContractOverBotocore(TestOrderSagaContract):
    """The same contract through the botocore transport on DynamoDB Local (moto always
    gets botocore's: under its mock the store sends through botocore)."""

    backends = ("dynamodb-local",)
    store_options: ClassVar[dict[str, Any]] = {"transport": "botocore"}


class TestOrderSagaContractWithOptionsOverBotocore(TestOrderSagaContract):
    """The options that change what a call sends, through the botocore transport."""

    backends = ("dynamodb-local",)
    store_options: ClassVar[dict[str, Any]] = {
        **TestOrderSagaContractWithOptions.store_options,
        "transport": "botocore",
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


# -- subclass states, reserved names, wide models ----------------------------------------------


class OrderSagaV2(OrderSagaV1):
    """A subclass of the model a store serves: its own fields must be stored too."""

    coupon = UnicodeAttribute(null=True)
    discount_cents = NumberAttribute(null=True)


def test_subclass_instance_stores_its_own_fields(make_store: Any, backend: Backend) -> None:
    store = make_store(OrderSagaV1)
    state = OrderSagaV2(saga_id="sub", coupon="WINTER", discount_cents=150, status="new")
    store.insert(NAME, "order-sub", state)
    item = raw_item(backend, store, "sub")
    assert (item["coupon"], item["discount_cents"]) == ({"S": "WINTER"}, {"N": "150"})

    state.coupon = "SPRING"
    store.update(NAME, state, 0)
    item = raw_item(backend, store, "sub")
    assert (item["coupon"], item["discount_cents"], item["version"]) == (
        {"S": "SPRING"},
        {"N": "150"},
        {"N": "1"},
    )
    # Read back through the store's model (V1): V2's fields stay stored, untouched.
    loaded = store.get_by_id(NAME, "sub")
    assert type(loaded) is OrderSagaV1
    loaded.status = "paid"
    store.update(NAME, loaded, 1)
    assert raw_item(backend, store, "sub")["coupon"] == {"S": "SPRING"}


def test_default_store_stores_any_saga_model_with_its_fields(
    make_store: Any, backend: Backend
) -> None:
    store = make_store(SagaModel)
    state = OrderSaga(saga_id="any", order_id="o-7", total_cents=99, items=["x"])
    store.insert(NAME, "order-any", state)
    item = raw_item(backend, store, "any")
    assert (item["order_id"], item["total_cents"], item["items"]) == (
        {"S": "o-7"},
        {"N": "99"},
        {"L": [{"S": "x"}]},
    )
    state.total_cents = 100
    store.update(NAME, state, 0)
    assert raw_item(backend, store, "any")["total_cents"] == {"N": "100"}


def test_unrelated_model_instance_is_still_refused(
    make_store: Any, recorder: RequestRecorder
) -> None:
    store = make_store(OrderSagaV1)
    recorder.take()
    with pytest.raises(SagaValidationError, match="OrderSagaV1"):
        store.insert(NAME, "c", PaymentSaga())
    assert recorder.take() == []


@pytest.mark.parametrize(
    "stored_as",
    [
        "sagaName",
        "sagaId",
        "correlationId",
        "version",
        "ttl",
        "isCompleted",
        "createdAt",
        "updatedAt",
        "archivedAt",
        "traceParent",
        "traceState",
        "timeoutMs",
        "timeoutExpiresAt",
        "writeToken",
        "sagaIncarnation",
        "sagaWrite0",
        "sagaWrite9",
    ],
)
def test_a_field_stored_under_a_builtin_or_reserved_name_is_refused(stored_as: str) -> None:
    model = type(
        f"Clash_{stored_as}",
        (SagaModel,),
        {"__module__": __name__, "mine": UnicodeAttribute(attr_name=stored_as, null=True)},
    )
    with pytest.raises(SagaValidationError, match=stored_as) as caught:
        DynamoDBSagaStore(model, region="us-east-1")
    assert caught.value.field == f"{model.__name__}.mine"


def test_two_fields_stored_under_one_name_are_refused() -> None:
    model = type(
        "TwoOfOne",
        (SagaModel,),
        {
            "__module__": __name__,
            "first": UnicodeAttribute(attr_name="shared", null=True),
            "second": UnicodeAttribute(attr_name="shared", null=True),
        },
    )
    with pytest.raises(SagaValidationError, match="shared"):
        DynamoDBSagaStore(model, region="us-east-1")


def wide_model(attributes: int) -> type[SagaModel]:
    fields: dict[str, Any] = {
        f"field_{i:03d}": NumberAttribute(null=True) for i in range(attributes)
    }
    return type(f"Wide{attributes}", (SagaModel,), {"__module__": __name__, **fields})


def test_a_wide_model_can_be_updated(make_store: Any, backend: Backend) -> None:
    # With "#aN = :aN" placeholders ~270 attributes passed DynamoDB's 4 KB expression limit.
    # moto's expression parser recurses once per clause and overflows Python's stack at a
    # few hundred, so moto gets a narrower model; DynamoDB Local gets 480.
    width = 150 if backend.name == "moto" else 480
    model = wide_model(width)
    store = make_store(model)
    state = model(**{f"field_{i:03d}": i for i in range(0, width, 2)})
    store.insert(NAME, "wide", state)
    for i in range(width):
        setattr(state, f"field_{i:03d}", None if i % 3 == 0 else i + 1)
    store.update(NAME, state, 0)
    loaded = store.get_by_id(NAME, state.saga_id)
    assert loaded.field_001 == 2
    assert loaded.field_003 is None
    assert "field_000" not in raw_item(backend, store, state.saga_id)


def test_a_model_too_wide_to_update_is_refused_at_construction() -> None:
    with pytest.raises(SagaValidationError, match="4,096-byte expression limit") as caught:
        DynamoDBSagaStore(wide_model(700), region="us-east-1")
    assert caught.value.field == "model"


def test_a_stale_copy_of_an_item_without_incarnation_never_overwrites_its_successor(
    store: Any, backend: Backend
) -> None:
    # As an earlier build (a single writeToken) or the TypeScript store (none) wrote it.
    backend.client().put_item(
        TableName=store.table_name,
        Item={
            "sagaName": {"S": NAME},
            "sagaId": {"S": "legacy"},
            "correlationId": {"S": "order-9"},
            "version": {"N": "3"},
            "isCompleted": {"BOOL": False},
            "createdAt": {"S": "2026-11-01T10:00:00.000Z"},
            "updatedAt": {"S": "2026-11-02T10:00:00.000Z"},
            "status": {"S": "old"},
            "writeToken": {"S": "0" * 32},
        },
    )
    fresh = store.get_by_id(NAME, "legacy")
    stale = store.get_by_id(NAME, "legacy")
    fresh.status = "paid"
    store.update(NAME, fresh, 3)  # still works, and gives the item an incarnation
    assert "sagaIncarnation" in raw_item(backend, store, "legacy")
    with pytest.raises(ConcurrencyError) as caught:
        store.update(NAME, stale, 3)
    assert caught.value.actual_version == 4

    store.delete(NAME, "legacy")
    successor = inserted(store, saga_id="legacy", correlation_id="order-9")
    for _ in range(3):
        store.update(NAME, successor, successor.version)  # the successor reaches version 3
    before = raw_item(backend, store, "legacy")
    with pytest.raises(SagaNotFoundError):
        store.update(NAME, stale, 3)
    assert raw_item(backend, store, "legacy") == before


def test_a_new_state_gets_one_clock_reading_for_both_timestamps(
    store: DynamoDBSagaStore[OrderSaga],
) -> None:
    fresh = OrderSaga()
    assert fresh.created_at is not None
    assert fresh.updated_at == fresh.created_at
    store.insert(NAME, "clock", fresh)
    stored = store.get_by_id(NAME, fresh.saga_id)
    assert stored is not None
    assert stored.created_at == stored.updated_at == fresh.created_at

    earlier = datetime(2020, 1, 1, tzinfo=timezone.utc)
    given = OrderSaga(created_at=earlier)
    assert given.created_at == earlier
    assert given.updated_at is not None
    assert given.updated_at > earlier  # the caller's timestamp is kept, the other defaulted
