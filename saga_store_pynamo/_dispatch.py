"""The one place where requests are sent and AWS errors become the store's errors."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection
from pynamodb.signals import post_dynamodb_send, pre_dynamodb_send

from ._checksum import checked_client
from ._size import ITEM_SIZE_LIMIT
from .errors import (
    SagaStoreRequestError,
    SagaStoreUnavailableError,
    SagaTooLargeError,
    SagaValidationError,
    TableNotFoundError,
)
from .retry import RetryPolicy, is_retryable, may_have_landed

if TYPE_CHECKING:
    from ._transport import HttpTransport

__all__ = ["ConditionFailed", "RequestObserver", "dispatch"]

_log = logging.getLogger("saga_store_pynamo")
DEFAULT_POLICY = RetryPolicy()
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})

#: Called with ``(operation, request)`` before each attempt is sent, whatever the transport.
RequestObserver = Callable[[str, dict[str, Any]], None]


class ConditionFailed(Exception):
    """A conditional write was refused; ``item`` is the stored item DynamoDB returned.

    ``in_doubt`` is True when an earlier attempt of the same request may have been applied:
    the refusal may then be of this very write. Internal: callers turn it into a domain
    error (conflict, already exists, not found) or recognise their own write.
    """

    def __init__(
        self, item: dict[str, Any] | None, in_doubt: bool = False, attempts: int = 1
    ) -> None:
        super().__init__("ConditionalCheckFailedException")
        self.item = item
        self.in_doubt = in_doubt
        self.attempts = attempts


def dispatch(
    connection: Connection,
    table_name: str,
    operation: str,
    request: dict[str, Any],
    policy: RetryPolicy = DEFAULT_POLICY,
    transport: HttpTransport | None = None,
    observers: Sequence[RequestObserver] = (),
) -> dict[str, Any]:
    """Send one request with the connection's botocore client, retrying throttling, server
    errors and dropped connections as ``policy`` says.

    With ``transport``, each attempt of an operation it ``handles`` goes through it instead
    of the botocore client; the retry loop, and so write tokens, ``may_have_landed`` and
    checksum retries, are the same for both. ``observers`` are called before each attempt.

    The request goes to ``connection.client`` as it is: unlike ``Connection.dispatch``, no
    ``ReturnConsumedCapacity`` is added (the store never reads it) and no request id is
    made for PynamoDB's ``pre_dynamodb_send``/``post_dynamodb_send`` signals unless
    something listens to them; when something does, they are sent around each attempt as
    ``Connection.dispatch`` sends them.

    :raises ConditionFailed: the request's condition was not met.
    :raises SagaStoreError: a subclass for every other failure, with the cause chained.
    """
    attempt = 0
    landed = False  # whether any attempt so far may have been applied
    while True:
        attempt += 1
        for observe in observers:
            observe(operation, request)
        try:
            send: Callable[[str, dict[str, Any]], dict[str, Any]]
            if transport is not None and transport.handles(operation):
                send = transport.send
            else:
                # The property re-creates a client whose credentials came back empty.
                send = checked_client(connection.client)._make_api_call
            if _signals_have_receivers():
                return _send_with_signals(connection, send, table_name, operation, request)
            response: dict[str, Any] = send(operation, request)
            return response
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                raise ConditionFailed(
                    exc.response.get("Item"), in_doubt=landed, attempts=attempt
                ) from exc
            if not is_retryable(exc):
                if landed:
                    _raise_in_doubt(operation, exc, attempt)
                raise_translated(operation, table_name, error, exc)
            failure: BaseException = exc
        except BotoCoreError as exc:
            if not is_retryable(exc):
                if landed:
                    _raise_in_doubt(operation, exc, attempt)
                raise SagaStoreRequestError(operation, None, str(exc)) from exc
            failure = exc
        # A write whose first attempt was applied and answered by a reset stays in doubt
        # however its later attempts fail (throttled ones were never applied).
        landed = landed or (operation in _WRITES and may_have_landed(failure))
        if attempt >= policy.max_attempts:
            raise _unavailable(operation, failure, attempt, landed) from failure
        if policy.on_retry is not None:
            policy.on_retry(operation, attempt, failure)
        _log.info("retrying %s after attempt %d failed: %s", operation, attempt, failure)
        time.sleep(policy.delay(attempt))


def _unavailable(
    operation: str, failure: BaseException, attempts: int, landed: bool
) -> SagaStoreUnavailableError:
    code = (getattr(failure, "response", None) or {}).get("Error", {}).get("Code")
    return SagaStoreUnavailableError(
        operation,
        code,
        f"{code or type(failure).__name__}: {failure}",
        attempts=attempts,
        may_have_landed=landed,
    )


def _raise_in_doubt(operation: str, failure: BaseException, attempts: int) -> NoReturn:
    """An earlier attempt may have been applied, and this one failed for good (expired
    credentials, say): the write's fate is unknown, which only ``may_have_landed`` says."""
    raise _unavailable(operation, failure, attempts, True) from failure


def _signals_have_receivers() -> bool:
    """Whether anything listens to PynamoDB's send signals (never, without blinker)."""
    return bool(
        getattr(pre_dynamodb_send, "receivers", None)
        or getattr(post_dynamodb_send, "receivers", None)
    )


def _send_with_signals(
    connection: Connection,
    send: Callable[[str, dict[str, Any]], dict[str, Any]],
    table_name: str,
    operation: str,
    request: dict[str, Any],
) -> dict[str, Any]:
    """One attempt between PynamoDB's two signals, as ``Connection.dispatch`` sends them."""
    request_id = uuid.uuid4()
    connection.send_pre_boto_callback(operation, request_id, table_name)  # type: ignore[no-untyped-call]
    response = send(operation, request)
    connection.send_post_boto_callback(operation, request_id, table_name)  # type: ignore[no-untyped-call]
    return response


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
