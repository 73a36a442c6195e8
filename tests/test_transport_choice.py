"""Which transport sends a request: the store's own by default, botocore where it must."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.client import BaseClient
from pynamodb.connection import Connection

from saga_store_pynamo import DynamoDBSagaStore, SagaValidationError, create_table
from saga_store_pynamo._dispatch import botocore_instrumented
from tests.conftest import CREDENTIALS, REGION, Backend
from tests.models import OrderSaga

NAME = "OrderSaga"


def test_the_default_is_the_stores_own_transport_unless_a_connection_is_passed() -> None:
    assert DynamoDBSagaStore(OrderSaga, region=REGION).transport == "http"
    passed = DynamoDBSagaStore(OrderSaga, connection=Connection(region=REGION))
    assert passed.transport == "botocore"
    assert passed._http is None
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(OrderSaga, connection=Connection(region=REGION), transport="http")
    assert caught.value.field == "transport"


class _Proxy:
    """A wrapper object in the way wrapt's FunctionWrapper is one: not a function."""

    def __init__(self, wrapped: Any, calls: list[str]) -> None:
        self.wrapped = wrapped
        self.calls = calls

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        bound = self.wrapped.__get__(instance, owner)

        def call(operation: str, params: dict[str, Any]) -> Any:
            self.calls.append(operation)
            return bound(operation, params)

        return call


def _function_wrapper(wrapped: Any, calls: list[str]) -> Any:
    @functools.wraps(wrapped)
    def wrapper(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append(operation)
        return wrapped(self, operation, params)

    return wrapper


@pytest.fixture
def local_store(dynamodb_local_endpoint: str) -> Iterator[DynamoDBSagaStore[OrderSaga]]:
    store: DynamoDBSagaStore[OrderSaga] = DynamoDBSagaStore(
        OrderSaga,
        table_name=f"choice-{uuid.uuid4().hex[:10]}",
        endpoint=dynamodb_local_endpoint,
        region=REGION,
        credentials=CREDENTIALS,
    )
    create_table(store)
    yield store
    store.close()
    Backend("dynamodb-local", dynamodb_local_endpoint, 0).client().delete_table(
        TableName=store.table_name
    )


@pytest.mark.ddblocal
@pytest.mark.parametrize("wrap", [_Proxy, _function_wrapper], ids=["proxy", "function"])
def test_instrumented_botocore_gets_every_request_while_it_is_instrumented(
    local_store: DynamoDBSagaStore[OrderSaga],
    monkeypatch: pytest.MonkeyPatch,
    wrap: Callable[[Any, list[str]], Any],
) -> None:
    seen: list[str] = []
    local_store.insert(NAME, "c", OrderSaga(saga_id="s"))  # the store's own transport
    assert not botocore_instrumented()

    monkeypatch.setattr(BaseClient, "_make_api_call", wrap(BaseClient._make_api_call, seen))
    assert botocore_instrumented()
    state = local_store.get_by_id(NAME, "s")
    assert state is not None
    state.status = "paid"
    local_store.update(NAME, state, 0)
    assert seen == ["GetItem", "UpdateItem"]

    monkeypatch.undo()
    assert not botocore_instrumented()
    assert local_store.get_by_id(NAME, "s") is not None
    assert seen == ["GetItem", "UpdateItem"]  # back on the store's own transport
