"""The one place where requests are sent and AWS errors become the store's errors.

``dispatch`` (threads) and ``dispatch_async`` (asyncio) are the same loop around one
``Attempts``, which makes every retry decision; only the waiting and the sending differ.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import types
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, TypeVar

import botocore
from botocore.client import BaseClient
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.connection import Connection
from pynamodb.signals import post_dynamodb_send, pre_dynamodb_send

from . import _telemetry
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
    from ._telemetry import RequestTrace
    from ._transport import HttpTransport

__all__ = [
    "AsyncTransport",
    "Attempts",
    "ConditionFailed",
    "RequestObserver",
    "botocore_instrumented",
    "botocore_send",
    "dispatch",
    "dispatch_async",
]

DEFAULT_POLICY = RetryPolicy()
_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})

#: Called with ``(operation, request)`` before each attempt is sent, whatever the transport.
RequestObserver = Callable[[str, dict[str, Any]], None]


class AsyncTransport(Protocol):
    """What ``dispatch_async`` needs of an asyncio transport (``_aiohttp.AsyncHttpTransport``)."""

    def handles(self, operation: str) -> bool:
        """Whether ``operation`` goes through this transport now."""
        ...

    async def send(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        """One attempt: the parsed response, or the botocore exception of the failure."""
        ...


class ConditionFailed(Exception):
    """A conditional write was refused; ``item`` is the stored item DynamoDB returned.

    ``in_doubt`` is True when an earlier attempt of the same request may have been applied:
    the refusal may then be of this very write. Internal: callers turn it into a domain
    error (conflict, already exists, not found) or recognise their own write.
    """

    #: DynamoDB's error code, as telemetry reports it.
    code = "ConditionalCheckFailedException"

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
    trace: RequestTrace | None = None,
) -> dict[str, Any]:
    """Send one request with the connection's botocore client, retrying throttling, server
    errors and dropped connections as ``policy`` says.

    With ``transport``, each attempt of an operation it ``handles`` goes through it instead
    of the botocore client; the retry loop, and so write tokens, ``may_have_landed`` and
    checksum retries, are the same for both. ``observers`` are called before each attempt;
    ``trace`` (``_telemetry``) records the request and its attempts.

    The request goes to ``connection.client`` as it is: unlike ``Connection.dispatch``, no
    ``ReturnConsumedCapacity`` is added (the store never reads it) and no request id is
    made for PynamoDB's ``pre_dynamodb_send``/``post_dynamodb_send`` signals unless
    something listens to them; when something does, they are sent around each attempt as
    ``Connection.dispatch`` sends them.

    :raises ConditionFailed: the request's condition was not met.
    :raises SagaStoreError: a subclass for every other failure, with the cause chained.
    """
    if trace is None:
        return _send(connection, table_name, operation, request, policy, transport, observers)
    with trace:
        return _send(
            connection, table_name, operation, request, policy, transport, observers, trace
        )


def _send(
    connection: Connection,
    table_name: str,
    operation: str,
    request: dict[str, Any],
    policy: RetryPolicy,
    transport: HttpTransport | None,
    observers: Sequence[RequestObserver],
    trace: RequestTrace | None = None,
) -> dict[str, Any]:
    """``dispatch``'s attempts."""
    attempts = Attempts(operation, table_name, policy, trace)
    while True:
        attempts.start(observers, request)
        try:
            own = _own_transport(transport, operation)
            send: Callable[[str, dict[str, Any]], dict[str, Any]] = (
                own.send if own is not None else botocore_send(connection)
            )
            if not _signals_have_receivers():
                response: dict[str, Any] = send(operation, request)
            else:
                request_id = _pre_send_signal(connection, table_name, operation)
                response = send(operation, request)
                _post_send_signal(connection, table_name, operation, request_id)
        except (ClientError, BotoCoreError) as exc:
            delay = attempts.failed(exc)
        else:
            if trace is not None:
                trace.attempt_end(None)
            return response
        time.sleep(delay)


async def dispatch_async(
    connection: Connection,
    table_name: str,
    operation: str,
    request: dict[str, Any],
    policy: RetryPolicy,
    transport: AsyncTransport | None,
    offload: Callable[[Callable[[], dict[str, Any]]], Awaitable[dict[str, Any]]],
    observers: Sequence[RequestObserver] = (),
    trace: RequestTrace | None = None,
) -> dict[str, Any]:
    """``dispatch`` for the asyncio store: the same attempts, retries and errors.

    An attempt that ``transport`` handles is awaited on the event loop; any other one (no
    aiohttp, moto's mock active, a passed ``connection``) is sent by the botocore client in
    a worker thread, through ``offload``. Between attempts the coroutine sleeps.
    """
    if trace is None:
        return await _send_async(
            connection, table_name, operation, request, policy, transport, offload, observers
        )
    with trace:
        return await _send_async(
            connection, table_name, operation, request, policy, transport, offload, observers, trace
        )


async def _send_async(
    connection: Connection,
    table_name: str,
    operation: str,
    request: dict[str, Any],
    policy: RetryPolicy,
    transport: AsyncTransport | None,
    offload: Callable[[Callable[[], dict[str, Any]]], Awaitable[dict[str, Any]]],
    observers: Sequence[RequestObserver],
    trace: RequestTrace | None = None,
) -> dict[str, Any]:
    """``dispatch_async``'s attempts."""
    attempts = Attempts(operation, table_name, policy, trace)
    while True:
        attempts.start(observers, request)
        try:
            signals = _signals_have_receivers()
            request_id = _pre_send_signal(connection, table_name, operation) if signals else None
            own_async = _own_transport(transport, operation)
            if own_async is not None:
                response = await own_async.send(operation, request)
            else:
                response = await offload(
                    functools.partial(botocore_send(connection), operation, request)
                )
            if signals:
                _post_send_signal(connection, table_name, operation, request_id)
        except (ClientError, BotoCoreError) as exc:
            delay = attempts.failed(exc)
        else:
            if trace is not None:
                trace.attempt_end(None)
            return response
        await asyncio.sleep(delay)


class _Handles(Protocol):
    def handles(self, operation: str) -> bool: ...


_T = TypeVar("_T", bound=_Handles)


def _own_transport(transport: _T | None, operation: str) -> _T | None:
    """The store's own transport when it sends ``operation``, else None (botocore sends):
    it handles the operation and no instrumentation waits on botocore's client."""
    if transport is not None and transport.handles(operation) and not botocore_instrumented():
        return transport
    return None


def botocore_instrumented() -> bool:
    """Whether botocore's ``BaseClient._make_api_call`` is wrapped by instrumentation.

    OpenTelemetry's botocore instrumentation, the X-Ray SDK and ddtrace wrap it (with wrapt
    proxies, which are not functions); a plain function put in its place has code from
    outside botocore. Either way the store then sends through botocore, so that what the
    instrumentation records keeps including the store's requests. Cached per object: one
    dict lookup per request.
    """
    global _checked
    current = BaseClient.__dict__.get("_make_api_call")
    checked = _checked
    if current is checked[0]:
        return checked[1]
    instrumented = not isinstance(current, types.FunctionType) or not os.path.abspath(
        current.__code__.co_filename
    ).startswith(_BOTOCORE_DIR)
    _checked = (current, instrumented)
    return instrumented


_BOTOCORE_DIR = os.path.dirname(os.path.abspath(botocore.__file__)) + os.sep
_checked: tuple[object, bool] = (None, False)


def botocore_send(connection: Connection) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """One attempt through the connection's botocore client, its responses CRC32-checked.

    The ``client`` property re-creates a client whose credentials came back empty.
    """
    send: Callable[[str, dict[str, Any]], dict[str, Any]]
    send = checked_client(connection.client)._make_api_call
    return send


class Attempts:
    """The retry decisions of one request, shared by ``dispatch`` and ``dispatch_async``.

    ``start()`` before each attempt; ``failed()`` inside the ``except`` block of a failed
    attempt either raises the store's error or returns the delay before the next attempt.
    """

    __slots__ = ("attempt", "landed", "operation", "policy", "table_name", "trace")

    def __init__(
        self,
        operation: str,
        table_name: str,
        policy: RetryPolicy,
        trace: RequestTrace | None = None,
    ) -> None:
        self.operation = operation
        self.table_name = table_name
        self.policy = policy
        self.trace = trace
        self.attempt = 0
        #: Whether any attempt so far may have been applied.
        self.landed = False

    def start(self, observers: Sequence[RequestObserver], request: dict[str, Any]) -> None:
        """Count an attempt and show it to the observers."""
        self.attempt += 1
        if self.trace is not None:
            self.trace.attempt_start(self.attempt)
        for observe in observers:
            observe(self.operation, request)

    def failed(self, exc: ClientError | BotoCoreError) -> float:
        """Judge a failed attempt: raise the store's error, or return the backoff (seconds).

        :raises ConditionFailed: the condition was not met.
        :raises SagaStoreError: the failure is not retried, or the attempts are used up.
        """
        operation, attempt = self.operation, self.attempt
        landed = self.landed
        if self.trace is not None:
            self.trace.attempt_end(exc)
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                raise ConditionFailed(
                    exc.response.get("Item"), in_doubt=landed, attempts=attempt
                ) from exc
            if not is_retryable(exc):
                if landed:
                    _raise_in_doubt(operation, exc, attempt)
                raise_translated(operation, self.table_name, error, exc)
        elif not is_retryable(exc):
            if landed:
                _raise_in_doubt(operation, exc, attempt)
            raise SagaStoreRequestError(operation, None, str(exc)) from exc
        # A write whose first attempt was applied and answered by a reset stays in doubt
        # however its later attempts fail (throttled ones were never applied).
        landed = self.landed = landed or (operation in _WRITES and may_have_landed(exc))
        policy = self.policy
        if attempt >= policy.max_attempts:
            raise _unavailable(operation, exc, attempt, landed) from exc
        if policy.on_retry is not None:
            policy.on_retry(operation, attempt, exc)
        delay = policy.delay(attempt)
        _telemetry.retrying(operation, attempt, exc, delay, self.trace)
        return delay


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


def _pre_send_signal(connection: Connection, table_name: str, operation: str) -> uuid.UUID:
    """PynamoDB's ``pre_dynamodb_send`` signal, as ``Connection.dispatch`` sends it."""
    request_id = uuid.uuid4()
    connection.send_pre_boto_callback(operation, request_id, table_name)  # type: ignore[no-untyped-call]
    return request_id


def _post_send_signal(
    connection: Connection, table_name: str, operation: str, request_id: uuid.UUID | None
) -> None:
    """PynamoDB's ``post_dynamodb_send`` signal, after a successful attempt."""
    connection.send_post_boto_callback(operation, request_id, table_name)  # type: ignore[no-untyped-call]


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
