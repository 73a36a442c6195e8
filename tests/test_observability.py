"""Observability: log records, OpenTelemetry spans and metrics of the store's calls.

Spans and metrics are read with the SDK's in-memory exporter and reader, handed to the store
through ``_telemetry.use()`` (the global providers are never set, so nothing leaks into other
test files). Runs on moto and on DynamoDB Local with both transports; the fault-injecting
proxy stages retries and lost responses.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from saga_store_pynamo import (
    ConcurrencyError,
    DynamoDBSagaStore,
    RetryPolicy,
    SagaValidationError,
    TableNotFoundError,
    _telemetry,
)
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from tests.conftest import Backend, store_behind
from tests.ddb_proxy import DROP_RESPONSE, DynamoDBProxy, FaultInjector, error
from tests.models import OrderSaga

NAME = "OrderSaga"
FAST = RetryPolicy(base_delay=0, max_delay=0)


@dataclasses.dataclass
class Telemetry:
    """What the store recorded: finished spans and metric points."""

    exporter: InMemorySpanExporter
    reader: InMemoryMetricReader

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def clear(self) -> None:
        self.exporter.clear()

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def children(self, parent: ReadableSpan) -> list[ReadableSpan]:
        """``parent``'s child spans, in start order."""
        assert parent.context is not None
        found = [
            span
            for span in self.spans()
            if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]
        return sorted(found, key=lambda span: span.start_time or 0)

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of each point of metric ``name``: a histogram's count, a
        counter's sum."""
        data = self.reader.get_metrics_data()
        found: list[tuple[dict[str, Any], Any]] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        value = getattr(point, "count", None)
                        if value is None:
                            value = point.value  # type: ignore[union-attr]
                        found.append((dict(point.attributes or {}), value))
        return found

    def total(self, name: str, **attributes: Any) -> Any:
        """The sum over the points of ``name`` whose attributes include ``attributes``."""
        return sum(
            value
            for attrs, value in self.points(name)
            if all(attrs.get(k) == v for k, v in attributes.items())
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Fresh SDK providers for the store's spans and metrics, for this test only."""
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    _telemetry.use(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        yield Telemetry(exporter, reader)
    finally:
        _telemetry.use()
        tracer_provider.shutdown()
        meter_provider.shutdown()


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def one(spans: list[ReadableSpan]) -> ReadableSpan:
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def check_db_attributes(span: ReadableSpan, table: str) -> None:
    found = attrs(span)
    assert found["db.system.name"] == "aws.dynamodb"
    assert tuple(found["aws.dynamodb.table_names"]) == (table,)
    assert span.kind is SpanKind.CLIENT


def bump_behind_the_store(backend: Backend, table: str, saga_id: str) -> None:
    """Change a saga's version with a plain client, as another worker would."""
    backend.client().update_item(
        TableName=table,
        Key={"sagaName": {"S": NAME}, "sagaId": {"S": saga_id}},
        UpdateExpression="SET #v = #v + :one",
        ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":one": {"N": "1"}},
    )


# -- spans of each call ----------------------------------------------------------------------


def test_one_request_calls_are_one_span_each(
    make_store: Callable[..., DynamoDBSagaStore[Any]], telemetry: Telemetry
) -> None:
    store = make_store()
    table = store.table_name
    state = OrderSaga(order_id="o-1")
    store.insert(NAME, "c-1", state)
    loaded = store.get_by_id(NAME, state.saga_id)
    assert loaded is not None
    loaded.status = "paid"
    store.update(NAME, loaded, 0)
    assert store.get_by_correlation_id(NAME, "c-1") is not None
    store.delete(NAME, state.saga_id)

    spans = telemetry.spans()
    assert [span.name for span in spans] == [
        f"PutItem {table}",
        f"GetItem {table}",
        f"UpdateItem {table}",
        f"Query {table}",
        f"DeleteItem {table}",
    ]
    assert all(span.parent is None for span in spans)  # no child spans: one request each
    calls = ["insert", "get_by_id", "update", "get_by_correlation_id", "delete"]
    operations = ["PutItem", "GetItem", "UpdateItem", "Query", "DeleteItem"]
    for span, call, operation in zip(spans, calls, operations, strict=True):
        check_db_attributes(span, table)
        found = attrs(span)
        assert found["saga_store.call"] == call
        assert found["db.operation.name"] == operation
        assert found["saga.name"] == NAME
        assert found["saga.id"] == state.saga_id
        assert span.status.status_code is StatusCode.UNSET
    versions = [attrs(span).get("saga.version") for span in spans]
    assert versions == [0, 0, 1, 1, None]  # written or read
    # One duration point per request, per operation.
    for operation in operations:
        assert (
            telemetry.total(
                "db.client.operation.duration",
                **{"db.operation.name": operation, "saga.name": NAME, "db.collection.name": table},
            )
            == 1
        )
    for attributes, _ in telemetry.points("db.client.operation.duration"):
        assert "saga.id" not in attributes
        assert "error.type" not in attributes


def test_find_by_name_and_purge_have_a_child_span_per_request(
    make_store: Callable[..., DynamoDBSagaStore[Any]], telemetry: Telemetry
) -> None:
    store = make_store()
    table = store.table_name
    for n in range(2):
        store.insert(NAME, f"c-{n}", OrderSaga(is_completed=True))
    telemetry.clear()

    page = store.find_by_name(NAME, limit=10)
    assert len(page.items) == 2
    future = datetime.now(timezone.utc) + timedelta(days=1)
    assert store.purge_completed(NAME, before=future) == 2

    find = one(telemetry.named(f"find_by_name {table}"))
    assert attrs(find)["saga_store.call"] == "find_by_name"
    assert "db.operation.name" not in attrs(find)  # not one request
    check_db_attributes(find, table)
    assert [span.name for span in telemetry.children(find)] == [f"Query {table}"]

    purge = one(telemetry.named(f"purge_completed {table}"))
    children = telemetry.children(purge)
    assert [span.name for span in children] == [
        f"Query {table}",
        f"DeleteItem {table}",
        f"DeleteItem {table}",
    ]
    for child in children:
        check_db_attributes(child, table)
        assert attrs(child)["db.operation.name"] == child.name.split()[0]
        assert attrs(child)["saga.name"] == NAME
    deleted_ids = {attrs(child)["saga.id"] for child in children[1:]}
    assert len(deleted_ids) == 2


def test_modify_with_a_conflict_is_one_span_over_two_attempts(
    backend: Backend,
    make_store: Callable[..., DynamoDBSagaStore[Any]],
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_store()
    table = store.table_name
    state = OrderSaga()
    store.insert(NAME, "c-1", state)
    telemetry.clear()
    calls = 0

    def pay(loaded: OrderSaga) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # another worker writes between this attempt's read and write
            bump_behind_the_store(backend, table, state.saga_id)
        loaded.status = "paid"

    with caplog.at_level(logging.INFO, logger="saga_store_pynamo"):
        saved = store.modify(NAME, state.saga_id, pay, base_delay=0)
    assert saved.version == 2

    modify = one(telemetry.named(f"modify {table}"))
    check_db_attributes(modify, table)
    found = attrs(modify)
    assert found["saga_store.call"] == "modify"
    assert (found["saga.name"], found["saga.id"], found["saga.version"]) == (
        NAME,
        state.saga_id,
        2,
    )
    assert modify.status.status_code is StatusCode.UNSET
    children = telemetry.children(modify)
    assert [span.name.split()[0] for span in children] == [
        "GetItem",
        "UpdateItem",
        "GetItem",
        "UpdateItem",
    ]
    lost = children[1]
    assert lost.status.status_code is StatusCode.ERROR
    assert attrs(lost)["error.type"] == "ConditionalCheckFailedException"
    assert attrs(lost)["saga.version"] == 1  # the version it tried to write
    assert attrs(children[3])["saga.version"] == 2
    assert children[3].status.status_code is StatusCode.UNSET

    events = {event.name: dict(event.attributes or {}) for event in modify.events}
    assert events["saga_store.conflict"]["saga_store.expected_version"] == 0
    assert events["saga_store.conflict"]["saga_store.actual_version"] == 1
    assert events["saga_store.conflict_retried"]["saga_store.attempt"] == 1

    assert telemetry.total("saga_store.conflicts", **{"saga.name": NAME}) == 1
    assert telemetry.total("db.client.operation.duration", **{"db.operation.name": "GetItem"}) == 2
    assert (
        telemetry.total(
            "db.client.operation.duration",
            **{"db.operation.name": "UpdateItem", "error.type": "ConditionalCheckFailedException"},
        )
        == 1
    )
    assert (
        telemetry.total("db.client.operation.duration", **{"db.operation.name": "UpdateItem"}) == 2
    )

    conflicts = [r for r in caplog.records if "conflict on saga" in r.getMessage()]
    assert len(conflicts) == 1
    assert conflicts[0].levelno == logging.INFO
    assert state.saga_id in conflicts[0].getMessage()


def test_modify_by_correlation_id_spans_its_lookup_and_attempts(
    make_store: Callable[..., DynamoDBSagaStore[Any]], telemetry: Telemetry
) -> None:
    store = make_store(unique_correlation=True)
    table = store.table_name
    started = store.modify_by_correlation_id(
        NAME, "c-9", lambda s: setattr(s, "status", "new"), start=OrderSaga
    )
    parent = one(telemetry.named(f"modify_by_correlation_id {table}"))
    assert attrs(parent)["saga.id"] == started.saga_id
    assert attrs(parent)["saga.version"] == 0
    # The key lookup, the GSI fallback, then the insert.
    assert [span.name.split()[0] for span in telemetry.children(parent)] == [
        "GetItem",
        "Query",
        "PutItem",
    ]


def test_unique_mode_fallback_query_is_a_child_span(
    make_store: Callable[..., DynamoDBSagaStore[Any]], telemetry: Telemetry
) -> None:
    store = make_store(unique_correlation=True)
    table = store.table_name
    assert store.get_by_correlation_id(NAME, "nobody") is None
    parent = one(telemetry.named(f"get_by_correlation_id {table}"))
    assert "db.operation.name" not in attrs(parent)
    children = telemetry.children(parent)
    assert [span.name for span in children] == [f"GetItem {table}", f"Query {table}"]
    assert [attrs(span)["db.operation.name"] for span in children] == ["GetItem", "Query"]

    telemetry.clear()
    without = make_store(unique_correlation=True, correlation_fallback=False, table_name=table)
    assert without.get_by_correlation_id(NAME, "nobody") is None
    assert [span.name for span in telemetry.spans()] == [f"GetItem {table}"]


def test_user_spans_nest_the_store_and_the_store_nests_fn(
    make_store: Callable[..., DynamoDBSagaStore[Any]], telemetry: Telemetry
) -> None:
    store = make_store()
    state = OrderSaga()
    store.insert(NAME, "c-1", state)
    telemetry.clear()
    tracer = _telemetry._tracer()
    assert tracer is not None

    def fn(loaded: OrderSaga) -> None:
        with tracer.start_as_current_span("inside fn"):
            loaded.status = "paid"

    with tracer.start_as_current_span("handler"):
        store.modify(NAME, state.saga_id, fn)
    handler = one(telemetry.named("handler"))
    modify = one(telemetry.named(f"modify {store.table_name}"))
    inside = one(telemetry.named("inside fn"))
    assert modify.parent is not None
    assert handler.context is not None
    assert modify.parent.span_id == handler.context.span_id
    assert inside.parent is not None
    assert modify.context is not None
    assert inside.parent.span_id == modify.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # every context was detached


# -- failures ------------------------------------------------------------------------------------


def test_a_failing_call_has_error_status_and_type(
    make_store: Callable[..., DynamoDBSagaStore[Any]], telemetry: Telemetry
) -> None:
    missing = make_store(create=False)
    with pytest.raises(TableNotFoundError):
        missing.get_by_id(NAME, "x")
    span = one(telemetry.spans())
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "TableNotFoundError"
    # The request's error.type is DynamoDB's error code.
    assert (
        telemetry.total(
            "db.client.operation.duration", **{"error.type": "ResourceNotFoundException"}
        )
        == 1
    )

    telemetry.clear()
    store = make_store()
    state = OrderSaga()
    store.insert(NAME, "c-1", state)
    stale = OrderSaga(saga_id=state.saga_id, correlation_id="c-1", version=5)
    with pytest.raises(ConcurrencyError):
        store.update(NAME, stale, 5)
    span = one(telemetry.named(f"UpdateItem {store.table_name}"))
    assert span.status.status_code is StatusCode.ERROR
    assert attrs(span)["error.type"] == "ConcurrencyError"
    assert [event.name for event in span.events] == ["saga_store.conflict"]
    assert telemetry.total("saga_store.conflicts") == 1

    telemetry.clear()
    requests = telemetry.total("db.client.operation.duration")
    with pytest.raises(SagaValidationError):  # refused before any request
        store.get_by_id(NAME, "")
    span = one(telemetry.spans())
    assert attrs(span)["error.type"] == "SagaValidationError"
    assert telemetry.total("db.client.operation.duration") == requests


# -- retries and lost responses (DynamoDB Local behind the fault proxy) -------------------------


@pytest.mark.ddblocal
def test_retried_fault_is_a_warning_an_event_and_a_count(
    faulty: tuple[FaultInjector, DynamoDBProxy],
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    injector, proxy = faulty
    store = store_behind(proxy, OrderSaga, retry=FAST)
    state = OrderSaga()
    store.insert(NAME, "c-1", state)
    telemetry.clear()
    injector.queue("GetItem", error("ThrottlingException"))

    with caplog.at_level(logging.INFO, logger="saga_store_pynamo"):
        assert store.get_by_id(NAME, state.saga_id) is not None

    span = one(telemetry.spans())
    assert attrs(span)["saga_store.attempts"] == 2
    assert span.status.status_code is StatusCode.UNSET
    retry = one([event for event in span.events if event.name == "saga_store.retry"])
    assert dict(retry.attributes or {})["error.type"] == "ThrottlingException"
    assert dict(retry.attributes or {})["saga_store.retry.reason"] == "throttling"
    assert (
        telemetry.total(
            "saga_store.retries",
            **{
                "db.operation.name": "GetItem",
                "saga_store.retry.reason": "throttling",
                "saga.name": NAME,
            },
        )
        == 1
    )
    # One request, however many attempts.
    assert telemetry.total("db.client.operation.duration", **{"db.operation.name": "GetItem"}) == 1
    warnings = [r for r in caplog.records if r.getMessage().startswith("retrying GetItem")]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert state.saga_id in warnings[0].getMessage()


@pytest.mark.ddblocal
@pytest.mark.parametrize("operation", ["PutItem", "UpdateItem"])
def test_recognised_landed_write_is_info_an_event_and_a_count(
    faulty: tuple[FaultInjector, DynamoDBProxy],
    telemetry: Telemetry,
    caplog: pytest.LogCaptureFixture,
    operation: str,
) -> None:
    injector, proxy = faulty
    store = store_behind(proxy, OrderSaga, retry=FAST)
    state = OrderSaga()
    if operation == "UpdateItem":
        store.insert(NAME, "c-1", state)
    telemetry.clear()
    injector.queue(operation, DROP_RESPONSE)

    with caplog.at_level(logging.INFO, logger="saga_store_pynamo"):
        if operation == "PutItem":
            store.insert(NAME, "c-1", state)
        else:
            state.status = "paid"
            store.update(NAME, state, 0)

    span = one(telemetry.spans())
    assert span.status.status_code is StatusCode.UNSET  # the call succeeded
    names = [event.name for event in span.events]
    assert names == ["saga_store.retry", "saga_store.landed_write_recognised"]
    landed = dict(span.events[1].attributes or {})
    assert landed["db.operation.name"] == operation
    assert landed["saga.version"] == state.version
    assert telemetry.total("saga_store.landed_writes_recognised", **{"saga.name": NAME}) == 1
    assert telemetry.total("saga_store.retries", **{"saga_store.retry.reason": "connection"}) == 1
    infos = [r for r in caplog.records if "an earlier attempt was applied" in r.getMessage()]
    assert [r.levelno for r in infos] == [logging.INFO]


# -- asyncio -----------------------------------------------------------------------------------


def test_async_store_spans_follow_the_task(
    backend: Backend, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"sagas-aio-{uuid.uuid4().hex[:12]}"

    async def scenario() -> tuple[bool, list[Any]]:
        store: AsyncDynamoDBSagaStore[OrderSaga] = AsyncDynamoDBSagaStore(
            OrderSaga, **backend.options({"table_name": table, "unique_correlation": True})
        )
        from saga_store_pynamo import create_table

        create_table(store.sync)
        in_worker: list[Any] = []
        original = store._in_worker

        def spy(call: Callable[[], Any]) -> Any:
            in_worker.append(trace.get_current_span())
            return original(call)

        monkeypatch.setattr(store, "_in_worker", spy)
        try:
            telemetry.clear()
            # Two calls at once on one loop: each task keeps its own call span.
            await asyncio.gather(
                store.get_by_correlation_id(NAME, "a"), store.get_by_correlation_id(NAME, "b")
            )
            state = OrderSaga()
            await store.insert(NAME, "c-1", state)
            await store.modify(NAME, state.saga_id, lambda s: setattr(s, "status", "paid"))
            return store.native, in_worker
        finally:
            await store.aclose()

    try:
        native, in_worker = asyncio.run(scenario())
    finally:
        if backend.endpoint is not None:
            with contextlib.suppress(Exception):
                backend.client().delete_table(TableName=table)
    # moto's mock sends through botocore on the pool even when the store is native.
    on_pool = backend.name != "dynamodb-local"
    assert native == (backend.transport != "botocore")

    lookups = telemetry.named(f"get_by_correlation_id {table}")
    assert len(lookups) == 2
    for lookup in lookups:
        assert lookup.parent is None
        assert [span.name.split()[0] for span in telemetry.children(lookup)] == [
            "GetItem",
            "Query",
        ]
    modify = one(telemetry.named(f"modify {table}"))
    assert [span.name.split()[0] for span in telemetry.children(modify)] == [
        "GetItem",
        "UpdateItem",
    ]
    insert = one(telemetry.named(f"PutItem {table}"))
    assert insert.parent is None
    request_spans = {
        span.context.span_id
        for span in telemetry.spans()
        if span.context is not None and span.parent is not None
    } | ({insert.context.span_id} if insert.context is not None else set())
    if not on_pool:
        assert in_worker == []
    else:
        # The thread-pool path: each offloaded attempt runs under its request's span.
        assert len(in_worker) == 7
        assert {span.get_span_context().span_id for span in in_worker} <= request_spans


# -- logs ---------------------------------------------------------------------------------------

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY01"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENSECRET02"
FIELD_VALUE = "sk_live_4242-field-value-secret"


def test_debug_logs_say_what_was_sent_and_never_a_secret(
    backend: Backend,
    make_store: Callable[..., DynamoDBSagaStore[Any]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_store(
        credentials={
            "aws_access_key_id": "AKIAEXAMPLEKEYID0042",
            "aws_secret_access_key": SECRET_KEY,
            "aws_session_token": SESSION_TOKEN,
        }
    )
    with caplog.at_level(logging.DEBUG, logger="saga_store_pynamo"):
        state = OrderSaga(note=FIELD_VALUE, order_id=FIELD_VALUE)
        store.insert(NAME, "c-1", state)
        store.modify(NAME, state.saga_id, lambda s: setattr(s, "status", FIELD_VALUE))
        store.find_by_name(NAME)
        store.delete(NAME, state.saga_id)

    ours = [r for r in caplog.records if r.name.startswith("saga_store_pynamo")]
    attempts = [r for r in ours if r.levelno == logging.DEBUG and " attempt " in r.getMessage()]
    assert [r.getMessage().split()[0] for r in attempts] == [
        "PutItem",
        "GetItem",
        "UpdateItem",
        "Query",
        "DeleteItem",
    ]
    first = attempts[0].getMessage()
    for part in ("attempt 1", NAME, state.saga_id, " ms"):
        assert part in first
    for record in ours:
        text = f"{record.getMessage()} {record.args!r} {record.__dict__!r}"
        for secret in (SECRET_KEY, SESSION_TOKEN, FIELD_VALUE, "AKIAEXAMPLEKEYID0042"):
            assert secret not in text


def test_nothing_is_built_when_nothing_records(caplog: pytest.LogCaptureFixture) -> None:
    _telemetry.use()
    with caplog.at_level(logging.INFO, logger="saga_store_pynamo"):
        assert _telemetry.start_call("get_by_id", "t", NAME, "x", "GetItem") is None
    with caplog.at_level(logging.DEBUG, logger="saga_store_pynamo"):
        call = _telemetry.start_call("get_by_id", "t", NAME, "x", "GetItem")
        assert call is not None
        assert call.span is None
        assert call.meters is None
        call.end(None)


def test_the_store_logs_without_opentelemetry_installed() -> None:
    """With opentelemetry unimportable, calls work and still log; no span API is touched."""
    script = textwrap.dedent(
        """
        import importlib.abc, logging, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] == "opentelemetry":
                    raise ImportError(name)

        sys.meta_path.insert(0, Block())
        from saga_store_pynamo import DynamoDBSagaStore, create_table, _telemetry
        from saga_store_pynamo._moto import atomic_moto
        from tests.models import OrderSaga

        assert _telemetry._trace is None and "opentelemetry" not in sys.modules
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logger = logging.getLogger("saga_store_pynamo")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        with atomic_moto():
            store = DynamoDBSagaStore(
                OrderSaga, region="us-east-1",
                credentials={"aws_access_key_id": "a", "aws_secret_access_key": "b"},
            )
            create_table(store)
            state = OrderSaga()
            store.insert("OrderSaga", "c", state)
            store.modify("OrderSaga", state.saga_id, lambda s: setattr(s, "status", "x"))
        print(sorted({r.getMessage().split()[0] for r in records if " attempt " in r.getMessage()}))
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": root},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['GetItem', 'PutItem', 'UpdateItem']"
