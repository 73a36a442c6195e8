"""Opaque page cursors: a DynamoDB key, as URL-safe base64 of its JSON."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import SagaValidationError

__all__ = ["decode_cursor", "encode_cursor"]


def encode_cursor(key: dict[str, Any]) -> str:
    """Encode a ``LastEvaluatedKey`` (or an item's key) as a cursor string."""
    text = json.dumps(key, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(cursor: Any, expected: dict[str, Any]) -> dict[str, Any]:
    """Decode a cursor into an ``ExclusiveStartKey``; it must hold exactly the key attributes
    of ``expected``'s names with the same values where ``expected`` gives one (None: any str).
    """
    if not isinstance(cursor, str) or not cursor:
        raise SagaValidationError("cursor", "must be a cursor string from a previous page")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise SagaValidationError("cursor", "is not a cursor this store returned") from exc
    if not isinstance(key, dict) or set(key) != set(expected):
        raise SagaValidationError("cursor", "is not a cursor this store returned")
    for name, value in expected.items():
        stored = key[name]
        if not (isinstance(stored, dict) and set(stored) == {"S"} and isinstance(stored["S"], str)):
            raise SagaValidationError("cursor", "is not a cursor this store returned")
        if value is not None and stored != value:
            raise SagaValidationError("cursor", "belongs to another saga name")
    return key
