"""The store's fast codec gives exactly PynamoDB's items, states and refusals.

``ModelCodec`` replaces ``Model.serialize``, the item-size count and ``Model.from_raw_data``
on the hot path. Each property here runs the same random state (or stored item) through
PynamoDB's own path and through the codec, and requires the same outcome: the same item
and size, the same loaded state, or a refusal from both. No backend is involved.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pynamodb.attributes import (
    BooleanAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import AttributeNullError

from saga_store_pynamo import (
    SagaModel,
    SagaTooLargeError,
    SagaValidationError,
    UTCTimestampAttribute,
)
from saga_store_pynamo._codec import _check_type
from saga_store_pynamo._size import ITEM_SIZE_LIMIT, item_size, number_size
from saga_store_pynamo.store import WRITE_TOKEN, _model_info
from tests.models import OrderSaga
from tests.test_properties import (
    DATETIMES,
    NUMBERS,
    ORDER_CHANGES,
    PROP_FIELDS,
    PROPERTY,
    TEXT,
    WRONG_TYPES,
    PropSaga,
    construct,
    with_examples,
)

TOKEN = "0123456789abcdef0123456789abcdef"
REFUSED = (SagaValidationError, AttributeNullError, TypeError, ValueError, OverflowError)


def reference_encode(state: SagaModel, version: int) -> tuple[dict[str, Any], int]:
    """The item and size by PynamoDB's path: the type checks, ``serialize``, ``item_size``."""
    for name, attribute in state.get_attributes().items():
        value = state.attribute_values.get(name)
        if value is not None and name != "version":
            _check_type(name, attribute, value)
    item = state.serialize(null_check=True)
    item["version"] = {"N": str(version)}
    item[WRITE_TOKEN] = {"S": TOKEN}
    size = item_size(item)
    if size > ITEM_SIZE_LIMIT:
        raise SagaTooLargeError("state", size, ITEM_SIZE_LIMIT)
    return item, size


def check_encode(state: SagaModel) -> None:
    """The codec encodes ``state`` as PynamoDB does, or both refuse it."""
    codec = _model_info(type(state)).codec
    try:
        expected = reference_encode(state, 3)
    except REFUSED:
        with pytest.raises(SagaValidationError):
            codec.encode(state, 3, TOKEN)
        return
    assert codec.encode(state, 3, TOKEN) == expected
    check_decode(type(state), expected[0])


def comparable(state: SagaModel) -> dict[str, Any]:
    """A state's values with their exact types (1 and 1.0 and True differ)."""
    return {
        name: (type(value), value.as_dict() if isinstance(value, MapAttribute) else value)
        for name, value in state.attribute_values.items()
    }


def check_decode(model: type[SagaModel], item: dict[str, Any]) -> None:
    """The codec loads ``item`` as ``from_raw_data`` does, or both refuse it."""
    codec = _model_info(model).codec
    try:
        expected = model.from_raw_data(item)
    except Exception as exc:
        with pytest.raises(type(exc)):
            codec.decode(item)
        return
    loaded = codec.decode(item)
    assert type(loaded) is model
    assert comparable(loaded) == comparable(expected)


def filled(model: type[SagaModel], **fields: Any) -> Any:
    """A state with its keys and metadata set as ``insert`` sets them."""
    state = construct(model, **fields)
    state.saga_name = model.__name__
    state.saga_id = "id-1"
    state.correlation_id = "c-1"
    return state


@with_examples(300)
@given(fields=PROP_FIELDS)
def test_encode_matches_pynamodb_for_every_attribute_kind(fields: dict[str, Any]) -> None:
    check_encode(filled(PropSaga, **fields))


@with_examples(300)
@given(changes=ORDER_CHANGES, extra=st.one_of(TEXT, NUMBERS, st.booleans(), DATETIMES))
def test_encode_matches_pynamodb_for_the_saga_fields(changes: dict[str, Any], extra: Any) -> None:
    state = filled(OrderSaga, **changes)
    for name in ("trace_parent", "timeout_ms", "timeout_expires_at", "is_completed"):
        state.attribute_values[name] = extra
    check_encode(state)


@PROPERTY
@given(items=st.one_of(st.lists(TEXT, max_size=4), st.lists(TEXT, max_size=3).map(tuple)))
def test_encode_matches_pynamodb_for_lists_of_text(items: Any) -> None:
    check_encode(filled(OrderSaga, items=items))


@PROPERTY
@given(
    name=st.sampled_from(["saga_name", "saga_id", "correlation_id", "created_at", "status"]),
    value=st.one_of(st.none(), TEXT, WRONG_TYPES),
)
def test_encode_refuses_what_pynamodb_refuses_in_required_fields(name: str, value: Any) -> None:
    state = filled(OrderSaga)
    state.attribute_values[name] = value
    check_encode(state)


NUMBER_TEXT = r"-?0*[0-9]{1,40}(\.[0-9]{0,3})?(E[+-]?[0-9]{1,3})?"

#: Wire values as another writer might have stored them, right or wrong for the attribute.
WIRE_VALUES = st.one_of(
    st.builds(lambda t: {"S": t}, TEXT),
    st.builds(
        lambda n: {"N": n},
        st.from_regex(r"-?[0-9]{1,5}(\.[0-9]{0,3})?(E[+-]?[0-9])?", fullmatch=True),
    ),
    st.builds(lambda n: {"N": str(n)}, st.integers(-(10**40), 10**40)),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda t: {"SS": [t]}, TEXT),
    st.just({"L": [{"S": "a"}, {"N": "1"}]}),
    st.just({"M": {"k": {"S": "v"}}}),
    st.builds(
        lambda d: {"S": d.isoformat()},
        st.datetimes(timezones=st.just(timezone.utc), min_value=datetime(1000, 1, 1)),
    ),
)


@with_examples(300)
@given(
    wire=st.dictionaries(
        st.sampled_from(
            ["count", "label", "flag", "version", "isCompleted", "createdAt", "ttl", "other"]
        ),
        WIRE_VALUES,
    )
)
def test_decode_matches_pynamodb_on_items_of_any_shape(wire: dict[str, Any]) -> None:
    item = {"sagaName": {"S": "PropSaga"}, "sagaId": {"S": "id-1"}, **wire}
    check_decode(PropSaga, item)


@with_examples(200)
@given(
    elements=st.lists(
        st.one_of(
            st.builds(lambda t: {"S": t}, TEXT),
            st.just({"NULL": True}),
            st.just({"N": "1"}),
            st.just({"S": "a", "N": "1"}),
        ),
        max_size=4,
    ),
    kind=st.sampled_from(["L", "SS", "S"]),
)
def test_decode_matches_pynamodb_on_lists_of_text(elements: list[Any], kind: str) -> None:
    wire = {"L": elements} if kind == "L" else {kind: "x" if kind == "S" else ["x"]}
    item = {"sagaName": {"S": "OrderSaga"}, "sagaId": {"S": "id-1"}, "items": wire}
    check_decode(OrderSaga, item)


@PROPERTY
@given(
    text=st.one_of(
        st.sampled_from(["0", "-0", "00", "007", "-007", "1.50", "1E+5", "-12", "٣", "1_0"]),
        st.from_regex(NUMBER_TEXT, fullmatch=True),
    ),
    field=st.sampled_from(["count", "version", "ttl"]),
)
def test_decode_matches_pynamodb_on_number_texts(text: str, field: str) -> None:
    item = {"sagaName": {"S": "PropSaga"}, "sagaId": {"S": "id-1"}, field: {"N": text}}
    check_decode(PropSaga, item)


@PROPERTY
@given(
    digits=st.one_of(
        st.integers(-(10**130), 10**130).map(str),
        st.from_regex(r"-?0*[0-9]{1,45}0*", fullmatch=True),
        st.sampled_from(["0", "-0", "00", "9" * 38, "9" * 39, "1" + "0" * 125, "1" + "0" * 126]),
    )
)
def test_integer_sizes_match_the_decimal_count(digits: str) -> None:
    """Integers are sized without Decimal; ``"12.0"`` still takes the Decimal route."""
    try:
        expected = number_size(digits + ".0")
    except ValueError:
        with pytest.raises(ValueError, match=r"significant digits|range"):
            number_size(digits)
        return
    assert number_size(digits) == expected


@PROPERTY
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.one_of(
            st.just(timezone.utc),
            st.builds(timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))),
        ),
    )
)
def test_timestamps_are_written_as_javascript_writes_them(moment: datetime) -> None:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, read back as the same instant."""
    attribute = UTCTimestampAttribute()
    text = attribute.serialize(moment)
    utc = moment.astimezone(timezone.utc)
    assert text == f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"
    assert attribute.deserialize(text) == moment


# -- models the codec must leave to PynamoDB ------------------------------------------------


class UpperAttribute(UnicodeAttribute):
    """Stores text upper-cased: an attribute that changes how it serializes."""

    def serialize(self, value: str) -> str:
        return value.upper()


class CustomSaga(SagaModel):
    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    code = UpperAttribute(null=True)
    loud = BooleanAttribute(default=True)
    amount = NumberAttribute(default=lambda: 7)


class InitSaga(SagaModel):
    """A model whose constructor does more than PynamoDB's."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.built_by_init = True


def test_an_attribute_that_serializes_its_own_way_is_serialized_by_itself() -> None:
    state = filled(CustomSaga, code="abc")
    item, _ = _model_info(CustomSaga).codec.encode(state, 0, TOKEN)
    assert item["code"] == {"S": "ABC"}
    check_encode(state)


def test_defaults_are_applied_when_loading_as_pynamodb_applies_them() -> None:
    item = {"sagaName": {"S": "CustomSaga"}, "sagaId": {"S": "id-1"}, "version": {"N": "0"}}
    loaded = _model_info(CustomSaga).codec.decode(item)
    assert (loaded.loud, loaded.amount) == (True, 7)
    check_decode(CustomSaga, item)


def test_a_model_with_its_own_constructor_is_loaded_through_it() -> None:
    item = {"sagaName": {"S": "InitSaga"}, "sagaId": {"S": "id-1"}, "version": {"N": "2"}}
    loaded = _model_info(InitSaga).codec.decode(item)
    assert getattr(loaded, "built_by_init", False) is True
    assert loaded.version == 2


@pytest.mark.parametrize("value", [math.nan, 10**38 + 1, -(10**126), Decimal("1e200"), 1e23, True])
def test_numbers_dynamodb_would_refuse_or_change_name_the_field(value: Any) -> None:
    state = filled(OrderSaga)
    state.attribute_values["total_cents"] = value
    with pytest.raises(SagaValidationError) as caught:
        _model_info(OrderSaga).codec.encode(state, 0, TOKEN)
    assert caught.value.field == "state.total_cents"


def test_the_size_counts_the_token_and_the_version() -> None:
    state = filled(OrderSaga)
    expected, size = reference_encode(state, 12)
    assert _model_info(OrderSaga).codec.encode(state, 12, TOKEN) == (expected, size)
    assert size == item_size(expected)


def test_a_naive_timestamp_is_refused_with_its_field() -> None:
    state = filled(OrderSaga)
    state.attribute_values["archived_at"] = datetime(2026, 1, 1) + timedelta(hours=1)
    with pytest.raises(SagaValidationError) as caught:
        _model_info(OrderSaga).codec.encode(state, 0, TOKEN)
    assert caught.value.field == "state.archived_at"
