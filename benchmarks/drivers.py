"""The clients measured side by side: the store on each transport, raw botocore, pydynox.

Each driver turns an operation into a list of ready inputs (built untimed) and a function
that sends one call for one input (timed). The baselines send the very requests the store
sent during the warm-up (``Fixture.templates``), for other sagas where the call needs one.
"""

from __future__ import annotations

import abc
import asyncio
import copy
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import ClientError

from saga_store_pynamo import ConcurrencyError

from .backends import Fixture, raw_client
from .common import (
    CONTROL,
    CREDENTIALS,
    REGION,
    SAGA_NAME,
    STORE_HTTP,
    BenchmarkError,
    BenchSaga,
    RequestCounter,
    bench_store,
    new_id,
    small_state,
    substitute,
    wire_to_native,
)

__all__ = [
    "OPERATION_OF",
    "AsyncCall",
    "AsyncDriver",
    "BotocoreDriver",
    "Call",
    "Driver",
    "PydynoxDriver",
    "StoreDriver",
    "StoreHttpDriver",
    "pydynox_client",
    "pydynox_kwargs",
    "pydynox_version",
    "store_inputs",
]

Call = Callable[[Any], None]
AsyncCall = Callable[[Any], Awaitable[None]]


class Driver(abc.ABC):
    """One client: how to prepare inputs for an operation and how to send one call."""

    name: str
    #: Counts the HTTP requests the client sends; None when they cannot be observed.
    counter: RequestCounter | None = None

    def __init__(self, fixture: Fixture) -> None:
        self.fixture = fixture

    def unsupported(self, op: str) -> str | None:
        """Why this client cannot send ``op``'s request as the store does, or None."""
        return None

    @abc.abstractmethod
    def inputs(self, op: str, count: int) -> list[Any]:
        """``count`` inputs for ``op``, one per call (untimed: sagas are created here)."""

    @abc.abstractmethod
    def function(self, op: str) -> Call:
        """The function that makes one ``op`` call for one input."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    def verify(self) -> None:  # noqa: B027 - optional: most clients have nothing to check
        """Raise BenchmarkError if the calls so far did not go the way this client claims."""


class AsyncDriver(Driver):
    """A client whose calls are coroutines, run on this driver's own event loop.

    ``function(op)`` returns an ``async`` function; the measurement runs many of them at once
    on ``loop`` (``measure.run_coroutines``). The loop lives as long as the driver, so
    whatever the client keeps per loop (connections, sessions) lasts from round to round.
    """

    def __init__(self, fixture: Fixture) -> None:
        super().__init__(fixture)
        self.loop = asyncio.new_event_loop()

    @abc.abstractmethod
    def function(self, op: str) -> AsyncCall:  # type: ignore[override]
        """The coroutine function that makes one ``op`` call for one input."""

    async def aclose(self) -> None:
        """Release connections (on ``loop``)."""

    def close(self) -> None:
        """``aclose`` on the driver's loop, then close the loop."""
        if self.loop.is_closed():
            return
        try:
            self.loop.run_until_complete(self.aclose())
        finally:
            self.loop.close()


def store_inputs(fixture: Fixture, op: str, count: int) -> list[Any]:
    """``count`` arguments of the store's ``op`` call, sync or asyncio (untimed)."""
    read_id, read_corr = fixture.read_saga
    if op == "insert":
        return [(f"corr-{uuid.uuid4().hex}", small_state(i)) for i in range(count)]
    if op == "get_by_id":
        return [read_id] * count
    if op == "get_by_correlation_id":
        return [read_corr] * count
    if op == "update":
        states = []
        for _, _, item in fixture.preinsert(count):
            state = BenchSaga.from_raw_data(item)
            state.status = "paid"
            states.append(state)
        return states
    if op == "delete":
        return [saga_id for saga_id, _, _ in fixture.preinsert(count)]
    if op == "update_conflict":
        # One stale copy per call: the store sets updated_at on the state it is given.
        return [BenchSaga.from_raw_data(copy.deepcopy(fixture.stale_item)) for _ in range(count)]
    raise ValueError(op)


class StoreDriver(Driver):
    """``DynamoDBSagaStore``, the code under test."""

    name = "store"

    def __init__(self, fixture: Fixture) -> None:
        super().__init__(fixture)
        self.store = fixture.store
        self.counter = RequestCounter()
        self.counter.attach(self.store.connection.client)

    def inputs(self, op: str, count: int) -> list[Any]:
        return store_inputs(self.fixture, op, count)

    def function(self, op: str) -> Call:
        store = self.store
        if op == "insert":

            def insert(args: tuple[str, BenchSaga]) -> None:
                store.insert(SAGA_NAME, args[0], args[1])

            return insert
        if op == "get_by_id":

            def get_by_id(saga_id: str) -> None:
                if store.get_by_id(SAGA_NAME, saga_id) is None:
                    raise BenchmarkError("get_by_id found nothing")

            return get_by_id
        if op == "get_by_correlation_id":

            def get_by_correlation_id(corr: str) -> None:
                if store.get_by_correlation_id(SAGA_NAME, corr) is None:
                    raise BenchmarkError("get_by_correlation_id found nothing")

            return get_by_correlation_id
        if op == "update":

            def update(state: BenchSaga) -> None:
                store.update(SAGA_NAME, state, 0)

            return update
        if op == "delete":

            def delete(saga_id: str) -> None:
                store.delete(SAGA_NAME, saga_id)

            return delete
        if op == "update_conflict":

            def update_conflict(state: BenchSaga) -> None:
                try:
                    store.update(SAGA_NAME, state, 0)
                except ConcurrencyError as exc:
                    if exc.actual_version != 1:
                        raise BenchmarkError(f"conflict reported {exc.actual_version}") from exc
                else:
                    raise BenchmarkError("a stale update succeeded")

            return update_conflict
        raise ValueError(op)

    def close(self) -> None:
        """Nothing to do: the fixture closes the store."""


class StoreHttpDriver(StoreDriver):
    """The same store built with ``transport="http"``: its own signer, codec and pool.

    A second store on the fixture's table; its requests are counted at the store's own send
    point (the botocore client's events do not see them), and ``verify`` fails the run if any
    item call went through botocore instead (the fallback is for moto's in-process mock only).
    """

    name = STORE_HTTP

    def __init__(self, fixture: Fixture) -> None:
        Driver.__init__(self, fixture)
        self.store = bench_store(fixture.table_name, fixture.backend.endpoint, transport="http")
        self.counter = RequestCounter()
        self.counter.attach_store(self.store)
        self.via_botocore = RequestCounter()
        self.via_botocore.attach(self.store.connection.client)

    def verify(self) -> None:
        sent = self.via_botocore.take()
        if sent:
            raise BenchmarkError(f"{self.name}: {sent} request(s) went through botocore")

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()


class _TemplateDriver(Driver):
    """A baseline that replays the store's captured requests, for other sagas if needed."""

    def requests(self, op: str, count: int) -> list[dict[str, Any]]:
        """``count`` wire-form requests for ``op`` (untimed)."""
        template = self.fixture.templates[op]
        old_id, old_corr = self.fixture.template_ids[op]
        if op == "insert":
            return [
                substitute(template, {old_id: new_id(), old_corr: f"corr-{uuid.uuid4().hex}"})
                for _ in range(count)
            ]
        if op in ("update", "delete"):
            return [
                substitute(template, {old_id: saga_id, old_corr: corr})
                for saga_id, corr, _ in self.fixture.preinsert(count)
            ]
        # Reads and the conflict go to the same saga each time, as the store's do.
        return [copy.deepcopy(template) for _ in range(count)]


class BotocoreDriver(_TemplateDriver):
    """Raw botocore: ``create_client("dynamodb")`` with PynamoDB's config, same requests."""

    name = "botocore"

    def __init__(self, fixture: Fixture) -> None:
        super().__init__(fixture)
        self.client = raw_client(fixture.backend.endpoint, fixture.config)
        self.counter = RequestCounter()
        self.counter.attach(self.client)
        self.version_name = fixture.store.model_for(SAGA_NAME).version.attr_name

    def inputs(self, op: str, count: int) -> list[Any]:
        return self.requests(op, count)

    def function(self, op: str) -> Call:
        client = self.client
        if op == "insert":
            put_item = client.put_item

            def insert(request: dict[str, Any]) -> None:
                put_item(**request)

            return insert
        if op == "get_by_id":
            get_item = client.get_item

            def get_by_id(request: dict[str, Any]) -> None:
                if "Item" not in get_item(**request):
                    raise BenchmarkError("GetItem found nothing")

            return get_by_id
        if op == "get_by_correlation_id":
            query = client.query

            def get_by_correlation_id(request: dict[str, Any]) -> None:
                if not query(**request).get("Items"):
                    raise BenchmarkError("Query found nothing")

            return get_by_correlation_id
        if op == "update":
            update_item = client.update_item

            def update(request: dict[str, Any]) -> None:
                update_item(**request)

            return update
        if op == "delete":
            delete_item = client.delete_item

            def delete(request: dict[str, Any]) -> None:
                delete_item(**request)

            return delete
        if op == "update_conflict":
            update_item = client.update_item
            version = self.version_name

            def update_conflict(request: dict[str, Any]) -> None:
                try:
                    update_item(**request)
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise
                    if int(exc.response["Item"][version]["N"]) != 1:
                        raise BenchmarkError("the conflict returned another version") from exc
                else:
                    raise BenchmarkError("a stale UpdateItem succeeded")

            return update_conflict
        raise ValueError(op)

    def close(self) -> None:
        """Close the client's HTTP connections."""
        self.client.close()


class BotocoreControlDriver(BotocoreDriver):
    """A second raw botocore client, identical to the first: an A/A control.

    Its ratio to ``botocore`` would be exactly 1 with a perfect measurement, so its spread
    is the benchmark's own error: a store/botocore difference smaller than that is not
    resolved by the run.
    """

    name = CONTROL


def pydynox_version() -> str | None:
    """pydynox's version, or None when it is not installed."""
    try:
        import pydynox
    except ImportError:
        return None
    return str(pydynox.__version__)


#: The request keys pydynox's client takes, per operation, and its parameter for each.
_PYDYNOX_PARAMS: dict[str, dict[str, str]] = {
    "PutItem": {
        "Item": "item",
        "ConditionExpression": "condition_expression",
        "ExpressionAttributeNames": "expression_attribute_names",
        "ExpressionAttributeValues": "expression_attribute_values",
        "ReturnValuesOnConditionCheckFailure": "return_values_on_condition_check_failure",
    },
    "GetItem": {"Key": "key", "ConsistentRead": "consistent_read"},
    "Query": {
        "IndexName": "index_name",
        "KeyConditionExpression": "key_condition_expression",
        "ExpressionAttributeNames": "expression_attribute_names",
        "ExpressionAttributeValues": "expression_attribute_values",
        "Limit": "limit",
        "ConsistentRead": "consistent_read",
    },
    "UpdateItem": {
        "Key": "key",
        "UpdateExpression": "update_expression",
        "ConditionExpression": "condition_expression",
        "ExpressionAttributeNames": "expression_attribute_names",
        "ExpressionAttributeValues": "expression_attribute_values",
        "ReturnValuesOnConditionCheckFailure": "return_values_on_condition_check_failure",
    },
    "DeleteItem": {
        "Key": "key",
        "ConditionExpression": "condition_expression",
        "ExpressionAttributeNames": "expression_attribute_names",
        "ExpressionAttributeValues": "expression_attribute_values",
        "ReturnValuesOnConditionCheckFailure": "return_values_on_condition_check_failure",
    },
}
#: The DynamoDB operation each benchmarked call sends.
OPERATION_OF = {
    "insert": "PutItem",
    "get_by_id": "GetItem",
    "get_by_correlation_id": "Query",
    "update": "UpdateItem",
    "delete": "DeleteItem",
    "update_conflict": "UpdateItem",
}


def pydynox_kwargs(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """pydynox keyword arguments for a wire-form request; ValueError if one has none.

    pydynox takes plain Python values (it converts them to DynamoDB's form in Rust), and it
    always asks for ``ReturnConsumedCapacity`` (it reports consumed units on every call).
    """
    params = _PYDYNOX_PARAMS[operation]
    kwargs: dict[str, Any] = {"table": request["TableName"]}
    for key, value in request.items():
        if key in ("TableName", "ReturnConsumedCapacity"):
            continue
        if key not in params:
            raise ValueError(f"pydynox's {operation} has no parameter for {key}")
        if key in ("Item", "Key", "ExpressionAttributeValues"):
            value = {name: wire_to_native(item) for name, item in value.items()}
        elif key == "ReturnValuesOnConditionCheckFailure":
            if value not in ("ALL_OLD", "NONE"):
                raise ValueError(f"pydynox cannot send {key}={value}")
            value = value == "ALL_OLD"
        kwargs[params[key]] = value
    return kwargs


def pydynox_client(fixture: Fixture) -> Any:
    """A pydynox ``DynamoDBClient`` on the fixture's endpoint, with the store's timeouts and
    retry count (its methods with the ``sync_`` prefix block, the others are coroutines)."""
    import logging

    from pydynox import DynamoDBClient

    # pydynox logs a warning for every call slower than 100 ms (frequent with 8 threads or
    # 64 coroutines on two cores); the benchmark's output is its tables.
    logging.getLogger("pydynox").setLevel(logging.ERROR)
    retries = fixture.config.retries or {}
    attempts = retries.get("total_max_attempts")
    return DynamoDBClient(
        region=REGION,
        endpoint_url=fixture.backend.endpoint,
        access_key=CREDENTIALS["aws_access_key_id"],
        secret_key=CREDENTIALS["aws_secret_access_key"],
        connect_timeout=fixture.config.connect_timeout,
        read_timeout=fixture.config.read_timeout,
        max_retries=None if attempts is None else attempts - 1,
    )


class PydynoxDriver(_TemplateDriver):
    """pydynox's ``DynamoDBClient`` (Rust core, AWS SDK for Rust), same requests.

    Its requests cannot be counted from Python: ``counter`` is None.
    """

    name = "pydynox"

    def __init__(self, fixture: Fixture) -> None:
        super().__init__(fixture)
        self.client = pydynox_client(fixture)
        self.version_name = fixture.store.model_for(SAGA_NAME).version.attr_name
        #: Why pydynox cannot run on this endpoint at all, or None.
        self.problem: str | None = None
        if fixture.backend.endpoint.startswith("https:"):
            self.problem = self._tls_problem()

    def _tls_problem(self) -> str | None:
        """Whether pydynox reaches a TLS endpoint whose CA is in ``AWS_CA_BUNDLE`` (and
        ``SSL_CERT_FILE``): it takes no CA bundle of its own."""
        kwargs = pydynox_kwargs("GetItem", self.fixture.templates["get_by_id"])
        try:
            self.client.sync_get_item(**kwargs)
        except Exception as exc:
            return (
                "pydynox has no CA-bundle option, and with the benchmark's CA in "
                "`AWS_CA_BUNDLE` and `SSL_CERT_FILE` its TLS connection still fails "
                f"({type(exc).__name__}: {str(exc).rstrip('.')})"
            )
        return None

    def unsupported(self, op: str) -> str | None:
        if self.problem is not None:
            return self.problem
        try:
            pydynox_kwargs(OPERATION_OF[op], self.fixture.templates[op])
        except ValueError as exc:
            return str(exc)
        return None

    def inputs(self, op: str, count: int) -> list[Any]:
        operation = OPERATION_OF[op]
        return [pydynox_kwargs(operation, request) for request in self.requests(op, count)]

    def function(self, op: str) -> Call:
        from pydynox.exceptions import ConditionalCheckFailedException

        client = self.client
        if op == "insert":
            put_item = client.sync_put_item

            def insert(kwargs: dict[str, Any]) -> None:
                put_item(**kwargs)

            return insert
        if op == "get_by_id":
            get_item = client.sync_get_item

            def get_by_id(kwargs: dict[str, Any]) -> None:
                if get_item(**kwargs) is None:
                    raise BenchmarkError("pydynox get_item found nothing")

            return get_by_id
        if op == "get_by_correlation_id":
            query = client.sync_query

            def get_by_correlation_id(kwargs: dict[str, Any]) -> None:
                if next(iter(query(**kwargs)), None) is None:
                    raise BenchmarkError("pydynox query found nothing")

            return get_by_correlation_id
        if op == "update":
            update_item = client.sync_update_item

            def update(kwargs: dict[str, Any]) -> None:
                update_item(**kwargs)

            return update
        if op == "delete":
            delete_item = client.sync_delete_item

            def delete(kwargs: dict[str, Any]) -> None:
                delete_item(**kwargs)

            return delete
        if op == "update_conflict":
            update_item = client.sync_update_item
            version = self.version_name

            def update_conflict(kwargs: dict[str, Any]) -> None:
                try:
                    update_item(**kwargs)
                except ConditionalCheckFailedException as exc:
                    item = getattr(exc, "item", None)
                    if item is None or int(item[version]) != 1:
                        raise BenchmarkError("pydynox's conflict returned no old item") from exc
                else:
                    raise BenchmarkError("a stale pydynox update_item succeeded")

            return update_conflict
        raise ValueError(op)

    def close(self) -> None:
        """pydynox's client has nothing to close."""
