"""The one place where requests are sent and AWS errors become the store's errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection

from ._size import ITEM_SIZE_LIMIT
from .errors import (
    SagaStoreRequestError,
    SagaStoreUnavailableError,
    SagaTooLargeError,
    SagaValidationError,
    TableNotFoundError,
)
from .retry import RetryPolicy, is_retryable, may_have_landed

__all__ = ["ConditionFailed", "dispatch"]

_log = logging.getLogger("saga_store_pynamo")
DEFAULT_POLICY = RetryPolicy()
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_NO_CAPACITY_REPORT = frozenset(
    {"DescribeTimeToLive", "UpdateContinuousBackups", "DescribeContinuousBackups"}
)


class ConditionFailed(Exception):
    """A conditional write was refused; ``item`` is the stored item DynamoDB returned.

    Internal: callers turn it into a domain error (conflict, already exists, not found).
    """

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("ConditionalCheckFailedException")
        self.item = item


def dispatch(
    connection: Connection,
    table_name: str,
    operation: str,
    request: dict[str, Any],
    policy: RetryPolicy = DEFAULT_POLICY,
) -> dict[str, Any]:
    """Send one request through PynamoDB's funnel (``Connection.dispatch``), retrying
    throttling, server errors and dropped connections as ``policy`` says.

    :raises ConditionFailed: the request's condition was not met.
    :raises SagaStoreError: a subclass for every other failure, with the cause chained.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            if operation in _NO_CAPACITY_REPORT:
                # Connection.dispatch adds ReturnConsumedCapacity, which these reject.
                response: dict[str, Any] = connection._make_api_call(operation, request)
            else:
                response = connection.dispatch(operation, request)
            return response
        except ClientError as exc:
            # PynamoDB re-raises botocore's error; the original keeps the full response.
            original = exc.__cause__ if isinstance(exc.__cause__, ClientError) else exc
            error = original.response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                raise ConditionFailed(original.response.get("Item")) from original
            if not is_retryable(original):
                raise_translated(operation, table_name, error, original)
            failure: BaseException = original
        except BotoCoreError as exc:
            if not is_retryable(exc):
                raise SagaStoreRequestError(operation, None, str(exc)) from exc
            failure = exc
        if attempt >= policy.max_attempts:
            code = getattr(failure, "response", {}).get("Error", {}).get("Code")
            raise SagaStoreUnavailableError(
                operation,
                code,
                f"{code or type(failure).__name__}: {failure}",
                attempts=attempt,
                may_have_landed=operation in _WRITES and may_have_landed(failure),
            ) from failure
        if policy.on_retry is not None:
            policy.on_retry(operation, attempt, failure)
        _log.info("retrying %s after attempt %d failed: %s", operation, attempt, failure)
        time.sleep(policy.delay(attempt))


def raise_translated(
    operation: str, table_name: str, error: Mapping[str, Any], cause: BaseException
) -> NoReturn:
    """Raise the store's error for a DynamoDB error response (``{"Code", "Message"}``)."""
    code = error.get("Code")
    message = str(error.get("Message", ""))
    if code == "ResourceNotFoundException":
        raise TableNotFoundError(table_name) from cause
    if code == "ValidationException":
        if "item size" in message.lower():
            raise SagaTooLargeError(
                "state", None, ITEM_SIZE_LIMIT, f"DynamoDB refused the item as too large: {message}"
            ) from cause
        raise SagaValidationError("request", f"DynamoDB refused {operation}: {message}") from cause
    raise SagaStoreRequestError(operation, code, f"{code}: {message}") from cause
