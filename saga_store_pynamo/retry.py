"""The store's retry policy: which failures are retried, how often, and how long it waits.

The store retries by itself rather than leaving it to botocore, because a retried
conditional write needs care: when the first attempt was applied but its response was lost,
the retry fails its own condition. The store tells that case apart with a write token (see
``docs/reliability.md``); botocore's built-in retries are switched off on connections the
store creates.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

from botocore.exceptions import (
    ChecksumError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

from .errors import SagaValidationError

__all__ = [
    "RETRYABLE_ERROR_CODES",
    "RetryPolicy",
    "backoff_delay",
    "is_retryable",
    "may_have_landed",
]

#: DynamoDB error codes that are retried. Throttling codes mean the request was refused;
#: ``InternalServerError`` and ``ServiceUnavailable`` mean it may or may not have been applied.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
_REFUSED_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
    }
)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How the store retries throttling, server errors and dropped connections.

    Each request is tried at most ``max_attempts`` times; before attempt ``n + 1`` the store
    sleeps a random time in ``[0, min(max_delay, base_delay * 2 ** (n - 1))]`` (exponential
    backoff with full jitter). ``RetryPolicy(max_attempts=1)`` turns retries off.

    :param on_retry: called as ``on_retry(operation, attempt, error)`` before each retry,
        e.g. to count retries in metrics.
    """

    max_attempts: int = 5
    base_delay: float = 0.025
    max_delay: float = 1.0
    on_retry: Callable[[str, int, BaseException], None] | None = None

    def __post_init__(self) -> None:
        if type(self.max_attempts) is not int or self.max_attempts < 1:
            raise SagaValidationError(
                "retry.max_attempts", f"must be an int >= 1, got {self.max_attempts!r}"
            )
        for name in ("base_delay", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise SagaValidationError(
                    f"retry.{name}", f"must be a non-negative number, got {value!r}"
                )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return backoff_delay(attempt, self.base_delay, self.max_delay)


def backoff_delay(
    attempt: int, base_delay: float, max_delay: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    Exponential backoff with full jitter: a uniform draw from
    ``[0, min(max_delay, base_delay * 2 ** (attempt - 1))]``, so colliding workers spread
    out instead of retrying in lock step.

    :param attempt: the number of the attempt that failed, from 1.
    :param base_delay: the cap after the first attempt (seconds).
    :param max_delay: the cap never exceeded (seconds).
    :param rng: the random source (default: the ``random`` module).
    """
    # min() first, in floats: a large attempt must not build a huge int or overflow.
    cap = min(max_delay, base_delay * 2.0 ** min(attempt - 1, 1023))
    return (rng or random).uniform(0.0, cap) if cap > 0 else 0.0


def _code(error: BaseException) -> str | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return code if isinstance(code, str) else None
    return None


def _status(error: BaseException) -> int:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status if isinstance(status, int) else 0
    return 0


def is_retryable(error: BaseException) -> bool:
    """Whether the store retries after ``error`` (a botocore exception)."""
    if isinstance(error, (BotocoreConnectionError, HTTPClientError, ChecksumError)):
        return True  # a corrupted response is retried like a dropped connection
    code = _code(error)
    return code in RETRYABLE_ERROR_CODES or (code is not None and _status(error) >= 500)


def may_have_landed(error: BaseException) -> bool:
    """Whether a write that failed with ``error`` may nevertheless have been applied."""
    if isinstance(error, (ConnectTimeoutError, EndpointConnectionError)):
        return False  # never connected: nothing was sent
    if isinstance(error, (BotocoreConnectionError, HTTPClientError, ChecksumError)):
        return True  # sent, then the connection failed, timed out or corrupted the answer
    return _code(error) not in _REFUSED_CODES
