"""The change feed behind a faulty network: DynamoDB Local behind the test proxy, whose
Streams answers are corrupted, cut, throttled and dropped. The feed read through the faults
is the feed read without them: no record lost, doubled or altered."""

from __future__ import annotations

from typing import Any

import pytest

from saga_store_pynamo import DynamoDBSagaStore, SagaStoreRequestError, create_table
from saga_store_pynamo.retry import RetryPolicy
from saga_store_pynamo.streams import SagaChange, iter_changes
from tests.conftest import store_behind
from tests.ddb_proxy import (
    CORRUPT_BODY,
    CORRUPT_CRC32,
    DROP_RESPONSE,
    RESET,
    DynamoDBProxy,
    FaultInjector,
    error,
)
from tests.models import OrderSaga

pytestmark = pytest.mark.ddblocal
NAME = "OrderSaga"


def _life(store: DynamoDBSagaStore[Any]) -> None:
    for number in range(3):
        state = OrderSaga(total_cents=100 + number)
        store.insert(NAME, f"order-{number}", state)
        state.status = "paid"
        store.update(NAME, state, 0)
        state.is_completed = True
        store.update(NAME, state, 1)
        store.delete(NAME, state.saga_id)


def _feed(changes: list[SagaChange]) -> list[tuple[Any, ...]]:
    return [
        (c.kind, c.saga_id, c.version, c.sequence_number, c.new and c.new.total_cents)
        for c in changes
    ]


@pytest.fixture
def stream_store(faulty: tuple[FaultInjector, DynamoDBProxy]) -> DynamoDBSagaStore[Any]:
    _, proxy = faulty
    store = store_behind(proxy, OrderSaga, retry=RetryPolicy(max_attempts=7, base_delay=0.001))
    # store_behind made the table without a stream: make one with it, same name.
    store.connection.delete_table(store.table_name)
    create_table(store, stream_view_type="NEW_AND_OLD_IMAGES")
    _life(store)
    return store


def test_corrupted_cut_and_throttled_answers_are_retried_into_the_same_feed(
    faulty: tuple[FaultInjector, DynamoDBProxy], stream_store: DynamoDBSagaStore[Any]
) -> None:
    injector, _ = faulty
    operations = ("DescribeStream", "GetShardIterator", "GetRecords")
    before = {op: injector.requests[op] for op in operations}
    clean = list(iter_changes(stream_store))
    assert len(clean) == 12
    clean_requests = {op: injector.requests[op] - before[op] for op in operations}
    for operation in operations:
        injector.queue(
            operation,
            CORRUPT_BODY,
            CORRUPT_CRC32,
            RESET,
            DROP_RESPONSE,
            error("LimitExceededException"),
            error("InternalServerError", status=500),
        )
    before = {op: injector.requests[op] for op in operations}
    through_faults = list(iter_changes(stream_store))
    assert _feed(through_faults) == _feed(clean)
    # Every queued fault was met (6 per operation), so the retries above were exercised.
    assert sum(injector.injected.values()) == 18
    # Each fault cost exactly one retried request: none was taken as an answer (a wrong
    # x-amz-crc32 over an intact body too).
    assert {op: injector.requests[op] - before[op] for op in operations} == {
        op: clean_requests[op] + 6 for op in operations
    }


def test_a_fault_beyond_the_retries_is_a_named_error(
    faulty: tuple[FaultInjector, DynamoDBProxy], stream_store: DynamoDBSagaStore[Any]
) -> None:
    injector, _ = faulty
    injector.queue("GetRecords", *[CORRUPT_BODY] * 7)
    with pytest.raises(SagaStoreRequestError) as caught:
        list(iter_changes(stream_store))
    assert caught.value.operation == "GetRecords"
    assert caught.value.__cause__ is not None
