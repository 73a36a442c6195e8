"""The store's fast codec gives exactly PynamoDB's items, states and refusals.

``ModelCodec`` replaces ``Model.serialize``, the item-size count and ``Model.from_raw_data``
on the hot path. Each property here runs the same random state (or stored item) through
PynamoDB's own path and through the codec, and requires the same outcome: the same item
and size, the same loaded state, or a refusal from both. Where the codec deliberately
differs (``Decimal`` numbers, naive datetimes for ``UTCDateTimeAttribute``, stored versions
that are not whole numbers, every failure as a ``SagaStoreError``), the reference below says
what it must do instead, and the tests at the end pin each difference. No backend is
involved.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Context, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pynamodb.attributes import (
    BinaryAttribute,
    BinarySetAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    DynamicMapAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NullAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.exceptions import AttributeDeserializationError, AttributeNullError

from saga_store_pynamo import (
    SagaModel,
    SagaStoreError,
    SagaTooLargeError,
    SagaValidationError,
    UTCTimestampAttribute,
)
from saga_store_pynamo._codec import ModelCodec, _check_type
from saga_store_pynamo._size import ITEM_SIZE_LIMIT, item_size, number_size
from saga_store_pynamo.errors import SagaDataError
from saga_store_pynamo.models import DecimalAttribute
from tests.models import OrderSaga
from tests.test_properties import (
    DATETIMES,
    NUMBERS,
    ORDER_CHANGES,
    PROP_FIELDS,
    PROPERTY,
    TEXT,
    TIMEZONES,
    WRONG_TYPES,
    PropSaga,
    construct,
    with_examples,
)

TOKEN = "0123456789abcdef"
#: The store's own text attributes, as the store passes them to ``encode``.
TOKENS = {"sagaWrite3": TOKEN, "sagaIncarnation": "fedcba9876543210"}
REFUSED = (SagaValidationError, AttributeNullError, TypeError, ValueError, OverflowError)


@functools.cache
def codec_for(model: type[SagaModel]) -> ModelCodec:
    """The codec the store builds for ``model`` (built here, without the store)."""
    return ModelCodec(model, "version")


def expected_decimal_text(number: Decimal) -> str:
    """DynamoDB's text for a Decimal, by another route than the codec's: positional, no
    trailing zeros. ValueError when DynamoDB would refuse the number."""
    if not number.is_finite():
        raise ValueError("not finite")
    if not number:
        return "0"
    if not -200 < number.adjusted() < 200:  # keep format() small; refused below anyway
        raise ValueError("out of range")
    text = format(number.normalize(Context(prec=1000)), "f")
    number_size(text)  # 38 significant digits, 1E-130 .. 9.99E+125
    return text


def reference_number(attribute: Any, value: Any) -> dict[str, Any]:
    """The wire value of a number or number set holding a Decimal, or ValueError: its
    decimal text, when the attribute reads it back as the same number."""
    if isinstance(value, Decimal):
        text = expected_decimal_text(value)
        if json.loads(text) != value:
            raise ValueError("reads back as another number")
        return {"N": text}
    texts = []
    for number in value:
        if isinstance(number, Decimal):
            texts.append(reference_number(attribute, number)["N"])
        else:
            texts.append(json.dumps(number))
    return {"NS": texts}


def reference_encode(state: SagaModel, version: int) -> tuple[dict[str, Any], int]:
    """The item and size by PynamoDB's path: the type checks, ``serialize``, ``item_size``;
    Decimal numbers, which PynamoDB cannot serialize, as ``reference_number`` says."""
    decimals = {}
    for name, attribute in state.get_attributes().items():
        value = state.attribute_values.get(name)
        if value is not None and name != "version":
            _check_type(name, attribute, value)
            if type(attribute) in (NumberAttribute, NumberSetAttribute) and (
                isinstance(value, Decimal)
                or (isinstance(value, (set, frozenset)) and any(type(v) is Decimal for v in value))
            ):
                decimals[name] = reference_number(attribute, value)
    rest = object.__new__(type(state))
    rest.attribute_values = {k: v for k, v in state.attribute_values.items() if k not in decimals}
    item = rest.serialize(null_check=True)
    for name, wire in decimals.items():
        item[state.get_attributes()[name].attr_name] = wire
    item["version"] = {"N": str(version)}
    for name, token in TOKENS.items():
        item[name] = {"S": token}
    size = item_size(item)
    if size > ITEM_SIZE_LIMIT:
        raise SagaTooLargeError("state", size, ITEM_SIZE_LIMIT)
    return item, size


def check_encode(state: SagaModel) -> None:
    """The codec encodes ``state`` as PynamoDB does, or both refuse it."""
    codec = codec_for(type(state))
    try:
        expected = reference_encode(state, 3)
    except REFUSED:
        with pytest.raises(SagaValidationError):
            codec.encode(state, 3, TOKENS)
        return
    item, size = codec.encode(state, 3, TOKENS)
    assert _same_item(item, expected[0])
    assert size == expected[1]
    check_decode(type(state), expected[0])


def _same_item(item: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Equal items; number sets may list their members in another order."""

    def canonical(wire: dict[str, Any]) -> Any:
        return {"NS": sorted(wire["NS"])} if "NS" in wire else wire

    return item.keys() == expected.keys() and all(
        canonical(item[k]) == canonical(expected[k]) for k in item
    )


def comparable(state: SagaModel) -> dict[str, Any]:
    """A state's values with their exact types (1 and 1.0 and True differ)."""
    return {
        name: (type(value), value.as_dict() if isinstance(value, MapAttribute) else value)
        for name, value in state.attribute_values.items()
    }


#: A JSON number: the texts PynamoDB's ``json.loads`` reads.
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def stored_version(item: dict[str, Any]) -> int | None:
    """The version the codec loads from ``item``: the exact whole number (PynamoDB reads
    ``"1E+30"`` through a float), None when there is none.

    :raises ValueError: a version that is not a non-negative whole number within DynamoDB's
        range (PynamoDB would truncate ``7.5`` to 7 and load ``-1``).
    """
    wire = item.get("version")
    if not wire or "NULL" in wire:
        return None
    text = wire.get("N")
    if not isinstance(text, str) or not JSON_NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {wire!r}")
    number = Decimal(text)
    if number < 0 or number.adjusted() > 125 or number != number.to_integral_value():
        raise ValueError(f"not a non-negative whole number: {text}")
    return int(number)


def check_decode(model: type[SagaModel], item: dict[str, Any]) -> None:
    """The codec loads ``item`` as ``from_raw_data`` does, or refuses it with a
    ``SagaDataError`` caused by PynamoDB's refusal; a bad stored version is refused."""
    codec = codec_for(model)
    try:
        version = stored_version(item)
    except ValueError:
        with pytest.raises(SagaDataError) as refused:
            codec.decode(item)
        if refused.value.field != "version":  # another field failed first: it must fail
            with pytest.raises(Exception):  # noqa: B017, PT011
                model.from_raw_data({k: v for k, v in item.items() if k != "version"})
        return
    try:
        expected = model.from_raw_data(item)
    except Exception as exc:
        failure: type[Exception] | None = type(exc)
    else:
        failure = None
    if failure is not None:
        with pytest.raises(SagaDataError) as caught:
            codec.decode(item)
        assert type(caught.value.__cause__) is failure
        return
    if version is not None:
        expected.attribute_values["version"] = version
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
    item, _ = codec_for(CustomSaga).encode(state, 0, TOKENS)
    assert item["code"] == {"S": "ABC"}
    check_encode(state)


def test_defaults_are_applied_when_loading_as_pynamodb_applies_them() -> None:
    item = {"sagaName": {"S": "CustomSaga"}, "sagaId": {"S": "id-1"}, "version": {"N": "0"}}
    loaded = codec_for(CustomSaga).decode(item)
    assert (loaded.loud, loaded.amount) == (True, 7)
    check_decode(CustomSaga, item)


def test_a_model_with_its_own_constructor_is_loaded_through_it() -> None:
    item = {"sagaName": {"S": "InitSaga"}, "sagaId": {"S": "id-1"}, "version": {"N": "2"}}
    loaded = codec_for(InitSaga).decode(item)
    assert getattr(loaded, "built_by_init", False) is True
    assert loaded.version == 2


@pytest.mark.parametrize("value", [math.nan, 10**38 + 1, -(10**126), Decimal("1e200"), 1e23, True])
def test_numbers_dynamodb_would_refuse_or_change_name_the_field(value: Any) -> None:
    state = filled(OrderSaga)
    state.attribute_values["total_cents"] = value
    with pytest.raises(SagaValidationError) as caught:
        codec_for(OrderSaga).encode(state, 0, TOKENS)
    assert caught.value.field == "state.total_cents"


def test_the_size_counts_the_token_and_the_version() -> None:
    state = filled(OrderSaga)
    expected, size = reference_encode(state, 12)
    assert codec_for(OrderSaga).encode(state, 12, TOKENS) == (expected, size)
    assert size == item_size(expected)


def test_a_naive_timestamp_is_refused_with_its_field() -> None:
    state = filled(OrderSaga)
    state.attribute_values["archived_at"] = datetime(2026, 1, 1) + timedelta(hours=1)
    with pytest.raises(SagaValidationError) as caught:
        codec_for(OrderSaga).encode(state, 0, TOKENS)
    assert caught.value.field == "state.archived_at"


# -- Decimal numbers ------------------------------------------------------------------------


class MoneySaga(SagaModel):
    """Numbers of every kind that takes a Decimal."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    amount = NumberAttribute(null=True)
    scores = NumberSetAttribute(null=True)
    price = DecimalAttribute(null=True)
    prices = ListAttribute(of=DecimalAttribute, null=True)  # type: ignore[var-annotated]


def money(**fields: Any) -> Any:
    state = filled(MoneySaga)
    state.attribute_values.update(fields)
    return state


@pytest.mark.parametrize(
    ("number", "text", "loaded"),
    [
        (Decimal("1E+23"), "100000000000000000000000", 10**23),  # the float 1e23 is refused
        (Decimal("12.50"), "12.5", 12.5),
        (Decimal("-0.000"), "0", 0),
        (Decimal("7"), "7", 7),
        (Decimal("-3.750E-1"), "-0.375", -0.375),
        (Decimal("9" * 38), "9" * 38, 10**38 - 1),
        (Decimal("9.99E+125"), "999" + "0" * 123, 999 * 10**123),
    ],
)
def test_a_decimal_in_a_number_attribute_is_stored_as_its_decimal_text(
    number: Decimal, text: str, loaded: Any
) -> None:
    """PynamoDB's json.dumps refuses a Decimal; the codec writes DynamoDB's own text, and
    the number loads as PynamoDB loads numbers: int or float, equal to the Decimal."""
    codec = codec_for(MoneySaga)
    state = money(amount=number, version=0)
    item, size = codec.encode(state, 0, TOKENS)
    assert item["amount"] == {"N": text}
    assert size == item_size(item)
    back = codec.decode(item)
    assert type(back.amount) is type(loaded)
    assert back.amount == loaded == number
    assert back == state  # the model's == takes Decimals too


def test_a_number_set_may_hold_decimals() -> None:
    codec = codec_for(MoneySaga)
    item, size = codec.encode(money(scores={Decimal("2.50"), 7, 0.25}), 0, TOKENS)
    assert sorted(item["scores"]["NS"]) == ["0.25", "2.5", "7"]
    assert size == item_size(item)
    assert codec.decode(item).scores == {2.5, 7, 0.25}


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("amount", Decimal("NaN"), "finite"),
        ("amount", Decimal("sNaN"), "finite"),
        ("amount", Decimal("-Infinity"), "finite"),
        ("amount", Decimal("1" * 39), "38"),
        ("amount", Decimal("1.00000000000000000000000000000000000001"), "38"),
        ("amount", Decimal("1E+126"), "9.99E+125"),
        ("amount", Decimal("1E-131"), "1E-130"),
        ("amount", Decimal("19.99"), "DecimalAttribute"),  # would load as the float 19.99
        ("scores", {Decimal("Infinity")}, "finite"),
        ("scores", {Decimal("0.1"), 3}, "DecimalAttribute"),
        ("price", Decimal("NaN"), "finite"),
        ("price", Decimal("1" * 39), "38"),
        ("price", 19.99, "float"),
        ("prices", [Decimal("1"), Decimal("1E+200")], "9.99E+125"),
    ],
)
def test_decimals_dynamodb_would_refuse_or_change_name_the_field_and_the_limit(
    field: str, value: Any, named: str
) -> None:
    with pytest.raises(SagaValidationError) as caught:
        codec_for(MoneySaga).encode(money(**{field: value}), 0, TOKENS)
    assert caught.value.field == f"state.{field}"
    assert named in str(caught.value)


@PROPERTY
@given(
    number=st.one_of(
        st.decimals(),
        st.builds(
            lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
            st.integers(-(10**40), 10**40),
            st.integers(-140, 130),
        ),
    )
)
def test_a_decimal_is_stored_exactly_or_refused(number: Decimal) -> None:
    """A NumberAttribute stores a Decimal when it loads back equal; a DecimalAttribute
    stores every Decimal DynamoDB can hold, and loads it back exactly, as a Decimal."""
    codec = codec_for(MoneySaga)
    try:
        text = expected_decimal_text(number)
    except ValueError:
        for field in ("amount", "price"):
            with pytest.raises(SagaValidationError) as caught:
                codec.encode(money(**{field: number}), 0, TOKENS)
            assert caught.value.field == f"state.{field}"
        return
    item, size = codec.encode(money(price=number), 0, TOKENS)
    assert item["price"] == {"N": text}
    assert size == item_size(item)
    back = codec.decode(item).price
    assert type(back) is Decimal
    assert back == number
    if json.loads(text) == number:
        item, _ = codec.encode(money(amount=number), 0, TOKENS)
        assert item["amount"] == {"N": text}
        assert codec.decode(item).amount == number
    else:
        with pytest.raises(SagaValidationError, match="DecimalAttribute"):
            codec.encode(money(amount=number), 0, TOKENS)


def test_a_decimal_attribute_reads_decimals_in_lists_too() -> None:
    codec = codec_for(MoneySaga)
    item, _ = codec.encode(money(prices=[Decimal("19.99"), 3, None]), 0, TOKENS)
    assert item["prices"] == {"L": [{"N": "19.99"}, {"N": "3"}, {"NULL": True}]}
    assert codec.decode(item).prices == [Decimal("19.99"), Decimal(3), None]


def test_a_decimal_in_a_list_of_numbers_is_refused_with_its_place() -> None:
    """PynamoDB cannot write a Decimal inside a list of NumberAttribute: say where and why."""
    state = filled(PropSaga)
    state.attribute_values["amounts"] = [1, Decimal("2")]
    with pytest.raises(SagaValidationError) as caught:
        codec_for(PropSaga).encode(state, 0, TOKENS)
    assert caught.value.field == "state.amounts[1]"
    assert "expected int or float" in str(caught.value)


# -- every attribute type, given a value it cannot store --------------------------------------


class Event(MapAttribute[str, Any]):
    """A typed map holding a PynamoDB datetime."""

    at = UTCDateTimeAttribute()
    note = UnicodeAttribute(null=True)


class Extras(DynamicMapAttribute):
    """A map with one declared datetime and any other values."""

    at = UTCDateTimeAttribute(null=True)


class Boom(Exception):
    """Not a TypeError or ValueError: any exception a user's attribute may raise."""


class ExplodingAttribute(UnicodeAttribute):
    """A user attribute whose ``serialize`` fails, in several ways, on some values."""

    def serialize(self, value: Any) -> Any:
        if value == "boom":
            raise Boom("the attribute's own failure")
        if value == "key":
            return {}[value]
        if value == "zero":
            return 1 // 0
        return super().serialize(value)


class KindsSaga(SagaModel):
    """One field of each attribute type PynamoDB offers (``ttl``, a ``TTLAttribute``, comes
    from ``SagaModel``), and a user attribute."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    when = UTCDateTimeAttribute(null=True)
    doc = JSONAttribute(null=True)
    blob = BinaryAttribute(null=True, legacy_encoding=False)
    old_blob = BinaryAttribute(null=True, legacy_encoding=True)
    blobs = BinarySetAttribute(null=True, legacy_encoding=False)
    tags = UnicodeSetAttribute(null=True)
    scores = NumberSetAttribute(null=True)
    flag = BooleanAttribute(null=True)
    amount = NumberAttribute(null=True)
    price = DecimalAttribute(null=True)
    label = UnicodeAttribute(null=True)
    stamp = UTCTimestampAttribute(null=True)
    stamps = ListAttribute(of=UTCDateTimeAttribute, null=True)
    amounts = ListAttribute(of=NumberAttribute, null=True)
    flags = ListAttribute(of=BooleanAttribute, null=True)  # type: ignore[var-annotated]
    events = ListAttribute(of=Event, null=True)  # type: ignore[var-annotated]
    anything = ListAttribute(null=True)  # type: ignore[var-annotated]
    event = Event(null=True)
    extras = Extras(null=True)
    raw = MapAttribute(null=True)  # type: ignore[var-annotated]
    nothing = NullAttribute(null=True)
    custom = ExplodingAttribute(null=True)


class DiscSaga(SagaModel):
    """A model with PynamoDB's discriminator (a polymorphic model)."""

    class Meta:
        table_name = "sagas"
        region = "us-east-1"

    kind = DiscriminatorAttribute(attr_name="kind")


class ChildSaga(DiscSaga, discriminator="child"):
    pass


class NoOffset(tzinfo):
    """A time zone without an offset: its datetimes are naive, as Python defines it."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None


AWARE = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))
NAIVE = datetime(2026, 3, 4, 5, 6, 7)

#: Values of every shape, most of them wrong for most attribute types.
ANY_VALUES: st.SearchStrategy[Any] = st.one_of(
    WRONG_TYPES,
    TEXT,
    st.sampled_from(["boom", "key", "zero", "", "2026-01-01T00:00:00.000000+0000"]),
    st.sampled_from([AWARE, NAIVE, timedelta(days=1), object(), KindsSaga, ChildSaga, Decimal(1)]),
    st.datetimes(timezones=TIMEZONES),
    st.sets(st.one_of(st.integers(), st.text(max_size=2), st.binary(max_size=2)), max_size=2),
    st.frozensets(st.decimals(allow_nan=False), max_size=2),
    st.lists(
        st.one_of(
            st.none(),
            st.integers(),
            st.booleans(),
            st.text(max_size=2),
            st.sampled_from([AWARE, NAIVE, Decimal("0.5")]),
            st.dictionaries(st.sampled_from(["at", "note"]), st.sampled_from([AWARE, NAIVE, "x"])),
        ),
        max_size=3,
    ),
    st.dictionaries(
        st.sampled_from(["at", "note", "x"]),
        st.one_of(st.sampled_from([AWARE, NAIVE, None]), st.text(max_size=2), st.integers()),
        max_size=3,
    ),
)


def assert_refused_naming(exc: SagaValidationError, field: str) -> None:
    assert exc.field == f"state.{field}" or exc.field.startswith(
        (f"state.{field}.", f"state.{field}[")
    ), exc.field
    assert str(exc).startswith(f"{exc.field}: ")


@with_examples(600)
@given(
    field=st.sampled_from(
        sorted(KindsSaga.get_attributes().keys() - SagaModel.get_attributes().keys() | {"ttl"})
    ),
    value=ANY_VALUES,
)
def test_every_attribute_type_stores_a_value_or_refuses_it_naming_the_field(
    field: str, value: Any
) -> None:
    """Whatever the attribute type and the value: a stored item that loads back, or a
    ``SagaValidationError`` naming the field; never another exception."""
    state = filled(KindsSaga)
    state.attribute_values[field] = value
    codec = codec_for(KindsSaga)
    try:
        item, size = codec.encode(state, 0, TOKENS)
    except SagaValidationError as exc:
        assert_refused_naming(exc, field)
        return
    assert size == item_size(item)
    codec.decode(item)


@PROPERTY
@given(value=ANY_VALUES)
def test_a_discriminator_given_a_wrong_value_is_refused_naming_it(value: Any) -> None:
    state = filled(ChildSaga)
    state.attribute_values["kind"] = value
    try:
        item, _ = codec_for(ChildSaga).encode(state, 0, TOKENS)
    except SagaValidationError as exc:
        assert_refused_naming(exc, "kind")
        return
    assert value is ChildSaga
    assert item["kind"] == {"S": "child"}


@pytest.mark.parametrize(
    ("field", "value", "cause"),
    [
        ("custom", "boom", Boom),
        ("custom", "key", KeyError),
        ("custom", "zero", ZeroDivisionError),
        ("event", {"at": "2026-01-01"}, AttributeError),  # PynamoDB's own attribute fails
        ("events", [{"at": 5}], AttributeError),
        ("doc", {1, 2}, TypeError),
        ("ttl", datetime(2026, 1, 1), ValueError),
        ("old_blob", b"x", None),
    ],
)
def test_a_failing_serialize_is_refused_naming_the_field_with_its_cause(
    field: str, value: Any, cause: type[BaseException] | None
) -> None:
    state = filled(KindsSaga)
    state.attribute_values[field] = value
    codec = codec_for(KindsSaga)
    if cause is None:  # control: a value the attribute stores
        codec.encode(state, 0, TOKENS)
        return
    with pytest.raises(SagaValidationError) as caught:
        codec.encode(state, 0, TOKENS)
    assert caught.value.field == f"state.{field}"
    assert type(caught.value.__cause__) is cause


@pytest.mark.parametrize(
    ("field", "value", "path", "named"),
    [
        ("when", "2026-01-01", "state.when", "str for a UTCDateTimeAttribute"),
        ("when", 1767225600, "state.when", "int for a UTCDateTimeAttribute"),
        ("ttl", "soon", "state.ttl", "expected datetime or timedelta"),
        ("stamp", "2026-01-01", "state.stamp", "expected datetime"),
        ("stamps", [AWARE, "x"], "state.stamps[1]", "str in a list of UTCDateTimeAttribute"),
        ("flags", [True, "no"], "state.flags[1]", "str in a list of BooleanAttribute"),
        ("events", ["x"], "state.events[0]", "str in a list of Event"),
        ("tags", {1}, "state.tags", "holds int"),
        ("blobs", {"YWJj"}, "state.blobs", "holds str"),
        ("scores", {True}, "state.scores", "holds bool"),
        ("price", True, "state.price", "bool"),
        ("custom", 5, "state.custom", "int for a ExplodingAttribute"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_with_its_place_and_what_was_expected(
    field: str, value: Any, path: str, named: str
) -> None:
    state = filled(KindsSaga)
    state.attribute_values[field] = value
    with pytest.raises(SagaValidationError) as caught:
        codec_for(KindsSaga).encode(state, 0, TOKENS)
    assert caught.value.field == path
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("when", NAIVE, "state.when"),
        ("when", datetime(2026, 1, 1, tzinfo=NoOffset()), "state.when"),
        ("stamps", [AWARE, NAIVE], "state.stamps[1]"),
        ("event", {"at": NAIVE}, "state.event.at"),
        ("events", [Event(at=AWARE), Event(at=NAIVE)], "state.events[1].at"),
        ("events", [{"at": NAIVE}], "state.events[0].at"),
        ("extras", Extras(at=NAIVE, other=1), "state.extras.at"),
    ],
)
def test_a_naive_datetime_for_pynamodbs_utc_attribute_is_refused(
    field: str, value: Any, path: str
) -> None:
    """PynamoDB would store it as if it were UTC: the instant would depend on the writer."""
    state = filled(KindsSaga)
    state.attribute_values[field] = value
    with pytest.raises(SagaValidationError) as caught:
        codec_for(KindsSaga).encode(state, 0, TOKENS)
    assert caught.value.field == path
    assert "naive datetime" in str(caught.value)
    assert "timezone.utc" in str(caught.value)


def test_an_aware_datetime_for_pynamodbs_utc_attribute_is_stored_as_pynamodb_stores_it() -> None:
    state = filled(KindsSaga)
    state.attribute_values.update(when=AWARE, stamps=[AWARE], event=Event(at=AWARE))
    item, _ = codec_for(KindsSaga).encode(state, 0, TOKENS)
    text = UTCDateTimeAttribute().serialize(AWARE)
    assert text == "2026-03-04T03:06:07.890123+0000"
    assert item["when"] == {"S": text}
    assert item["stamps"] == {"L": [{"S": text}]}
    assert item["event"] == {"M": {"at": {"S": text}}}
    assert codec_for(KindsSaga).decode(item).when == AWARE


# -- loading: stored versions and unreadable attributes -----------------------------------------


def stored(model: type[SagaModel], **wire: Any) -> dict[str, Any]:
    return {"sagaName": {"S": model.__name__}, "sagaId": {"S": "id-1"}, **wire}


@pytest.mark.parametrize("model", [OrderSaga, InitSaga], ids=["fast", "through-pynamodb"])
@pytest.mark.parametrize(
    "wire",
    [{"N": "7.5"}, {"N": "-1"}, {"N": "0.999"}, {"N": "NaN"}, {"N": "1E+400"}, {"S": "7"}],
)
def test_a_stored_version_that_is_not_a_whole_number_is_refused_at_load(
    model: type[SagaModel], wire: dict[str, str]
) -> None:
    """PynamoDB would load 7.5 as 7: the next update would then expect a version that is not
    stored, and fail with a bare ValueError."""
    with pytest.raises(SagaDataError) as caught:
        codec_for(model).decode(stored(model, version=wire))
    error = caught.value
    assert isinstance(error, SagaStoreError)
    assert not isinstance(error, SagaValidationError)  # not the caller's input
    assert (error.field, error.saga_name, error.saga_id) == ("version", model.__name__, "id-1")
    assert str(error).startswith("version: ")
    assert "non-negative integer" in str(error) or "not as a number" in str(error)


@pytest.mark.parametrize(("text", "version"), [("7", 7), ("7.0", 7), ("1E+2", 100), ("-0", 0)])
def test_a_whole_stored_version_in_another_form_loads_as_an_int(text: str, version: int) -> None:
    for model in (OrderSaga, InitSaga):
        loaded = codec_for(model).decode(stored(model, version={"N": text}))
        assert type(loaded.version) is int
        assert loaded.version == version


@pytest.mark.parametrize(
    ("wire", "field", "cause"),
    [
        ({"createdAt": {"S": "yesterday"}}, "created_at", ValueError),
        ({"total_cents": {"S": "12"}}, "total_cents", AttributeDeserializationError),
        ({"items": {"L": [{"N": "1"}]}}, "items", AttributeDeserializationError),
        ({"isCompleted": {"S": "yes"}}, "is_completed", AttributeDeserializationError),
    ],
)
def test_an_attribute_that_cannot_be_loaded_is_named(
    wire: dict[str, Any], field: str, cause: type[Exception]
) -> None:
    with pytest.raises(SagaDataError) as caught:
        codec_for(OrderSaga).decode(stored(OrderSaga, **wire))
    assert caught.value.field == field
    assert type(caught.value.__cause__) is cause


# -- nesting ------------------------------------------------------------------------------------


def nested(levels: int, kind: str) -> Any:
    """A value stored as ``levels`` nested maps (or lists), the attribute's own included."""
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value} if kind == "map" else [value]
    return value


@pytest.mark.parametrize("kind", ["map", "list"])
def test_lists_and_maps_nest_31_levels_as_dynamodb_allows(kind: str) -> None:
    """DynamoDB Local accepts 31 nested maps or lists and refuses 32 (tests/test_bad_input.py
    writes both on each backend)."""
    model, field = (OrderSaga, "extra") if kind == "map" else (PropSaga, "anything")
    codec = codec_for(model)
    state = filled(model)
    state.attribute_values[field] = nested(31, kind)
    item, size = codec.encode(state, 0, TOKENS)
    assert size == item_size(item)
    state.attribute_values[field] = nested(32, kind)
    with pytest.raises(SagaValidationError) as caught:
        codec.encode(state, 0, TOKENS)
    assert caught.value.field == f"state.{field}"
    assert "more than 31 levels" in str(caught.value)
