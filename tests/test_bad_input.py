"""Bad input is refused before any request is sent, naming the field and the limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from saga_store_pynamo import SagaTooLargeError, SagaValidationError
from saga_store_pynamo._size import ITEM_SIZE_LIMIT, item_size
from saga_store_pynamo.store import WRITE_TOKEN
from tests.conftest import Backend, RequestRecorder
from tests.models import OrderSaga

NAME = "OrderSaga"
LONE_SURROGATE = "bad\ud800id"


def fresh(**fields: Any) -> OrderSaga:
    return OrderSaga(**fields)


def loaded(**fields: Any) -> OrderSaga:
    """A state as if loaded at version 0."""
    return OrderSaga(saga_id="s1", saga_name=NAME, correlation_id="c1", version=0, **fields)


# (call, field named in the message, limit or phrase named in the message)
BAD_CALLS: list[tuple[str, Callable[[Any], Any], str, str]] = [
    ("insert empty name", lambda s: s.insert("", "c", fresh()), "saga_name", "non-empty"),
    ("insert int name", lambda s: s.insert(7, "c", fresh()), "saga_name", "int"),
    ("insert None name", lambda s: s.insert(None, "c", fresh()), "saga_name", "NoneType"),
    ("insert long name", lambda s: s.insert("n" * 2049, "c", fresh()), "saga_name", "2,048"),
    (
        "insert surrogate name",
        lambda s: s.insert(LONE_SURROGATE, "c", fresh()),
        "saga_name",
        "surrogate",
    ),
    ("insert empty corr", lambda s: s.insert(NAME, "", fresh()), "correlation_id", "non-empty"),
    ("insert long corr", lambda s: s.insert(NAME, "é" * 513, fresh()), "correlation_id", "1,024"),
    ("insert bytes corr", lambda s: s.insert(NAME, b"c", fresh()), "correlation_id", "bytes"),
    (
        "insert empty id",
        lambda s: s.insert(NAME, "c", fresh(saga_id="")),
        "state.saga_id",
        "non-empty",
    ),
    (
        "insert long id",
        lambda s: s.insert(NAME, "c", fresh(saga_id="i" * 1025)),
        "state.saga_id",
        "1,024",
    ),
    ("insert dict state", lambda s: s.insert(NAME, "c", {"saga_id": "x"}), "state", "OrderSaga"),
    ("insert versioned", lambda s: s.insert(NAME, "c", fresh(version=4)), "state.version", "0"),
    (
        "insert naive datetime",
        lambda s: s.insert(NAME, "c", fresh(archived_at=datetime(2026, 1, 1))),
        "state.archived_at",
        "timezone-aware",
    ),
    (
        "insert null field",
        lambda s: s.insert(NAME, "c", fresh(status=None)),
        "state.status",
        "None",
    ),
    ("update negative", lambda s: s.update(NAME, loaded(), -1), "expected_version", "non-negative"),
    ("update str version", lambda s: s.update(NAME, loaded(), "0"), "expected_version", "str"),
    ("update bool version", lambda s: s.update(NAME, loaded(), False), "expected_version", "bool"),
    ("update float version", lambda s: s.update(NAME, loaded(), 0.0), "expected_version", "float"),
    (
        "update version gap",
        lambda s: s.update(NAME, loaded(), 7),
        "state.version",
        "expected_version + 1",
    ),
    (
        "update no id",
        lambda s: s.update(NAME, OrderSaga(correlation_id="c", version=0), 0),
        "state.saga_id",
        "NoneType",
    ),
    (
        "update long id",
        lambda s: s.update(NAME, OrderSaga(saga_id="i" * 1025, correlation_id="c", version=0), 0),
        "state.saga_id",
        "1,024",
    ),
    ("update other name", lambda s: s.update("Other", loaded(), 0), "state.saga_name", "Other"),
    ("get empty name", lambda s: s.get_by_id("", "x"), "saga_name", "non-empty"),
    ("get long id", lambda s: s.get_by_id(NAME, "i" * 1025), "saga_id", "1,024"),
    ("get int id", lambda s: s.get_by_id(NAME, 5), "saga_id", "int"),
    ("corr long", lambda s: s.get_by_correlation_id(NAME, "c" * 1025), "correlation_id", "1,024"),
    ("corr none", lambda s: s.get_by_correlation_id(NAME, None), "correlation_id", "NoneType"),
    ("delete empty id", lambda s: s.delete(NAME, ""), "saga_id", "non-empty"),
    ("delete long name", lambda s: s.delete("n" * 2049, "x"), "saga_name", "2,048"),
]


@pytest.mark.parametrize(
    ("call", "field", "named"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS]
)
def test_bad_input_sends_nothing(
    store: Any,
    backend: Backend,
    recorder: RequestRecorder,
    call: Callable[[Any], Any],
    field: str,
    named: str,
) -> None:
    with pytest.raises(SagaValidationError) as caught:
        call(store)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert named in str(caught.value)
    assert recorder.take() == []
    assert backend.client().scan(TableName=store.table_name)["Items"] == []


def test_keys_at_the_limits_are_accepted(store: Any) -> None:
    name, saga_id, correlation_id = "n" * 2048, "é" * 512, "c" * 1024
    state = OrderSaga(saga_id=saga_id)
    store.insert(name, correlation_id, state)
    assert store.get_by_id(name, saga_id) == state
    assert store.get_by_correlation_id(name, correlation_id) == state


def test_failed_validation_leaves_the_state_as_it_was(store: Any) -> None:
    state = OrderSaga(status=None)
    before = dict(state.attribute_values)
    with pytest.raises(SagaValidationError):
        store.insert(NAME, "c", state)
    assert state.attribute_values == before


# -- the 400 KB item limit ---------------------------------------------------------------------


def state_of_size(size: int) -> OrderSaga:
    """A state whose item, as insert will store it, is exactly ``size`` bytes."""
    state = OrderSaga(saga_id="big", saga_name=NAME, correlation_id="c", version=0, note="")
    token = {WRITE_TOKEN: {"S": "0" * 32}}  # every write carries a uuid4().hex token
    base = item_size({**state.serialize(), **token})
    state.note = "x" * (size - base)
    assert item_size({**state.serialize(), **token}) == size
    return state


def test_item_just_under_the_limit_is_stored(store: Any, backend: Backend) -> None:
    # moto refuses items over 405,000 bytes; DynamoDB Local takes exactly 409,600.
    state = state_of_size(backend.max_item_bytes)
    store.insert(NAME, "c", state)
    loaded_state = store.get_by_id(NAME, "big")
    assert loaded_state is not None
    assert loaded_state.note == state.note


def test_item_just_over_the_limit_is_refused_before_sending(
    store: Any, backend: Backend, recorder: RequestRecorder
) -> None:
    state = state_of_size(ITEM_SIZE_LIMIT + 1)
    with pytest.raises(SagaTooLargeError) as caught:
        store.insert(NAME, "c", state)
    assert (caught.value.size, caught.value.limit) == (409_601, 409_600)
    assert "409,600" in str(caught.value)
    assert isinstance(caught.value, SagaValidationError)
    assert recorder.take() == []
    assert backend.client().scan(TableName=store.table_name)["Items"] == []


def test_update_that_grows_past_the_limit_is_refused(store: Any, recorder: RequestRecorder) -> None:
    state = OrderSaga(saga_id="grow")
    store.insert(NAME, "c", state)
    recorder.take()
    state.note = "x" * ITEM_SIZE_LIMIT
    with pytest.raises(SagaTooLargeError):
        store.update(NAME, state, 0)
    assert recorder.take() == []
    assert store.get_by_id(NAME, "grow").note is None


@pytest.mark.ddblocal
def test_size_count_matches_dynamodb_byte_for_byte(
    dynamodb_local_endpoint: str,
) -> None:
    """Our count of 409,600 is DynamoDB's: one byte more and DynamoDB Local refuses too."""
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=dynamodb_local_endpoint,
        region_name="us-east-1",
        aws_access_key_id="size",
        aws_secret_access_key="size",
    )
    client.create_table(
        TableName="size-check",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        extras = {
            "n1": {"N": "-12.345"},
            "n2": {"N": "1000000"},
            "n3": {"N": "0.05"},
            "b": {"BOOL": True},
            "z": {"NULL": True},
            "l": {"L": [{"S": "ab"}, {"N": "17"}, {"M": {"é": {"S": "ü"}}}]},
            "ss": {"SS": ["a", "bc"]},
            "bin": {"B": b"\x00\x01\x02"},
        }
        for target, accepted in ((ITEM_SIZE_LIMIT, True), (ITEM_SIZE_LIMIT + 1, False)):
            item = {"k": {"S": "key"}, **extras, "pad": {"S": ""}}
            item["pad"] = {"S": "p" * (target - item_size(item))}
            assert item_size(item) == target
            if accepted:
                client.put_item(TableName="size-check", Item=item)
            else:
                with pytest.raises(client.exceptions.ClientError, match="size"):
                    client.put_item(TableName="size-check", Item=item)
    finally:
        client.delete_table(TableName="size-check")
