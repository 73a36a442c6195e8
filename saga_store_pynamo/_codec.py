"""Turning a saga state into a DynamoDB item and back, fast, with PynamoDB's exact results.

``Model.serialize`` and ``Model.from_raw_data`` go through every attribute's descriptor,
several ``isinstance`` checks and, for reads, two rounds of defaults: about 55 µs to write
and 45 µs to read a small saga, as much as the store's own work and the item-size count put
together. A ``ModelCodec`` is built once per model class. For the attribute kinds a saga
mostly holds (``UnicodeAttribute``, ``NumberAttribute`` holding an int, ``BooleanAttribute``,
``UTCTimestampAttribute``) it produces the wire value and its size in one step; every other
attribute, and any subclass that changes how it serializes, goes through the attribute's
own ``serialize``/``deserialize`` as PynamoDB would call it. The result is the same item,
the same state and the same errors as PynamoDB's own path (tests/test_codec.py checks this
on random states), at a third of the cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pynamodb.attributes import (
    Attribute,
    AttributeContainer,
    BinaryAttribute,
    BinarySetAttribute,
    BooleanAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    NumberSetAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
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
from .errors import SagaTooLargeError, SagaValidationError
from .models import SagaModel, UTCTimestampAttribute

__all__ = ["ModelCodec"]

# How a field is written and read: the fast kinds, and GENERIC for everything else.
_STR, _NUM, _BOOL, _TIME, _VERSION, _STR_LIST, _GENERIC = range(7)


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


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str  # Python attribute name: the key of ``attribute_values``
    attr_name: str  # DynamoDB attribute name
    attribute: Attribute[Any]
    kind: int
    name_size: int  # UTF-8 bytes of attr_name
    null: bool


class ModelCodec:
    """Encodes states of one model class into items and decodes items into states.

    :param version_name: the DynamoDB name of the model's version attribute, whose value
        the caller passes to ``encode`` (the store decides the version, not the state).
    :param token_name: the attribute in which ``encode`` stores the write token it is given.
    """

    def __init__(self, model: type[SagaModel], version_name: str, token_name: str) -> None:
        self.model = model
        self.version_name = version_name
        self.token_name = token_name
        # Bytes of the version's and token's names, and of a token (32 hex digits).
        self._fixed_size = len(version_name.encode("utf-8")) + len(token_name.encode("utf-8"))
        self._fields = tuple(
            _Field(
                name=name,
                attr_name=attribute.attr_name,
                attribute=attribute,
                kind=_kind_of(attribute),
                name_size=len(attribute.attr_name.encode("utf-8")),
                null=bool(attribute.null),
            )
            for name, attribute in model.get_attributes().items()
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

    def encode(self, state: SagaModel, version: int, token: str) -> tuple[dict[str, Any], int]:
        """The item ``state`` serializes to, with ``version`` and ``token``, and its size.

        The same item as ``state.serialize(null_check=True)`` (plus the token), after the
        checks that keep a value from being stored as something else or refused by DynamoDB.

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
                    except ValueError as exc:
                        raise _invalid(field, exc) from exc
                    item[field.attr_name] = wire
        text = str(version)
        item[self.version_name] = {"N": text}
        item[self.token_name] = {"S": token}
        size += self._fixed_size + number_size(text) + len(token)  # the token is ASCII
        if size > ITEM_SIZE_LIMIT:
            raise SagaTooLargeError("state", size, ITEM_SIZE_LIMIT)
        return item, size

    def decode(self, item: dict[str, Any]) -> SagaModel:
        """The state stored as ``item``: what ``model.from_raw_data(item)`` returns."""
        if not self._fast_decode:
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
            else:
                attribute = field.attribute
                setattr(state, field.name, attribute.deserialize(attribute.get_value(wire)))
        return state


def _serialize(field: _Field, value: Any) -> Any:
    try:
        return field.attribute.serialize(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SagaValidationError(f"state.{field.name}", f"cannot be stored: {exc}") from exc


def _encode_generic(field: _Field, value: Any) -> dict[str, Any] | None:
    """The wire value of one attribute as ``_container_serialize`` makes it, or None."""
    attribute = field.attribute
    _check_type(field.name, attribute, value)
    try:
        if isinstance(value, MapAttribute) and not value.validate(null_check=True):
            raise ValueError(f"Attribute '{field.name}' is not correctly typed")
        if isinstance(attribute, (ListAttribute, MapAttribute)):
            serialized = attribute.serialize(value, null_check=True)
        else:
            serialized = attribute.serialize(value)
    except AttributeNullError as exc:
        exc.prepend_path(field.name)
        raise SagaValidationError(f"state.{exc.attr_path}", "cannot be None") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise SagaValidationError(f"state.{field.name}", f"cannot be stored: {exc}") from exc
    if serialized is None:
        if not field.null:
            raise SagaValidationError(f"state.{field.name}", "cannot be None")
        return None
    return {attribute.attr_type: serialized}


def _invalid(field: _Field, exc: ValueError) -> SagaValidationError:
    error = InvalidAttributeValue(field.attr_name, str(exc))
    return SagaValidationError(f"state.{error.attribute}", error.reason)


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
    (UnicodeAttribute, (str,)),
    (BooleanAttribute, (bool,)),
    (BinaryAttribute, (bytes, bytearray)),
    (UnicodeSetAttribute, (set, frozenset)),
    (NumberSetAttribute, (set, frozenset)),
    (BinarySetAttribute, (set, frozenset)),
    (ListAttribute, (list, tuple)),
    (MapAttribute, (Mapping, MapAttribute)),
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
    if isinstance(attribute, (NumberAttribute, NumberSetAttribute)):
        for number in value if isinstance(value, (set, frozenset)) else (value,):
            if isinstance(number, float) and not _float_survives(number):
                raise SagaValidationError(
                    f"state.{name}",
                    f"the float {number!r} would read back as a different number (DynamoDB "
                    "keeps decimal numbers): store an int or a Decimal instead",
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
