"""The store's ``transport`` option: ``"http"`` sends the item operations through the store's
own signed keep-alive pool (opt-in), inside the same retry loop as botocore's.

The behavioural contract over ``transport="http"`` is in tests/test_store.py, its lost
responses in tests/test_integrity.py and its corrupted answers in tests/test_checksum.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.connection import Connection

from saga_store_pynamo import ConcurrencyError, DynamoDBSagaStore, SagaValidationError, create_table
from saga_store_pynamo._moto import atomic_moto
from saga_store_pynamo._transport import moto_mock_active
from saga_store_pynamo.testing import RequestRecorder
from tests.conftest import CREDENTIALS, REGION, store_behind
from tests.ddb_proxy import DynamoDBProxy, FaultInjector
from tests.models import OrderSaga

NAME = "OrderSaga"


def botocore_sends(store: DynamoDBSagaStore[Any]) -> list[str]:
    """The operations the store's botocore client sends from now on."""
    sent: list[str] = []
    store.connection.client.meta.events.register(
        "before-send.dynamodb", lambda request, **_: sent.append(request.headers["X-Amz-Target"])
    )
    return sent


@pytest.mark.parametrize("transport", ["tcp", "HTTP", None, 1])
def test_an_unknown_transport_is_refused(transport: Any) -> None:
    with pytest.raises(SagaValidationError, match="transport"):
        DynamoDBSagaStore(OrderSaga, region=REGION, transport=transport)


def test_http_transport_refuses_a_passed_connection() -> None:
    with pytest.raises(SagaValidationError, match="passed connection"):
        DynamoDBSagaStore(OrderSaga, connection=Connection(region=REGION), transport="http")


def test_the_default_is_botocore_and_http_resolves_nothing_at_construction() -> None:
    assert DynamoDBSagaStore(OrderSaga, region=REGION).transport == "botocore"
    store = DynamoDBSagaStore(OrderSaga, region=REGION, transport="http")
    assert store.transport == "http"
    assert store._http is not None
    assert store._http._pool is None  # no endpoint, credentials or pool until the first call
    assert store.connection._client is None
    store.close()  # closing an unused store is fine


@pytest.mark.ddblocal
def test_one_http_request_per_call_conflicts_included(
    faulty: tuple[FaultInjector, DynamoDBProxy],
) -> None:
    injector, proxy = faulty
    store = store_behind(proxy, OrderSaga, transport="http")
    recorder = RequestRecorder()
    recorder.attach(store)
    via_botocore = botocore_sends(store)
    injector.requests.clear()

    state = OrderSaga(order_id="order-1")
    store.insert(NAME, "order-1", state)
    stale = store.get_by_id(NAME, state.saga_id)
    assert stale is not None
    state.status = "paid"
    store.update(NAME, state, 0)
    with pytest.raises(ConcurrencyError):
        store.update(NAME, stale, 0)
    assert store.get_by_correlation_id(NAME, "order-1") == state
    store.delete(NAME, state.saga_id)

    expected = ["PutItem", "GetItem", "UpdateItem", "UpdateItem", "Query", "DeleteItem"]
    assert recorder.take() == expected
    assert sum(injector.requests.values()) == len(expected)
    assert via_botocore == []  # every one of them went through the store's own pool
    assert store._http is not None
    assert store._http._pool is not None
    assert store._http._pool.stats().open == 1  # one keep-alive connection, reused
    store.close()
    assert store._http._pool.stats().open == 0


def test_under_moto_the_http_store_sends_through_botocore() -> None:
    # Built before the mock starts: the choice is made per call, so it never leaves moto.
    store = DynamoDBSagaStore(
        OrderSaga, table_name="sagas-http", region=REGION, credentials=CREDENTIALS, transport="http"
    )
    assert not moto_mock_active()
    with atomic_moto():
        assert moto_mock_active()
        create_table(store)
        state = OrderSaga(order_id="order-2")
        store.insert(NAME, "order-2", state)
        assert store.get_by_id(NAME, state.saga_id) == state
    assert not moto_mock_active()
    assert store._http is not None
    assert store._http._pool is None
