"""DynamoDB item size, counted the way DynamoDB counts it against its 400 KB item limit.

Rules (DynamoDB developer guide, "Item sizes and formats"): an item is the sum of its
attribute names and values in UTF-8 bytes; numbers take one byte per two significant
digits plus one; booleans and nulls one byte; lists and maps three bytes plus one byte per
element, plus their contents (a map's keys count as names).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "ITEM_SIZE_LIMIT",
    "InvalidAttributeValue",
    "attribute_value_size",
    "item_size",
    "number_size",
    "utf8_len",
]

#: DynamoDB's item size limit: 400 KB, names and values included.
ITEM_SIZE_LIMIT = 400 * 1024


def number_size(text: str) -> int:
    """Bytes DynamoDB uses for a number given in its wire form (e.g. ``"-12.5"``).

    :raises ValueError: when DynamoDB would refuse the number (not a finite number, more than
        38 significant digits, or magnitude outside 1E-130 .. 9.99...E+125).
    """
    if text.isascii() and (text.isdigit() or (text[:1] == "-" and text[1:].isdigit())):
        return _integer_size(text)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{text!r} is not a finite number")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 1  # zero
    # DynamoDB keeps numbers as base-100 digits aligned on the decimal point (powers of ten
    # 2k and 2k+1 share a byte): count the pairs between the lowest and the highest
    # significant digit, plus one byte of exponent, plus one for a minus sign.
    high = exponent + len(digits) - 1
    for digit in digits[::-1]:
        if digit:
            break
        exponent += 1
    low = exponent
    if high - low + 1 > 38:
        raise ValueError(f"{text!r} has more than 38 significant digits")
    if high > 125 or high < -130:
        raise ValueError(f"{text!r} is outside DynamoDB's range (1E-130 to 9.99E+125)")
    return high // 2 - low // 2 + 2 + sign


def _integer_size(text: str) -> int:
    """``number_size`` of an integer's decimal digits (e.g. ``"-1200"``), without Decimal."""
    negative = text[0] == "-"
    digits = text[1:] if negative else text
    significant = digits.lstrip("0")
    if not significant:
        return 1  # zero
    trimmed = significant.rstrip("0")
    high = len(significant) - 1  # power of ten of the highest digit
    low = len(significant) - len(trimmed)  # ... and of the lowest non-zero one
    if high - low + 1 > 38:
        raise ValueError(f"{text!r} has more than 38 significant digits")
    if high > 125:
        raise ValueError(f"{text!r} is outside DynamoDB's range (1E-130 to 9.99E+125)")
    return high // 2 - low // 2 + 2 + negative


def _text_size(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError(f"a string value holds a {type(value).__name__}")
    return utf8_len(value)


def utf8_len(text: str) -> int:
    """UTF-8 bytes of ``text``, without encoding it when it is ASCII (a flag in CPython).

    :raises UnicodeEncodeError: (a ValueError) on lone surrogates, which are not Unicode.
    """
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _number_size(value: Any) -> int:
    if not isinstance(value, str):
        raise ValueError(f"a number value holds a {type(value).__name__}")
    return number_size(value)


def _binary_size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if not isinstance(value, str):
        raise ValueError(f"a binary value holds a {type(value).__name__}")
    # Legacy PynamoDB binary encoding sends base64 text; DynamoDB counts the decoded bytes.
    return len(base64.b64decode(value))


def _members(value: Any, kind: str) -> Any:
    if not isinstance(value, (list, tuple, set, frozenset)) or not value:
        raise ValueError(f"a {kind} value must be a non-empty collection")
    return value


#: How deep lists and maps may nest, a top-level list or map being level 1. DynamoDB
#: documents "32 levels"; DynamoDB Local accepts 31 nested maps or lists (whatever the
#: innermost holds) and refuses 32 ("Nesting Levels have exceeded supported limits").
MAX_NESTING = 31


def attribute_value_size(value: Mapping[str, Any], depth: int = 1) -> int:
    """Bytes of one attribute value in DynamoDB's wire form, e.g. ``{"S": "abc"}``.

    :raises ValueError: for a value DynamoDB would refuse (wrong Python type inside the wire
        form, an invalid number, text that is not valid Unicode, an empty set).
    """
    if not isinstance(value, Mapping) or len(value) != 1:
        raise ValueError(f"not a DynamoDB attribute value: {value!r:.80}")
    ((kind, data),) = value.items()
    if kind == "S":
        return _text_size(data)
    if kind == "N":
        return _number_size(data)
    if kind == "B":
        return _binary_size(data)
    if kind in ("BOOL", "NULL"):
        if not isinstance(data, bool):
            raise ValueError(f"a {kind} value holds a {type(data).__name__}")
        return 1
    if kind == "SS":
        return sum(_text_size(s) for s in _members(data, kind))
    if kind == "NS":
        members = _members(data, kind)
        size = sum(_number_size(n) for n in members)
        if len({Decimal(n) for n in members}) != len(members):
            raise ValueError("a number set holds the same number twice (as DynamoDB reads it)")
        return size
    if kind == "BS":
        return sum(_binary_size(b) for b in _members(data, kind))
    if kind in ("L", "M") and depth > MAX_NESTING:
        raise ValueError(
            f"lists and maps are nested more than {MAX_NESTING} levels deep (DynamoDB's limit)"
        )
    if kind == "L":
        if not isinstance(data, (list, tuple)):
            raise ValueError(f"a list value holds a {type(data).__name__}")
        return 3 + sum(1 + attribute_value_size(v, depth + 1) for v in data)
    if kind == "M":
        if not isinstance(data, Mapping):
            raise ValueError(f"a map value holds a {type(data).__name__}")
        if "" in data:
            raise ValueError("a map holds an empty key, which DynamoDB refuses")
        return 3 + sum(
            1 + _text_size(k) + attribute_value_size(v, depth + 1) for k, v in data.items()
        )
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """Bytes of a whole item in DynamoDB's wire form, names included.

    :raises InvalidAttributeValue: for a value DynamoDB would refuse (a bad number, text
        that is not valid Unicode), naming the top-level attribute.
    """
    total = 0
    for name, value in item.items():
        try:
            total += len(name.encode("utf-8")) + attribute_value_size(value)
        except ValueError as exc:  # UnicodeEncodeError included
            raise InvalidAttributeValue(name, str(exc)) from exc
    return total


class InvalidAttributeValue(ValueError):
    """A value DynamoDB would refuse, found while sizing the item."""

    def __init__(self, attribute: str, reason: str) -> None:
        super().__init__(reason)
        self.attribute = attribute
        self.reason = reason
