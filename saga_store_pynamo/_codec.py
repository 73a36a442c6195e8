"""Turning a saga state into a DynamoDB item and back, fast, with PynamoDB's exact results.

``Model.serialize`` and ``Model.from_raw_data`` go through every attribute's descriptor,
several ``isinstance`` checks and, for reads, two rounds of defaults: about 55 µs to write
and 45 µs to read a small saga, as much as the store's own work and the item-size count put
together. A ``ModelCodec`` is built once per model class. For the attribute kinds a saga
mostly holds (``UnicodeAttribute``, ``NumberAttribute`` holding an int, ``BooleanAttribute``,
``UTCTimestampAttribute``) it produces the wire value and its size in one step; every other
attribute, and any subclass that changes how it serializes, goes through the attribute's
own ``serialize``/``deserialize`` as PynamoDB would call it. The result is the same item
and the same state as PynamoDB's own path (tests/test_codec.py checks this on random states),
at a third of the cost, except where PynamoDB would store or load something other than what
was meant; those cases are refused, or handled, on the generic path only:

- a ``Decimal`` in a ``NumberAttribute``/``NumberSetAttribute`` (PynamoDB cannot serialize
  it) is stored as DynamoDB's decimal text when it reads back as the same number;
- a naive datetime in PynamoDB's ``UTCDateTimeAttribute`` (PynamoDB stores it as if UTC) is
  refused, as ``UTCTimestampAttribute`` refuses it;
- a stored version that is not a non-negative integer (PynamoDB truncates ``7.5`` to 7) is
  refused when loading.

Every failure is a ``SagaStoreError`` naming the field, the original exception chained:
``SagaValidationError`` when writing, ``SagaDataError`` when a stored item cannot be loaded.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    Attribute,
    AttributeContainer,
    BinaryAttribute,
    BinarySetAttribute,
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import AttributeNullError
from pynamodb.models import Model

from ._size import (
    ITEM_SIZE_LIMIT,
    InvalidAttributeValue,
    attribute_value_size,
    number_size,
    utf8_len,
)
from .errors import SagaDataError, SagaTooLargeError, SagaValidationError
from .models import DecimalAttribute, SagaModel, UTCTimestampAttribute, dynamodb_number_text

__all__ = ["ModelCodec"]


# How a field is written and read: the fast kinds, and GENERIC for everything else.
_STR, _NUM, _BOOL, _TIME, _VERSION, _STR_LIST, _GENERIC = range(7)
# Whether a field serializes numbers with PynamoDB's json.dumps, which refuses a Decimal.
_NO_NUMBERS, _ONE_NUMBER, _NUMBER_SET = range(3)


def _plain(attribute: Attribute[Any], base: type[Attribute[Any]]) -> bool:
    """Whether ``attribute`` stores and loads exactly as ``base`` does (no override)."""
    kind = type(attribute)
    return (
        isinstance(attribute, base)
        and kind.serialize is base.serialize
        and kind.deserialize is base.deserialize
        and kind.__set__ is base.__set__
        and kind.__get__ is base.__get__
        and kind.get_value is Attribute.get_value
        and attribute.attr_type == base.attr_type
    )


def _kind_of(attribute: Attribute[Any]) -> int:
    if _plain(attribute, UnicodeAttribute):
        return _STR
    if _plain(attribute, NumberAttribute):
        return _NUM
    if _plain(attribute, BooleanAttribute):
        return _BOOL
    if _plain(attribute, UTCTimestampAttribute):
        return _TIME
    if _plain(attribute, VersionAttribute):
        return _VERSION
    if _plain(attribute, ListAttribute) and attribute.element_type is UnicodeAttribute:  # type: ignore[attr-defined]
        return _STR_LIST
    return _GENERIC


def _numbers_of(attribute: Attribute[Any]) -> int:
    serialize = type(attribute).serialize
    if serialize is NumberAttribute.serialize:
        return _ONE_NUMBER
    if serialize is NumberSetAttribute.serialize:
        return _NUMBER_SET
    return _NO_NUMBERS


def _has_utc_datetime(attribute: Attribute[Any], seen: set[type[Any]] | None = None) -> bool:
    """Whether a value of ``attribute`` can hold a ``UTCDateTimeAttribute`` value."""
    if isinstance(attribute, UTCDateTimeAttribute):
        return True
    seen = set() if seen is None else seen
    if isinstance(attribute, ListAttribute):
        element = attribute.element_type
        if element is None:
            return False
        if issubclass(element, UTCDateTimeAttribute):
            return True
        return issubclass(element, MapAttribute) and _map_has_utc_datetime(element, seen)
    if isinstance(attribute, MapAttribute):
        return _map_has_utc_datetime(type(attribute), seen)
    return False


def _map_has_utc_datetime(cls: type[MapAttribute[Any, Any]], seen: set[type[Any]]) -> bool:
    if cls in seen:  # a map that holds itself, through a list say
        return False
    seen.add(cls)
    return any(_has_utc_datetime(a, seen) for a in cls.get_attributes().values())


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str  # Python attribute name: the key of ``attribute_values``
    attr_name: str  # DynamoDB attribute name
    attribute: Attribute[Any]
    kind: int
    name_size: int  # UTF-8 bytes of attr_name
    null: bool
    numbers: int  # _NO_NUMBERS, _ONE_NUMBER or _NUMBER_SET
    datetimes: bool  # whether it can hold a UTCDateTimeAttribute value


class ModelCodec:
    """Encodes states of one model class into items and decodes items into states.

    :param version_name: the DynamoDB name of the model's version attribute, whose value
        the caller passes to ``encode`` (the store decides the version, not the state).
    """

    def __init__(self, model: type[SagaModel], version_name: str) -> None:
        self.model = model
        self.version_name = version_name
        self._version_name_size = len(version_name.encode("utf-8"))
        self._fields = tuple(
            _Field(
                name=name,
                attr_name=attribute.attr_name,
                attribute=attribute,
                kind=_kind_of(attribute),
                name_size=len(attribute.attr_name.encode("utf-8")),
                null=bool(attribute.null),
                numbers=_numbers_of(attribute),
                datetimes=_has_utc_datetime(attribute),
            )
            for name, attribute in model.get_attributes().items()
        )
        self._version_field = next(
            (f.name for f in self._fields if f.attr_name == version_name), version_name
        )
        self._hash_name = next(f.attr_name for f in self._fields if f.attribute.is_hash_key)
        self._range_name = next(
            (f.attr_name for f in self._fields if f.attribute.is_range_key), None
        )
        self._encoded = tuple(f for f in self._fields if f.attr_name != version_name)
        # (name, default, whether it can go straight into attribute_values)
        self._defaults = tuple(
            (f.name, f.attribute.default, f.kind in (_STR, _NUM, _BOOL, _TIME))
            for f in self._fields
            if f.attribute.default is not None
        )
        # Build instances directly only when nothing in the model changes how PynamoDB
        # builds them; otherwise ``from_raw_data`` does it.
        self._fast_decode = (
            getattr(model, "_discriminator", None) is None
            and model.__init__ is Model.__init__
            and model.__new__ is object.__new__
            and model._instantiate.__func__ is AttributeContainer._instantiate.__func__  # type: ignore[attr-defined]
            and model.from_raw_data.__func__ is Model.from_raw_data.__func__  # type: ignore[attr-defined]
            and model._container_deserialize is AttributeContainer._container_deserialize
            and model._set_defaults is AttributeContainer._set_defaults
        )

    def encode(
        self, state: SagaModel, version: int, tokens: Mapping[str, str]
    ) -> tuple[dict[str, Any], int]:
        """The item ``state`` serializes to, with ``version`` and ``tokens``, and its size.

        The same item as ``state.serialize(null_check=True)``, plus ``tokens`` (the store's
        own text attributes: attribute name -> ASCII value), after the checks that keep a
        value from being stored as something else or refused by DynamoDB.

        :raises SagaValidationError: a value cannot be stored (naming the field).
        :raises SagaTooLargeError: the item is over DynamoDB's 400 KB limit.
        """
        item: dict[str, Any] = {}
        size = 0
        values = state.attribute_values
        for field in self._encoded:
            value = values.get(field.name)
            if value is None:
                if not field.null:
                    raise SagaValidationError(f"state.{field.name}", "cannot be None")
                continue
            kind = field.kind
            kind_of_value = type(value)
            if kind == _STR and kind_of_value is str:
                try:
                    size += field.name_size + utf8_len(value)
                except UnicodeEncodeError as exc:
                    raise _invalid(field, exc) from exc
                item[field.attr_name] = {"S": value}
            elif kind == _NUM and kind_of_value is int:
                text = int.__repr__(value)
                try:
                    size += field.name_size + number_size(text)
                except ValueError as exc:
                    raise _invalid(field, exc) from exc
                item[field.attr_name] = {"N": text}
            elif kind == _BOOL and kind_of_value is bool:
                size += field.name_size + 1
                item[field.attr_name] = {"BOOL": value}
            elif kind == _TIME and isinstance(value, datetime):
                text = _serialize(field, value)
                size += field.name_size + len(text)  # ASCII
                item[field.attr_name] = {"S": text}
            elif (
                kind == _STR_LIST
                and (kind_of_value is list or kind_of_value is tuple)
                and all(type(element) is str for element in value)
            ):
                try:
                    # A list: 3 bytes, plus 1 per element and the element's text.
                    size += field.name_size + 3 + sum(1 + utf8_len(e) for e in value)
                except UnicodeEncodeError as exc:
                    raise _invalid(field, exc) from exc
                item[field.attr_name] = {"L": [{"S": element} for element in value]}
            else:
                wire = _encode_generic(field, value)
                if wire is not None:
                    try:
                        size += field.name_size + attribute_value_size(wire)
                    except Exception as exc:  # a value DynamoDB would refuse, however shaped
                        raise _invalid(field, exc) from exc
                    item[field.attr_name] = wire
        text = str(version)
        item[self.version_name] = {"N": text}
        size += self._version_name_size + number_size(text)
        for name, token in tokens.items():
            item[name] = {"S": token}
            size += len(name) + len(token)  # the store's names and tokens are ASCII
        if size > ITEM_SIZE_LIMIT:
            raise SagaTooLargeError("state", size, ITEM_SIZE_LIMIT)
        return item, size

    def decode(self, item: dict[str, Any]) -> SagaModel:
        """The state stored as ``item``: what ``model.from_raw_data(item)`` returns.

        :raises SagaDataError: an attribute cannot be loaded (naming it), or the stored
            version is not a non-negative integer.
        """
        try:
            return self._decode(item)
        except SagaDataError:
            raise
        except Exception as exc:
            raise self._unreadable(item, exc) from exc

    def _decode(self, item: dict[str, Any]) -> SagaModel:
        if not self._fast_decode:
            wire = item.get(self.version_name)
            if wire and "NULL" not in wire:
                self._stored_version(item, wire)
            return self.model.from_raw_data(item)
        state = object.__new__(self.model)
        values: dict[str, Any] = {}
        state.attribute_values = values
        for name, default, direct in self._defaults:
            value = default() if callable(default) else default
            if value is None:
                continue
            if direct:
                values[name] = value
            else:
                setattr(state, name, value)
        for field in self._fields:
            wire = item.get(field.attr_name)
            if not wire or "NULL" in wire:
                continue
            kind = field.kind
            if kind == _STR and "S" in wire:
                values[field.name] = wire["S"]
            elif kind == _BOOL and "BOOL" in wire:
                values[field.name] = bool(wire["BOOL"])
            elif kind == _TIME and "S" in wire:
                values[field.name] = field.attribute.deserialize(wire["S"])
            elif kind in (_NUM, _VERSION) and "N" in wire and _is_plain_int(wire["N"]):
                values[field.name] = int(wire["N"])
            elif kind == _STR_LIST and "L" in wire and _all_text(wire["L"]):
                values[field.name] = [element["S"] for element in wire["L"]]
            elif kind == _VERSION:
                values[field.name] = self._stored_version(item, wire)
            else:
                attribute = field.attribute
                setattr(state, field.name, attribute.deserialize(attribute.get_value(wire)))
        return state

    def _stored_version(self, item: Mapping[str, Any], wire: Any) -> int:
        """The stored version: a non-negative integer, or ``SagaDataError``.

        PynamoDB would load ``7.5`` as 7 and ``-1`` as -1; an update would then expect a
        version that is not stored, and fail later with less to go on.
        """
        text = wire.get("N") if isinstance(wire, dict) else None
        if not isinstance(text, str):
            kinds = ", ".join(wire) if isinstance(wire, dict) else type(wire).__name__
            raise self._data_error(
                item, self._version_field, f"is stored as {kinds}, not as a number"
            )
        if _is_plain_int(text):
            return int(text)
        try:
            number = json.loads(text, parse_float=Decimal)  # the texts PynamoDB reads
        except ValueError:
            number = None
        if (
            isinstance(number, Decimal)
            and number.adjusted() <= 125  # DynamoDB's range: int() stays small
            and number == number.to_integral_value()
        ):
            number = int(number)  # "7.0", "1E+2": whole numbers in another form
        if type(number) is int and number >= 0:
            return number
        raise self._data_error(
            item,
            self._version_field,
            f"is {text[:50]!r}, not a non-negative integer: the store cannot tell which "
            "version the next update must expect",
        )

    def _data_error(self, item: Mapping[str, Any], field: str, message: str) -> SagaDataError:
        return SagaDataError(
            _text(item, self._hash_name), _text(item, self._range_name), field, message
        )

    def _unreadable(self, item: Mapping[str, Any], exc: Exception) -> SagaDataError:
        """The error for an item that failed to load with ``exc``, naming the attribute."""
        for field in self._fields:
            wire = item.get(field.attr_name)
            if not wire or (isinstance(wire, dict) and "NULL" in wire):
                continue
            attribute = field.attribute
            try:
                attribute.deserialize(attribute.get_value(wire))
            except Exception as failure:
                return self._data_error(
                    item,
                    field.name,
                    f"cannot be loaded as a {type(attribute).__name__}: {_describe(failure)}",
                )
        return self._data_error(
            item, "item", f"cannot be loaded as a {self.model.__name__}: {_describe(exc)}"
        )


def _text(item: Mapping[str, Any], name: str | None) -> str | None:
    wire = item.get(name) if name is not None else None
    text = wire.get("S") if isinstance(wire, dict) else None
    return text if isinstance(text, str) else None


def _describe(exc: BaseException) -> str:
    """An exception as a message: its text, with its type when the text alone is unclear."""
    text = str(exc)
    if isinstance(exc, (TypeError, ValueError)) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _serialize(field: _Field, value: Any) -> Any:
    try:
        return field.attribute.serialize(value)
    except Exception as exc:
        raise SagaValidationError(
            f"state.{field.name}", f"cannot be stored: {_describe(exc)}"
        ) from exc


def _encode_generic(field: _Field, value: Any) -> dict[str, Any] | None:
    """The wire value of one attribute as ``_container_serialize`` makes it, or None."""
    attribute = field.attribute
    _check_type(field.name, attribute, value)
    try:
        if field.datetimes:
            path = _naive_datetime(attribute, value, f"state.{field.name}")
            if path is not None:
                raise SagaValidationError(path, _NAIVE_DATETIME)
        if field.numbers and _holds_decimal(value):
            return _encode_decimals(field, value)
        if isinstance(value, MapAttribute) and not value.validate(null_check=True):
            raise ValueError(f"Attribute '{field.name}' is not correctly typed")
        if isinstance(attribute, (ListAttribute, MapAttribute)):
            serialized = attribute.serialize(value, null_check=True)
        else:
            serialized = attribute.serialize(value)
    except SagaValidationError:
        raise
    except AttributeNullError as exc:
        exc.prepend_path(field.name)
        path = exc.attr_path.replace(".[", "[")  # PynamoDB writes list indexes as ".[0]"
        raise SagaValidationError(f"state.{path}", "cannot be None") from exc
    except Exception as exc:  # any attribute's serialize, PynamoDB's or the user's
        raise SagaValidationError(
            f"state.{field.name}", f"cannot be stored: {_describe(exc)}"
        ) from exc
    if serialized is None:
        if not field.null:
            raise SagaValidationError(f"state.{field.name}", "cannot be None")
        return None
    return {attribute.attr_type: serialized}


def _invalid(field: _Field, exc: Exception) -> SagaValidationError:
    error = InvalidAttributeValue(field.name, _describe(exc))
    return SagaValidationError(f"state.{error.attribute}", error.reason)


_NAIVE_DATETIME = (
    "cannot be stored: a naive datetime (no time zone) for a UTCDateTimeAttribute; PynamoDB "
    "would store it as if it were UTC, whatever zone its writer meant: give an aware "
    "datetime, e.g. datetime.now(timezone.utc)"
)


def _naive_datetime(attribute: Attribute[Any], value: Any, path: str) -> str | None:
    """The path of a naive datetime held for a ``UTCDateTimeAttribute`` in ``value``, if any."""
    if value is None:
        return None
    if isinstance(attribute, UTCDateTimeAttribute):
        return path if isinstance(value, datetime) and value.utcoffset() is None else None
    if isinstance(attribute, ListAttribute):
        element = attribute.element_type
        if element is None or not isinstance(value, (list, tuple)):
            return None
        for index, item in enumerate(value):
            inner = f"{path}[{index}]"
            if issubclass(element, UTCDateTimeAttribute):
                if isinstance(item, datetime) and item.utcoffset() is None:
                    return inner
            elif issubclass(element, MapAttribute):
                kind = type(item) if isinstance(item, MapAttribute) else element
                found = _naive_in_map(kind, item, inner)
                if found is not None:
                    return found
        return None
    if isinstance(attribute, MapAttribute):
        return _naive_in_map(type(attribute), value, path)
    return None


def _naive_in_map(cls: type[MapAttribute[Any, Any]], value: Any, path: str) -> str | None:
    for name, attribute in cls.get_attributes().items():
        if isinstance(value, MapAttribute):
            inner = value.attribute_values.get(name)
        elif isinstance(value, Mapping):
            inner = value.get(name)
        else:
            return None
        found = _naive_datetime(attribute, inner, f"{path}.{name}")
        if found is not None:
            return found
    return None


def _holds_decimal(value: Any) -> bool:
    if isinstance(value, Decimal):
        return True
    return isinstance(value, (set, frozenset)) and any(isinstance(v, Decimal) for v in value)


def _encode_decimals(field: _Field, value: Any) -> dict[str, Any]:
    """The wire value of a number, or a set of numbers, holding a ``Decimal``: what PynamoDB
    would send if ``json.dumps`` took Decimals, in DynamoDB's own decimal text."""
    if field.numbers == _ONE_NUMBER:
        return {"N": _decimal_text(field, value)}
    return {
        "NS": [
            _decimal_text(field, number) if isinstance(number, Decimal) else json.dumps(number)
            for number in value
        ]
    }


def _decimal_text(field: _Field, number: Decimal) -> str:
    """DynamoDB's text for ``number``, if the field reads it back as the same number."""
    name = f"state.{field.name}"
    try:
        text = dynamodb_number_text(number)
    except ValueError as exc:
        raise SagaValidationError(name, str(exc)) from exc
    attribute = field.attribute
    try:
        if field.numbers == _ONE_NUMBER:
            back = attribute.deserialize(text)
        else:
            (back,) = attribute.deserialize([text])
        same = bool(back == number)
    except Exception:  # a user's deserialize that cannot read its own number
        back, same = None, False
    if not same:
        raise SagaValidationError(
            name,
            f"{number!r} would read back as {type(back).__name__} {back!r} (a "
            f"{type(attribute).__name__} reads numbers as int or float), not the same "
            "number: declare the field as a DecimalAttribute to store and read Decimals "
            "exactly, or store the float",
        )
    return text


def _all_text(elements: Any) -> bool:
    """Whether every wire element is ``{"S": ...}`` (what a list of text reads back from)."""
    return type(elements) is list and all(
        type(e) is dict and len(e) == 1 and "S" in e for e in elements
    )


def _is_plain_int(text: str) -> bool:
    """Whether ``json.loads(text)`` is ``int(text)``: ASCII digits, no leading zero."""
    return text.isascii() and text.isdigit() and (text[0] != "0" or text == "0")


# The Python types PynamoDB's attributes serialize faithfully. Others are not always refused:
# a str given to a ListAttribute is stored as the list of its characters, a dict given to a
# set attribute as the set of its keys. The first matching class in the MRO decides.
_ACCEPTED_TYPES: tuple[tuple[type[Any], tuple[type[Any], ...]], ...] = (
    (VersionAttribute, (int,)),
    (NumberAttribute, (int, float, Decimal)),
    (DecimalAttribute, (Decimal, int)),
    (UnicodeAttribute, (str,)),
    (BooleanAttribute, (bool,)),
    (BinaryAttribute, (bytes, bytearray)),
    (UnicodeSetAttribute, (set, frozenset)),
    (NumberSetAttribute, (set, frozenset)),
    (BinarySetAttribute, (set, frozenset)),
    (ListAttribute, (list, tuple)),
    (MapAttribute, (Mapping, MapAttribute)),
    (UTCDateTimeAttribute, (datetime,)),
    (UTCTimestampAttribute, (datetime,)),
    (TTLAttribute, (datetime, timedelta)),
    (DiscriminatorAttribute, (type,)),
)

#: What the members of a set attribute's set must be: a set of str given an int stores the
#: int's text, a set of bytes given a str stores its UTF-8 bytes.
_SET_MEMBERS: tuple[tuple[type[Any], tuple[type[Any], ...]], ...] = (
    (UnicodeSetAttribute, (str,)),
    (NumberSetAttribute, (int, float, Decimal)),
    (BinarySetAttribute, (bytes, bytearray)),
)


def _accepted_types(attribute: Any) -> tuple[type[Any], ...] | None:
    for kind, accepted in _ACCEPTED_TYPES:
        if isinstance(attribute, kind):
            return accepted
    return None


def _check_type(name: str, attribute: Attribute[Any], value: Any) -> None:
    """Refuse a top-level value of a type its attribute would store as something else."""
    accepted = _accepted_types(attribute)
    if accepted is None:
        return
    if isinstance(value, bool) and bool not in accepted:
        raise SagaValidationError(
            f"state.{name}", f"cannot be stored: a bool for a {type(attribute).__name__}"
        )
    if not isinstance(value, accepted):
        raise SagaValidationError(
            f"state.{name}",
            f"cannot be stored: {type(value).__name__} for a {type(attribute).__name__} "
            f"(expected {' or '.join(t.__name__ for t in accepted)})",
        )
    if isinstance(value, (set, frozenset)):
        for kind, members in _SET_MEMBERS:
            if isinstance(attribute, kind):
                for member in value:
                    if isinstance(member, bool) or not isinstance(member, members):
                        raise SagaValidationError(
                            f"state.{name}",
                            f"cannot be stored: a {type(attribute).__name__} holds "
                            f"{type(member).__name__} {member!r:.40} (expected "
                            f"{' or '.join(t.__name__ for t in members)})",
                        )
                break
    if isinstance(attribute, (NumberAttribute, NumberSetAttribute)):
        for number in value if isinstance(value, (set, frozenset)) else (value,):
            if isinstance(number, float) and not _float_survives(number):
                raise SagaValidationError(
                    f"state.{name}",
                    f"the float {number!r} would read back as a different number (DynamoDB "
                    "keeps decimal numbers): store an int or a Decimal instead",
                )
    element = getattr(attribute, "element_type", None)
    if isinstance(attribute, ListAttribute) and element is not None:
        _check_elements(name, element, value)


def _check_elements(name: str, element: type[Attribute[Any]], values: Any) -> None:
    """Refuse an element of a typed list that its element attribute cannot store as given
    (a ``ListAttribute(of=BooleanAttribute)`` stores ``"no"`` as True)."""
    accepted = next((a for kind, a in _ACCEPTED_TYPES if issubclass(element, kind)), None)
    if accepted is None:
        return
    if issubclass(element, NumberAttribute):
        accepted = (int, float)  # PynamoDB's json.dumps cannot write a Decimal in a list
    for index, value in enumerate(values):
        if value is None:
            continue
        if (isinstance(value, bool) and bool not in accepted) or not isinstance(value, accepted):
            raise SagaValidationError(
                f"state.{name}[{index}]",
                f"cannot be stored: {type(value).__name__} in a list of {element.__name__} "
                f"(expected {' or '.join(t.__name__ for t in accepted)})",
            )


def _float_survives(number: float) -> bool:
    """Whether a float reads back equal after DynamoDB's decimal round trip.

    PynamoDB sends ``repr(number)``; DynamoDB normalises it, and PynamoDB reads an integral
    result back as an int: 1e23 comes back as 10**23, which is not the float 1e23.
    """
    try:
        stored = Decimal(repr(number))
    except ArithmeticError:
        return True  # NaN and infinities are refused with the wire checks
    if not stored.is_finite():
        return True
    back: float | int = int(stored) if stored == stored.to_integral_value() else float(stored)
    return back == number
