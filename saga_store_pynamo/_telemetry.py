"""Observability: the store's log records, and OpenTelemetry spans and metrics.

Logs go to the stdlib logger ``saga_store_pynamo``: DEBUG for each request attempt, INFO
for a conflict that ``modify`` retries and for a retried write recognised as already applied,
WARNING for a retried fault (throttling, a server error, a dropped connection). No record
holds a credential or a state's field values: only operations, saga names and ids,
versions, attempt numbers, durations and error codes.

Spans and metrics go through the OpenTelemetry API when ``opentelemetry-api`` is importable
(the ``[otel]`` extra) and a provider is configured (an SDK). Each store call is one CLIENT
span; a call that may send several requests (``modify``, ``find_by_name`` ...) gets a child
span per request. See ``docs/observability.md`` for the names and attributes.

Cost: a store call starts a ``CallTrace`` only when something records (a configured tracer
or meter provider, or the logger enabled for DEBUG); otherwise ``start_call`` returns None
after a few cached checks, and the request path builds nothing. Providers are resolved once
(and again only when the global provider changes).

In tests, ``use(tracer_provider=..., meter_provider=...)`` sends the store's spans and
metrics to given providers instead of the global ones (OpenTelemetry's global providers can
be set only once per process); ``use()`` goes back to the global ones.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ChecksumError

from .models import SagaModel
from .retry import RETRYABLE_ERROR_CODES

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from ._steps import Send

try:
    from opentelemetry import context as _context
    from opentelemetry import metrics as _metrics
    from opentelemetry import trace as _trace
    from opentelemetry.metrics import _internal as _metrics_internal
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError:  # the [otel] extra is not installed: logs only
    _trace = None  # type: ignore[assignment]
    _metrics = None  # type: ignore[assignment]
    _metrics_internal = None  # type: ignore[assignment]

# The API's get_tracer_provider()/get_meter_provider() look up an environment variable on
# every call while no provider is set (microseconds each). While the API's own globals say
# that none is set, and that variable was absent at import, nothing records: one attribute
# read each. Without those (private) globals, the public functions are asked every time.
_TRACE_GLOBALS: Any = (
    _trace
    if getattr(_trace, "_TRACER_PROVIDER", 0) is None
    and "OTEL_PYTHON_TRACER_PROVIDER" not in os.environ
    else None
)
_METRICS_GLOBALS: Any = (
    _metrics_internal
    if getattr(_metrics_internal, "_METER_PROVIDER", 0) is None
    and "OTEL_PYTHON_METER_PROVIDER" not in os.environ
    else None
)

__all__ = [
    "LOGGER_NAME",
    "CallTrace",
    "RequestTrace",
    "conflict",
    "conflict_retried",
    "landed_write",
    "logger",
    "retrying",
    "start_call",
    "use",
]

#: The name of the store's logger.
LOGGER_NAME = "saga_store_pynamo"
#: The store's logger.
logger = logging.getLogger(LOGGER_NAME)

#: The instrumentation scope of the store's tracer and meter.
SCOPE = "saga_store_pynamo"

# Attribute names: the OpenTelemetry database semantic conventions, then the store's own.
DB_SYSTEM = "db.system.name"
DB_SYSTEM_VALUE = "aws.dynamodb"
DB_OPERATION = "db.operation.name"
DB_COLLECTION = "db.collection.name"
TABLE_NAMES = "aws.dynamodb.table_names"
ERROR_TYPE = "error.type"
SAGA_NAME = "saga.name"
SAGA_ID = "saga.id"
SAGA_VERSION = "saga.version"
STORE_CALL = "saga_store.call"
ATTEMPTS = "saga_store.attempts"
RETRY_REASON = "saga_store.retry.reason"

#: Metric names.
DURATION_METRIC = "db.client.operation.duration"
CONFLICTS_METRIC = "saga_store.conflicts"
RETRIES_METRIC = "saga_store.retries"
LANDED_METRIC = "saga_store.landed_writes_recognised"

# The semantic conventions' advised buckets for db.client.operation.duration (seconds).
_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
_THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
    }
)
# Providers that never record: the API's defaults before (or without) an SDK.
_SILENT_PROVIDERS = frozenset(
    {"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"}
)
# Attribute sets cached per metric key; a bound, should saga names not be low-cardinality.
_MAX_CACHED_ATTRIBUTES = 1024

_tracer_provider: TracerProvider | None = None
_meter_provider: MeterProvider | None = None
# (provider, what it resolved to): replaced whole, so a thread sees one pair or the other.
_tracer_for: tuple[object, Tracer | None] = (None, None)
_meters_for: tuple[object, _Meters | None] = (None, None)

#: The store call running in this context (thread or asyncio task), when one records.
_CURRENT: contextvars.ContextVar[CallTrace | None] = contextvars.ContextVar(
    "saga_store_call", default=None
)


def use(
    *, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
) -> None:
    """Send the store's spans and metrics to these providers instead of the global ones.

    For tests, and for programs that keep the store's telemetry apart; ``use()`` with no
    arguments goes back to OpenTelemetry's global providers. Affects calls started after it.

    :param tracer_provider: the provider of the store's tracer (None: the global one).
    :param meter_provider: the provider of the store's meter (None: the global one).
    """
    global _tracer_provider, _meter_provider, _tracer_for, _meters_for
    _tracer_provider = tracer_provider
    _meter_provider = meter_provider
    _tracer_for = (None, None)
    _meters_for = (None, None)


def _tracer() -> Tracer | None:
    """The store's tracer, or None when no provider records."""
    provider = _tracer_provider
    if provider is None:
        if _trace is None:
            return None
        if _TRACE_GLOBALS is not None and _TRACE_GLOBALS._TRACER_PROVIDER is None:
            return None
        provider = _trace.get_tracer_provider()
    cached = _tracer_for
    if cached[0] is provider:
        return cached[1]
    return _resolve_tracer(provider)


def _resolve_tracer(provider: TracerProvider) -> Tracer | None:
    global _tracer_for
    tracer = None
    if type(provider).__name__ not in _SILENT_PROVIDERS:
        from . import __version__

        tracer = provider.get_tracer(SCOPE, __version__)
    _tracer_for = (provider, tracer)
    return tracer


def _meters() -> _Meters | None:
    """The store's instruments, or None when no meter provider records."""
    provider = _meter_provider
    if provider is None:
        if _metrics is None:
            return None
        if _METRICS_GLOBALS is not None and _METRICS_GLOBALS._METER_PROVIDER is None:
            return None
        provider = _metrics.get_meter_provider()
    cached = _meters_for
    if cached[0] is provider:
        return cached[1]
    return _resolve_meters(provider)


def _resolve_meters(provider: MeterProvider) -> _Meters | None:
    global _meters_for
    meters = None
    if type(provider).__name__ not in _SILENT_PROVIDERS:
        from . import __version__

        meters = _Meters(provider.get_meter(SCOPE, __version__))
    _meters_for = (provider, meters)
    return meters


class _Meters:
    """The store's instruments on one meter, and the attribute sets it has recorded with."""

    __slots__ = ("_attributes", "conflicts", "duration", "landed", "retries")

    def __init__(self, meter: Meter) -> None:
        try:
            self.duration = meter.create_histogram(
                DURATION_METRIC,
                unit="s",
                description="Duration of the store's DynamoDB requests, retries included.",
                explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
            )
        except TypeError:  # an API before 1.23 takes no advisory
            self.duration = meter.create_histogram(
                DURATION_METRIC,
                unit="s",
                description="Duration of the store's DynamoDB requests, retries included.",
            )
        self.conflicts = meter.create_counter(
            CONFLICTS_METRIC, unit="{conflict}", description="Version conflicts (ConcurrencyError)."
        )
        self.retries = meter.create_counter(
            RETRIES_METRIC, unit="{retry}", description="Request attempts retried after a fault."
        )
        self.landed = meter.create_counter(
            LANDED_METRIC,
            unit="{write}",
            description="Retried writes recognised as applied by an earlier attempt.",
        )
        self._attributes: dict[tuple[Any, ...], Mapping[str, Any]] = {}

    def attributes(self, key: tuple[Any, ...], **extra: str | None) -> Mapping[str, Any]:
        """The attribute set of ``key`` (table, operation, saga name, then ``extra``)."""
        found = self._attributes.get(key)
        if found is None:
            table, operation, saga_name = key[:3]
            found = {DB_SYSTEM: DB_SYSTEM_VALUE, DB_COLLECTION: table}
            if operation is not None:
                found[DB_OPERATION] = operation
            if isinstance(saga_name, str):
                found[SAGA_NAME] = saga_name
            found.update({k: v for k, v in extra.items() if v is not None})
            if len(self._attributes) < _MAX_CACHED_ATTRIBUTES:
                self._attributes[key] = found
        return found


def start_call(
    call: str, table: str, saga_name: object, saga_id: object, operation: str | None
) -> CallTrace | None:
    """Start recording a store call, or return None when nothing would record it.

    :param call: the store method (``"get_by_id"``, ``"modify"`` ...).
    :param table: the table name.
    :param saga_name: the call's saga name (as passed: it is validated later).
    :param saga_id: the saga id, when the call names one.
    :param operation: the DynamoDB operation when the call sends one request (that request
        is then recorded on the call's span); None when it may send several (each gets a
        child span).
    """
    tracer = _tracer()
    meters = _meters()
    if tracer is None and meters is None and not logger.isEnabledFor(logging.DEBUG):
        return None
    return CallTrace(call, table, saga_name, saga_id, operation, tracer, meters)


class CallTrace:
    """One store call being recorded: its span (when a tracer records) and its context.

    End it with ``end(result)`` or ``fail(error)``, in the context (thread or task) that
    started it.
    """

    __slots__ = (
        "_otel_token",
        "_token",
        "call",
        "meters",
        "operation",
        "requests",
        "saga_id",
        "saga_name",
        "span",
        "table",
        "tracer",
        "version",
    )

    def __init__(
        self,
        call: str,
        table: str,
        saga_name: object,
        saga_id: object,
        operation: str | None,
        tracer: Tracer | None,
        meters: _Meters | None,
    ) -> None:
        self.call = call
        self.table = table
        self.saga_name = saga_name if isinstance(saga_name, str) else None
        self.saga_id = saga_id if isinstance(saga_id, str) else None
        self.operation = operation
        self.tracer = tracer
        self.meters = meters
        self.requests = 0
        #: The version written (or read, at the end), for the span.
        self.version: int | None = None
        self.span: Span | None = None
        self._otel_token: object = None
        if tracer is not None:
            # The semantic conventions' "{db.operation.name} {target}" when the call is one
            # request; else the store call in the operation's place (see the docs).
            span = tracer.start_span(f"{operation or call} {table}", kind=SpanKind.CLIENT)
            if span.is_recording():
                attributes: dict[str, Any] = {
                    DB_SYSTEM: DB_SYSTEM_VALUE,
                    TABLE_NAMES: [table],
                    STORE_CALL: call,
                }
                if operation is not None:
                    attributes[DB_OPERATION] = operation
                if self.saga_name is not None:
                    attributes[SAGA_NAME] = self.saga_name
                if self.saga_id is not None:
                    attributes[SAGA_ID] = self.saga_id
                span.set_attributes(attributes)
                self.span = span
                self._otel_token = _context.attach(_trace.set_span_in_context(span))
        self._token = _CURRENT.set(self)

    def request(self, step: Send) -> RequestTrace:
        """The recording of the next request the call sends."""
        self.requests += 1
        return RequestTrace(self, step, self.requests == 1 and step.operation == self.operation)

    def end(self, result: object) -> None:
        """The call returned ``result``."""
        _CURRENT.reset(self._token)
        span = self.span
        if span is not None:
            if isinstance(result, SagaModel):
                if isinstance(result.saga_id, str) and result.saga_id != self.saga_id:
                    span.set_attribute(SAGA_ID, result.saga_id)
                if isinstance(result.version, int):
                    span.set_attribute(SAGA_VERSION, result.version)
            elif self.version is not None:
                span.set_attribute(SAGA_VERSION, self.version)
            self._close(span)

    def fail(self, error: BaseException) -> None:
        """The call raised ``error``: the span's status is ERROR, ``error.type`` its class."""
        _CURRENT.reset(self._token)
        span = self.span
        if span is not None:
            span.set_attribute(ERROR_TYPE, type(error).__name__)
            span.set_status(Status(StatusCode.ERROR))
            self._close(span)

    def _close(self, span: Span) -> None:
        _context.detach(self._otel_token)  # type: ignore[arg-type]
        span.end()

    def event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """Add an event to the call's span, when it records."""
        if self.span is not None:
            self.span.add_event(name, attributes)


class RequestTrace:
    """One request of a call: its span (own, or the call's), attempts and duration.

    A context manager around the request's attempts (``_dispatch.dispatch``): it makes the
    request's own span current while it is sent, so that what runs beneath it (botocore
    instrumentation, the asyncio store's thread pool) is its child.
    """

    __slots__ = (
        "_otel_token",
        "attempt",
        "attempt_started",
        "call",
        "operation",
        "own",
        "saga_id",
        "span",
        "started",
    )

    def __init__(self, call: CallTrace, step: Send, shared: bool) -> None:
        self.call = call
        self.operation = step.operation
        self.saga_id = step.saga_id or call.saga_id
        self.span: Span | None = None
        self.own = False
        self._otel_token: object = None
        self.attempt = 0
        write = step.write
        if write is not None:
            call.version = write[0]
        call_span = call.span
        if call_span is not None:
            if shared:
                self.span = call_span
                if step.saga_id is not None and step.saga_id != call.saga_id:
                    call_span.set_attribute(SAGA_ID, step.saga_id)
            else:
                attributes: dict[str, Any] = {
                    DB_SYSTEM: DB_SYSTEM_VALUE,
                    DB_OPERATION: step.operation,
                    TABLE_NAMES: [call.table],
                }
                if call.saga_name is not None:
                    attributes[SAGA_NAME] = call.saga_name
                if self.saga_id is not None:
                    attributes[SAGA_ID] = self.saga_id
                if write is not None:
                    attributes[SAGA_VERSION] = write[0]
                assert call.tracer is not None
                self.span = call.tracer.start_span(
                    f"{step.operation} {call.table}", kind=SpanKind.CLIENT, attributes=attributes
                )
                self.own = True
        self.started = self.attempt_started = time.perf_counter()

    def __enter__(self) -> RequestTrace:
        if self.own:
            self._otel_token = _context.attach(_trace.set_span_in_context(self.span))  # type: ignore[arg-type]
        return self

    def __exit__(self, exc_type: object, error: BaseException | None, tb: object) -> None:
        duration = time.perf_counter() - self.started
        error_type = None if error is None else _error_type(error)
        call = self.call
        meters = call.meters
        if meters is not None:
            meters.duration.record(
                duration,
                meters.attributes(
                    (call.table, self.operation, call.saga_name, error_type),
                    **{ERROR_TYPE: error_type},
                ),
            )
        span = self.span
        if span is not None:
            if self.attempt > 1:
                span.set_attribute(ATTEMPTS, self.attempt)
            if self.own:
                if error_type is not None:
                    span.set_attribute(ERROR_TYPE, error_type)
                    span.set_status(Status(StatusCode.ERROR))
                _context.detach(self._otel_token)  # type: ignore[arg-type]
                span.end()

    def attempt_start(self, attempt: int) -> None:
        """Attempt number ``attempt`` is about to be sent."""
        self.attempt = attempt
        self.attempt_started = time.perf_counter()

    def attempt_end(self, error: BaseException | None) -> None:
        """The current attempt ended: answered (``error`` None) or failed with ``error``."""
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s attempt %d (saga %s %s, table %s): %s in %.2f ms",
                self.operation,
                self.attempt,
                self.call.saga_name,
                self.saga_id,
                self.call.table,
                "ok" if error is None else _error_type(error),
                (time.perf_counter() - self.attempt_started) * 1000,
            )


def _error_type(error: BaseException) -> str:
    """``error.type``: DynamoDB's error code when the request failed with one, else the
    exception's class name."""
    code = getattr(error, "code", None)
    for failure in (error, error.__cause__):
        if isinstance(code, str) and code:
            return code
        response = getattr(failure, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code if isinstance(code, str) and code else type(error).__name__


def _retry_reason(error: BaseException) -> str:
    """A low-cardinality reason for a retry: throttling, server_error, checksum, connection."""
    if isinstance(error, ChecksumError):
        return "checksum"
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code in _THROTTLING_CODES:
            return "throttling"
        if code in RETRYABLE_ERROR_CODES or code is not None:
            return "server_error"
    return "connection"


def retrying(
    operation: str,
    attempt: int,
    error: BaseException,
    delay: float,
    request: RequestTrace | None,
) -> None:
    """A failed attempt is retried after ``delay`` seconds: WARNING, event, counter."""
    error_type = _error_type(error)
    reason = _retry_reason(error)
    saga = ""
    if request is not None:
        call = request.call
        saga = f" (saga {call.saga_name} {request.saga_id})"
        if request.span is not None:
            request.span.add_event(
                "saga_store.retry",
                {
                    "saga_store.attempt": attempt,
                    ERROR_TYPE: error_type,
                    RETRY_REASON: reason,
                    "saga_store.backoff_s": delay,
                },
            )
        meters = call.meters
        if meters is not None:
            meters.retries.add(
                1,
                meters.attributes(
                    (call.table, operation, call.saga_name, "retry", reason, error_type),
                    **{RETRY_REASON: reason, ERROR_TYPE: error_type},
                ),
            )
    logger.warning(
        "retrying %s%s after attempt %d failed: %s (%s)", operation, saga, attempt, error, reason
    )


def conflict(saga_name: str, saga_id: str, expected_version: int, actual_version: int) -> None:
    """A write met another version than it expected (a ``ConcurrencyError``): event, counter."""
    call = _CURRENT.get()
    if call is None:
        return
    call.event(
        "saga_store.conflict",
        {
            SAGA_ID: saga_id,
            "saga_store.expected_version": expected_version,
            "saga_store.actual_version": actual_version,
        },
    )
    meters = call.meters
    if meters is not None:
        meters.conflicts.add(1, meters.attributes((call.table, None, saga_name, "conflict")))


def conflict_retried(saga_name: str, saga_id: str, attempt: int, delay: float) -> None:
    """``modify`` retries after a conflict on attempt ``attempt``: INFO, event."""
    logger.info(
        "conflict on saga %s %s (attempt %d): retrying in %.3f s",
        saga_name,
        saga_id,
        attempt,
        delay,
    )
    call = _CURRENT.get()
    if call is not None:
        call.event(
            "saga_store.conflict_retried",
            {SAGA_ID: saga_id, "saga_store.attempt": attempt, "saga_store.backoff_s": delay},
        )


def landed_write(operation: str, saga_name: str, saga_id: str, version: int) -> None:
    """A retried write found its own earlier attempt applied: INFO, event, counter."""
    logger.info(
        "%s of saga %s %s at version %d: an earlier attempt was applied (recognised by its "
        "write token)",
        operation,
        saga_name,
        saga_id,
        version,
    )
    call = _CURRENT.get()
    if call is None:
        return
    call.event(
        "saga_store.landed_write_recognised",
        {DB_OPERATION: operation, SAGA_ID: saga_id, SAGA_VERSION: version},
    )
    meters = call.meters
    if meters is not None:
        meters.landed.add(1, meters.attributes((call.table, operation, saga_name, "landed")))
