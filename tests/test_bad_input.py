"""Bad input is refused before any request is sent, naming the field and the limit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from pynamodb.attributes import (
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)

from saga_store_pynamo import SagaModel, SagaStoreError, SagaTooLargeError, SagaValidationError
from saga_store_pynamo._size import ITEM_SIZE_LIMIT, item_size
from saga_store_pynamo._tokens import TOKEN_RESERVE
from saga_store_pynamo.errors import SagaDataError
from saga_store_pynamo.models import DecimalAttribute, dynamodb_number_text
from tests.conftest import Backend, RequestRecorder
from tests.models import OrderSaga

NAME = "OrderSaga"
LONE_SURROGATE = "bad\ud800id"


def fresh(**fields: Any) -> OrderSaga:
    return OrderSaga(**fields)


def loaded(version: int = 0, **fields: Any) -> OrderSaga:
    """A state as if loaded at ``version``."""
    return OrderSaga(saga_id="s1", saga_name=NAME, correlation_id="c1", version=version, **fields)


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
        "update 39-digit version",
        lambda s: s.update(NAME, loaded(10**38), 10**38),
        "expected_version",
        "10**38 - 1",
    ),
    (
        "update version with no next",
        lambda s: s.update(NAME, loaded(10**38 - 1), 10**38 - 1),
        "expected_version",
        "38-digit",
    ),
    (
        "update huge version",
        lambda s: s.update(NAME, loaded(10**5000), 10**5000),
        "expected_version",
        "bits",
    ),
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
    """A state whose item is exactly ``size`` bytes as insert counts it: the state's own
    attributes, plus room for every write token the item can gather (``TOKEN_RESERVE``)."""
    state = OrderSaga(saga_id="big", saga_name=NAME, correlation_id="c", version=0, note="")
    base = item_size(state.serialize()) + TOKEN_RESERVE
    state.note = "x" * (size - base)
    assert item_size(state.serialize()) + TOKEN_RESERVE == size
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


#: Numbers as the store writes Decimals: DynamoDB's own text for them.
DECIMAL_TEXTS = {
    f"d{i}": {"N": dynamodb_number_text(Decimal(text))}
    for i, text in enumerate(
        [
            "1E+23",
            "12.50",
            "-0.000",
            "-1234567890.1234567890123456789012345678",
            "9.99E+125",
            "-1E-130",
            "0.000120",
            "99999999999999999999999999999999999999",
        ]
    )
}


@pytest.mark.ddblocal
def test_size_count_matches_dynamodb_byte_for_byte(
    dynamodb_local_endpoint: str,
) -> None:
    """Our count of 409,600 is DynamoDB's: one byte more and DynamoDB Local refuses too."""
    assert_size_limit_matches(
        dynamodb_local_endpoint,
        {
            "n1": {"N": "-12.345"},
            "n2": {"N": "1000000"},
            "n3": {"N": "0.05"},
            "b": {"BOOL": True},
            "z": {"NULL": True},
            "l": {"L": [{"S": "ab"}, {"N": "17"}, {"M": {"é": {"S": "ü"}}}]},
            "ss": {"SS": ["a", "bc"]},
            "bin": {"B": b"\x00\x01\x02"},
        },
    )


@pytest.mark.ddblocal
def test_size_count_of_decimals_matches_dynamodb_byte_for_byte(
    dynamodb_local_endpoint: str,
) -> None:
    """The same for numbers as the store writes Decimals: long, tiny, huge, negative."""
    ns = {"ns": {"NS": [DECIMAL_TEXTS["d0"]["N"], DECIMAL_TEXTS["d3"]["N"], "0.5"]}}
    assert_size_limit_matches(dynamodb_local_endpoint, {**DECIMAL_TEXTS, **ns})


def assert_size_limit_matches(endpoint: str, extras: dict[str, Any]) -> None:
    """An item of ``extras`` padded to 409,600 bytes by our count is accepted by DynamoDB
    Local, and one byte more is refused."""
    import boto3

    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
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


# -- values PynamoDB's own attribute types cannot store ----------------------------------------


class Event(MapAttribute[str, Any]):
    at = UTCDateTimeAttribute()


class Boom(Exception):
    """Not a TypeError or ValueError: any exception a user's attribute may raise."""


class ExplodingAttribute(UnicodeAttribute):
    def serialize(self, value: Any) -> Any:
        if value == "boom":
            raise Boom("the attribute's own failure")
        return super().serialize(value)


class KindsSaga(SagaModel):
    """PynamoDB's attribute types that do not take any value they are given."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    when = UTCDateTimeAttribute(null=True)
    event = Event(null=True)
    doc = JSONAttribute(null=True)
    custom = ExplodingAttribute(null=True)


KIND_CASES: list[tuple[str, Any, str]] = [
    ("when", "2026-01-01T00:00:00Z", "expected datetime"),
    ("when", 1767225600, "expected datetime"),
    ("when", datetime(2026, 1, 1), "naive datetime"),
    ("event", {"at": "2026-01-01"}, "'str' object has no attribute"),
    ("event", {"at": datetime(2026, 1, 1)}, "naive datetime"),
    ("doc", {"a", "set"}, "not JSON serializable"),
    ("custom", "boom", "Boom: the attribute's own failure"),
]


@pytest.mark.parametrize(("field", "value", "named"), KIND_CASES)
def test_a_value_pynamodbs_attributes_cannot_store_is_refused_before_sending(
    make_store: Callable[..., Any],
    backend: Backend,
    recorder: RequestRecorder,
    field: str,
    value: Any,
    named: str,
) -> None:
    """Insert and update refuse it, naming the field, with PynamoDB's error chained when
    there is one; nothing is sent and the stored saga is as it was."""
    store = make_store(KindsSaga)
    recorder.take()
    state = KindsSaga(saga_id="k1")
    setattr(state, field, value)
    with pytest.raises(SagaValidationError) as caught:
        store.insert("KindsSaga", "c1", state)
    assert caught.value.field.startswith(f"state.{field}")
    assert named in str(caught.value)
    assert recorder.take() == []
    assert backend.client().scan(TableName=store.table_name)["Items"] == []

    state = KindsSaga(saga_id="k1")
    store.insert("KindsSaga", "c1", state)
    before = backend.client().scan(TableName=store.table_name)["Items"]
    recorder.take()
    setattr(state, field, value)
    with pytest.raises(SagaValidationError) as again:
        store.update("KindsSaga", state, 0)
    assert again.value.field == caught.value.field
    assert type(again.value.__cause__) is type(caught.value.__cause__)
    assert recorder.take() == []
    assert backend.client().scan(TableName=store.table_name)["Items"] == before


def test_an_aware_datetime_for_pynamodbs_utc_attribute_is_stored(
    make_store: Callable[..., Any],
) -> None:
    store = make_store(KindsSaga)
    moment = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    state = KindsSaga(saga_id="k1", when=moment, event=Event(at=moment))
    store.insert("KindsSaga", "c1", state)
    loaded_state = store.get_by_id("KindsSaga", "k1")
    assert loaded_state.when == moment
    assert loaded_state.event.at == moment


# -- Decimal numbers ------------------------------------------------------------------------------


class MoneySaga(SagaModel):
    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    amount = NumberAttribute(null=True)
    scores = NumberSetAttribute(null=True)
    price = DecimalAttribute(null=True)


def test_decimals_are_stored_as_their_decimal_text(
    make_store: Callable[..., Any], backend: Backend
) -> None:
    """A NumberAttribute stores a Decimal that loads back as the same int or float; a
    DecimalAttribute stores any Decimal DynamoDB can hold, and loads it as a Decimal."""
    store = make_store(MoneySaga)
    state = MoneySaga(
        saga_id="m1",
        amount=Decimal("1E+23"),  # the float 1e23 would load as 10**23, so it is refused
        scores={Decimal("2.50"), 7},
        price=Decimal("-1234567890.1234567890123456789012345678"),
    )
    store.insert("MoneySaga", "c1", state)
    raw = backend.client().get_item(
        TableName=store.table_name, Key={"sagaName": {"S": "MoneySaga"}, "sagaId": {"S": "m1"}}
    )["Item"]
    assert raw["amount"] == {"N": "100000000000000000000000"}
    assert sorted(raw["scores"]["NS"]) == ["2.5", "7"]
    assert raw["price"] == {"N": "-1234567890.1234567890123456789012345678"}
    loaded_state = store.get_by_id("MoneySaga", "m1")
    assert loaded_state.amount == 10**23
    assert type(loaded_state.amount) is int
    assert loaded_state.scores == {2.5, 7}
    assert loaded_state.price == state.price
    assert type(loaded_state.price) is Decimal
    assert loaded_state == state


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("amount", Decimal("NaN"), "finite"),
        ("amount", Decimal("Infinity"), "finite"),
        ("amount", Decimal("1" * 39), "38"),
        ("amount", Decimal("1E+126"), "9.99E+125"),
        ("amount", Decimal("19.99"), "DecimalAttribute"),
        ("scores", {Decimal("-Infinity")}, "finite"),
        ("price", Decimal("sNaN"), "finite"),
        ("price", Decimal("1E-131"), "1E-130"),
    ],
)
def test_decimals_dynamodb_would_refuse_are_refused_before_sending(
    make_store: Callable[..., Any],
    backend: Backend,
    recorder: RequestRecorder,
    field: str,
    value: Any,
    named: str,
) -> None:
    store = make_store(MoneySaga)
    recorder.take()
    with pytest.raises(SagaValidationError) as caught:
        store.insert("MoneySaga", "c1", MoneySaga(saga_id="m1", **{field: value}))
    assert caught.value.field == f"state.{field}"
    assert named in str(caught.value)
    assert recorder.take() == []
    assert backend.client().scan(TableName=store.table_name)["Items"] == []


# -- nesting --------------------------------------------------------------------------------------


def nested(levels: int, *, lists: bool = False) -> Any:
    """A map of ``levels`` nested maps (alternating with lists when ``lists``), the map
    attribute itself being the first level."""
    value: Any = "leaf"
    for level in range(levels, 0, -1):
        value = [value] if lists and level % 2 == 0 else {"k": value}
    return value


@pytest.mark.parametrize("lists", [False, True], ids=["maps", "maps-and-lists"])
def test_31_nested_levels_are_stored_and_32_are_refused_before_sending(
    store: Any, backend: Backend, recorder: RequestRecorder, lists: bool
) -> None:
    """DynamoDB (Local) stores 31 nested maps or lists and refuses 32."""
    deepest = nested(31, lists=lists)
    store.insert(NAME, "c1", OrderSaga(saga_id="deep", extra=deepest))
    loaded_state = store.get_by_id(NAME, "deep")
    assert loaded_state.extra.as_dict() == deepest
    recorder.take()
    with pytest.raises(SagaValidationError) as caught:
        store.insert(NAME, "c2", OrderSaga(saga_id="deeper", extra=nested(32, lists=lists)))
    assert caught.value.field == "state.extra"
    assert "more than 31 levels" in str(caught.value)
    assert recorder.take() == []
    assert len(backend.client().scan(TableName=store.table_name)["Items"]) == 1


# -- stored data the model cannot load ------------------------------------------------------------


@pytest.mark.parametrize("version", ["7.5", "-1", "0.5"])
def test_a_stored_version_that_is_not_a_whole_number_is_refused_at_load(
    store: Any, backend: Backend, version: str
) -> None:
    """Written by another tool: PynamoDB would load 7.5 as 7, and the next update would fail
    later with a bare ValueError. It is refused when loaded, naming the version."""
    backend.client().put_item(
        TableName=store.table_name,
        Item={
            "sagaName": {"S": NAME},
            "sagaId": {"S": "v1"},
            "correlationId": {"S": "c1"},
            "version": {"N": version},
        },
    )
    for load in (
        lambda: store.get_by_id(NAME, "v1"),
        lambda: store.get_by_correlation_id(NAME, "c1"),
    ):
        with pytest.raises(SagaDataError) as caught:
            load()
        assert isinstance(caught.value, SagaStoreError)
        assert not isinstance(caught.value, SagaValidationError)
        assert caught.value.field == "version"
        assert (caught.value.saga_name, caught.value.saga_id) == (NAME, "v1")
        assert version in str(caught.value)
