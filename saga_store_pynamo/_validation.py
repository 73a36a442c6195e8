"""Checks of the store's arguments, run before any request so bad input writes nothing."""

from __future__ import annotations

from typing import Any

from .errors import SagaValidationError

__all__ = [
    "MAX_PARTITION_KEY_BYTES",
    "MAX_SORT_KEY_BYTES",
    "MAX_VERSION",
    "check_key",
    "check_version",
]

#: DynamoDB's limit on a partition (hash) key value, in UTF-8 bytes.
MAX_PARTITION_KEY_BYTES = 2048
#: DynamoDB's limit on a sort (range) key value, in UTF-8 bytes; GSI sort keys included.
MAX_SORT_KEY_BYTES = 1024
#: The largest version the store writes: DynamoDB numbers hold 38 significant digits.
MAX_VERSION = 10**38 - 1


def check_key(field: str, value: Any, max_bytes: int) -> str:
    """Return ``value`` if it is a non-empty str of at most ``max_bytes`` UTF-8 bytes."""
    if not isinstance(value, str):
        raise SagaValidationError(field, f"must be a non-empty str, got {type(value).__name__}")
    if not value:
        raise SagaValidationError(field, "must be a non-empty str")
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise SagaValidationError(
                field, "must be valid Unicode text (it contains a lone surrogate)"
            ) from exc
    if size > max_bytes:
        raise SagaValidationError(
            field, f"is {size:,} UTF-8 bytes; DynamoDB's limit for this key is {max_bytes:,}"
        )
    return value


def check_version(field: str, value: Any) -> int:
    """Return ``value`` if it is a non-negative int (bool is not accepted) whose next version,
    ``value + 1``, is at most ``MAX_VERSION``."""
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SagaValidationError(
                field, f"must be a non-negative int, got {type(value).__name__}"
            )
        value = int(value)
    assert isinstance(value, int)
    if value < 0:
        raise SagaValidationError(field, f"must be a non-negative int, got {value}")
    if value >= MAX_VERSION:
        # str() of an int over 4,300 digits raises ValueError: give its size instead.
        got = str(value) if value < 10**100 else f"an int of {value.bit_length():,} bits"
        raise SagaValidationError(
            field,
            f"must be below 10**38 - 1, so that the next version ({field} + 1) fits in "
            f"DynamoDB's 38-digit numbers; got {got}",
        )
    return value
