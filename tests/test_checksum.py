"""Every response is checked against its ``x-amz-crc32`` header before it is read.

With one botocore attempt in standard retry mode (the store's setting), botocore itself
returns a response whose body does not match its checksum as a success. A loopback proxy in
front of DynamoDB Local (tests/ddb_proxy.py) corrupts a byte of the body, or the header, of
chosen responses.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
from botocore.exceptions import ChecksumError

from saga_store_pynamo import (
    DynamoDBSagaStore,
    RetryPolicy,
    SagaStoreUnavailableError,
)
from saga_store_pynamo._checksum import check_crc32
from saga_store_pynamo.retry import is_retryable, may_have_landed
from tests.conftest import store_behind
from tests.ddb_proxy import CORRUPT_BODY, CORRUPT_CRC32, DynamoDBProxy, FaultInjector
from tests.models import OrderSaga

NAME = "OrderSaga"
FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.005)


def response(body: bytes, crc32: str | None) -> dict[str, Any]:
    return {"headers": {} if crc32 is None else {"x-amz-crc32": crc32}, "body": body}


def test_check_crc32_accepts_a_match_and_an_absent_header() -> None:
    body = b'{"Item": {"status": {"S": "paid"}}}'
    check_crc32(response(body, str(zlib.crc32(body))))
    check_crc32(response(body, None))  # an emulator that sends none


@pytest.mark.parametrize("crc32", ["0", "not-a-number", str(zlib.crc32(b"other body"))])
def test_check_crc32_refuses_a_mismatch(crc32: str) -> None:
    with pytest.raises(ChecksumError, match="crc32"):
        check_crc32(response(b'{"Item": {}}', crc32))


def test_a_checksum_error_is_retried_and_may_have_landed() -> None:
    error = ChecksumError(checksum_type="crc32", expected_checksum="1", actual_checksum=2)
    assert is_retryable(error)
    assert may_have_landed(error)  # the request reached DynamoDB


@pytest.fixture(params=["botocore", "http"])
def transport(request: pytest.FixtureRequest) -> str:
    """Each transport in turn: both check every answer."""
    return str(request.param)


def corrupted_store(proxy: DynamoDBProxy, transport: str) -> DynamoDBSagaStore[OrderSaga]:
    return store_behind(proxy, OrderSaga, retry=FAST, transport=transport)


@pytest.mark.ddblocal
@pytest.mark.parametrize("corruption", [CORRUPT_BODY, CORRUPT_CRC32])
def test_a_corrupted_read_is_retried_never_returned(
    faulty: tuple[FaultInjector, DynamoDBProxy], corruption: str, transport: str
) -> None:
    injector, proxy = faulty
    store = corrupted_store(proxy, transport)
    state = OrderSaga(order_id="order-77", status="paid", note="x" * 200, items=["a", "b"])
    store.insert(NAME, "order-77", state)

    injector.queue("GetItem", corruption)
    assert store.get_by_id(NAME, state.saga_id) == state
    assert injector.requests["GetItem"] == 2

    injector.queue("Query", corruption)
    assert store.get_by_correlation_id(NAME, "order-77") == state
    assert injector.requests["Query"] == 2


@pytest.mark.ddblocal
@pytest.mark.parametrize("corruption", [CORRUPT_BODY, CORRUPT_CRC32])
def test_a_write_whose_answer_was_corrupted_is_recognised_by_its_token(
    faulty: tuple[FaultInjector, DynamoDBProxy], corruption: str, transport: str
) -> None:
    injector, proxy = faulty
    store = corrupted_store(proxy, transport)
    state = OrderSaga(order_id="order-78")
    injector.queue("PutItem", corruption)
    store.insert(NAME, "order-78", state)  # applied; the retry finds its own incarnation
    assert injector.requests["PutItem"] == 2

    state.status = "shipped"
    injector.queue("UpdateItem", corruption)
    store.update(NAME, state, 0)  # applied; the retry finds its own token
    assert injector.requests["UpdateItem"] == 2
    assert state.version == 1
    assert store.get_by_id(NAME, state.saga_id) == state


@pytest.mark.ddblocal
def test_every_answer_corrupted_gives_up_saying_whether_a_write_may_have_landed(
    faulty: tuple[FaultInjector, DynamoDBProxy], transport: str
) -> None:
    injector, proxy = faulty
    store = corrupted_store(proxy, transport)
    state = OrderSaga(order_id="order-79")
    store.insert(NAME, "order-79", state)

    injector.queue("GetItem", *[CORRUPT_CRC32] * FAST.max_attempts)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        store.get_by_id(NAME, state.saga_id)
    assert isinstance(caught.value.__cause__, ChecksumError)
    assert caught.value.may_have_landed is False  # a read

    # A delete is answered without a condition, so every attempt meets a corrupted answer.
    injector.queue("DeleteItem", *[CORRUPT_BODY] * FAST.max_attempts)
    with pytest.raises(SagaStoreUnavailableError) as caught:
        store.delete(NAME, state.saga_id)
    assert isinstance(caught.value.__cause__, ChecksumError)
    assert caught.value.may_have_landed is True
    assert injector.requests["DeleteItem"] == FAST.max_attempts
    assert store.get_by_id(NAME, state.saga_id) is None  # it had been applied
