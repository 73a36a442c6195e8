"""DynamoDB attribute values (``{"S": ...}``, ...) as plain JSON data, for people to read.

One rendering for the CLI's ``show`` and ``list --json`` and for ``tail``: S, BOOL, NULL, L and
M as themselves, N as a JSON number (an integer exactly, any other as the nearest double),
binary as base64 text, sets as lists sorted since DynamoDB keeps no order (SS by code point,
NS by value, BS by bytes).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["base64_text", "number", "plain_value"]


def plain_value(value: Mapping[str, Any]) -> Any:
    """``value`` as plain JSON data.

    :raises ValueError: ``value`` is not one DynamoDB attribute value of a known type.
    """
    ((kind, data),) = value.items()
    if kind in ("S", "BOOL"):
        return data
    if kind == "NULL":
        return None
    if kind == "N":
        return number(data)
    if kind == "B":
        return base64_text(data)
    if kind == "SS":
        return sorted(data)
    if kind == "NS":
        return [number(each) for each in sorted(data, key=Decimal)]
    if kind == "BS":
        return [base64_text(blob) for blob in sorted(data)]
    if kind == "L":
        return [plain_value(element) for element in data]
    if kind == "M":
        return {name: plain_value(element) for name, element in data.items()}
    raise ValueError(f"cannot print a DynamoDB value of type {kind!r}")


def number(text: str) -> int | float:
    """A DynamoDB number as an int when it is integral, else the nearest float."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def base64_text(data: bytes | str) -> str:
    """Binary as base64 text; a str is already base64 (as Lambda delivers binary values)."""
    return data if isinstance(data, str) else base64.b64encode(data).decode("ascii")
