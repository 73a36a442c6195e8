"""What goes on the wire: the requests the store sends, and PynamoDB's send signals."""

from __future__ import annotations

from typing import Any

import pytest
from pynamodb.signals import post_dynamodb_send, pre_dynamodb_send

from saga_store_pynamo import ConcurrencyError, DynamoDBSagaStore
from saga_store_pynamo.testing import RequestRecorder
from tests.models import OrderSaga

NAME = "OrderSaga"

#: The parameters each operation may carry; anything else is overhead someone pays for.
ALLOWED = {
    "GetItem": {"TableName", "Key", "ConsistentRead"},
    "Query": {
        "TableName",
        "IndexName",
        "KeyConditionExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
        "Limit",
    },
    "PutItem": {
        "TableName",
        "Item",
        "ConditionExpression",
        "ExpressionAttributeNames",
        "ReturnValuesOnConditionCheckFailure",
    },
    "UpdateItem": {
        "TableName",
        "Key",
        "UpdateExpression",
        "ConditionExpression",
        "ExpressionAttributeNames",
        "ExpressionAttributeValues",
        "ReturnValuesOnConditionCheckFailure",
    },
    "DeleteItem": {"TableName", "Key"},
}


def test_each_call_sends_one_minimal_request(
    store: DynamoDBSagaStore[OrderSaga], recorder: RequestRecorder
) -> None:
    """No ``ReturnConsumedCapacity`` or other parameter the store does not use."""
    state = OrderSaga(order_id="o-1")
    store.insert(NAME, "c-1", state)
    loaded = store.get_by_id(NAME, state.saga_id)
    store.get_by_correlation_id(NAME, "c-1")
    assert loaded is not None
    loaded.status = "paid"
    store.update(NAME, loaded, 0)
    with pytest.raises(ConcurrencyError):
        store.update(NAME, state, 0)
    store.delete(NAME, state.saga_id)

    sent = [(operation, set(params)) for operation, params in recorder.requests]
    assert [operation for operation, _ in sent] == [
        "PutItem",
        "GetItem",
        "Query",
        "UpdateItem",
        "UpdateItem",
        "DeleteItem",
    ]
    for operation, params in sent:
        assert params <= ALLOWED[operation], (operation, params - ALLOWED[operation])


def test_pynamodb_send_signals_fire_for_listeners(
    store: DynamoDBSagaStore[OrderSaga],
) -> None:
    """The store skips ``Connection.dispatch`` but still sends its signals when someone
    listens, as PynamoDB does: before and after each request, with one request id."""
    heard: list[tuple[str, dict[str, Any]]] = []

    def before(sender: Any, **kwargs: Any) -> None:
        heard.append(("pre", kwargs))

    def after(sender: Any, **kwargs: Any) -> None:
        heard.append(("post", kwargs))

    pre_dynamodb_send.connect(before)
    post_dynamodb_send.connect(after)
    try:
        assert store.get_by_id(NAME, "missing") is None
    finally:
        pre_dynamodb_send.disconnect(before)
        post_dynamodb_send.disconnect(after)
    assert [stage for stage, _ in heard] == ["pre", "post"]
    (_, pre), (_, post) = heard
    assert pre["operation_name"] == post["operation_name"] == "GetItem"
    assert pre["table_name"] == post["table_name"] == store.table_name
    assert pre["req_uuid"] == post["req_uuid"]
