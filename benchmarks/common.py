"""What every part of the benchmark shares: the saga model, names, and small helpers."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any, Literal

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute

from saga_store_pynamo import DynamoDBSagaStore, SagaModel
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore

__all__ = [
    "AIO_CONTROL",
    "AIO_STORES",
    "CONTROL",
    "CREDENTIALS",
    "MEASURE_ORDER",
    "OPERATIONS",
    "PYDYNOX_ASYNC",
    "REGION",
    "SAGA_NAME",
    "STORES",
    "STORE_AIO",
    "STORE_AIO_POOL",
    "STORE_HTTP",
    "BenchSaga",
    "BenchmarkError",
    "RequestCounter",
    "bench_async_store",
    "bench_store",
    "large_state",
    "new_id",
    "small_state",
    "substitute",
    "wire_to_native",
]

REGION = "us-east-1"
#: Static test credentials; DynamoDB Local keeps separate data per access key id.
CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
SAGA_NAME = "BenchSaga"
#: The store calls measured, in report order. ``update_conflict`` is ``update`` with a stale
#: ``expected_version``: the request fails its condition and the store raises ConcurrencyError.
#: The name of the second raw botocore client, the A/A control (``BotocoreControlDriver``).
CONTROL = "botocore-2"
#: The name of the store built with ``transport="http"`` (``StoreHttpDriver``).
STORE_HTTP = "store-http"
#: The clients under test: the store on each transport. Every other client is a baseline.
STORES = ("store", STORE_HTTP)
#: The asyncio store on its default transport (aiohttp, on the event loop) and on its thread
#: pool (``transport="botocore"``): the asyncio clients under test.
STORE_AIO = "store-aio"
STORE_AIO_POOL = "store-aio-pool"
AIO_STORES = (STORE_AIO, STORE_AIO_POOL)
#: pydynox's asyncio client, the asyncio baseline, and a second one: the asyncio A/A control.
PYDYNOX_ASYNC = "pydynox-async"
AIO_CONTROL = "pydynox-async-2"

OPERATIONS = (
    "insert",
    "get_by_id",
    "get_by_correlation_id",
    "update",
    "delete",
    "update_conflict",
)
#: The order operations are measured in: reads before the writes that grow the table, as
#: moto answers a GSI Query by scanning every item of the table.
MEASURE_ORDER = (
    "get_by_id",
    "get_by_correlation_id",
    "update_conflict",
    "insert",
    "update",
    "delete",
)


class BenchmarkError(Exception):
    """A call failed, or sent another number of requests than it should: the run fails."""


class BenchSaga(SagaModel):
    """An order-like saga: a few business fields beside the saga-bus metadata."""

    class Meta:
        table_name = "bench-sagas"
        region = REGION

    order_id = UnicodeAttribute(null=True)
    total_cents = NumberAttribute(default=0)
    status = UnicodeAttribute(default="pending")
    items = ListAttribute(of=UnicodeAttribute, null=True)
    note = UnicodeAttribute(null=True)


def small_state(index: int) -> BenchSaga:
    """A typical small state (about 400 bytes stored)."""
    return BenchSaga(
        order_id=f"order-{index:06d}",
        total_cents=12_000 + index,
        items=["sku-0001", "sku-0002", "sku-0003"],
    )


def large_state(index: int) -> BenchSaga:
    """A state of about 50 KB (a 50,000-character note beside the small state's fields)."""
    state = small_state(index)
    state.note = "x" * 50_000
    return state


def bench_store(
    table_name: str,
    endpoint: str | None,
    ttl_days: float | None = 30,
    transport: Literal["botocore", "http"] = "botocore",
) -> DynamoDBSagaStore[BenchSaga]:
    """A ``BenchSaga`` store on ``endpoint`` with the benchmark's region and credentials."""
    return DynamoDBSagaStore(
        BenchSaga,
        table_name=table_name,
        region=REGION,
        endpoint=endpoint,
        credentials=CREDENTIALS,
        ttl_days=ttl_days,
        transport=transport,
    )


def bench_async_store(
    table_name: str,
    endpoint: str | None,
    max_workers: int,
    transport: Literal["botocore", "http"] | None = None,
) -> AsyncDynamoDBSagaStore[BenchSaga]:
    """An asyncio ``BenchSaga`` store on ``endpoint``, ``max_workers`` requests in flight at
    most; ``transport`` None is the store's default (on the event loop with aiohttp)."""
    return AsyncDynamoDBSagaStore(
        BenchSaga,
        max_workers=max_workers,
        table_name=table_name,
        region=REGION,
        endpoint=endpoint,
        credentials=CREDENTIALS,
        ttl_days=30,
        transport=transport,
    )


def new_id() -> str:
    """A fresh id of the same shape as the store's (a canonical uuid4)."""
    return str(uuid.uuid4())


class RequestCounter:
    """Counts HTTP requests a botocore client sends (attach to ``before-send.dynamodb``),
    or a store sends on either transport (``attach_store``: the store's request observer).

    Both fire once per attempt, so retries are counted too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def attach(self, client: Any) -> None:
        """Register on ``client``'s event system."""
        client.meta.events.register("before-send.dynamodb", self)

    def attach_store(self, store: DynamoDBSagaStore[Any]) -> None:
        """Count every attempt ``store`` sends, whatever its transport."""
        store._observe_requests(self)

    def __call__(self, *_: Any, **__: Any) -> None:
        with self._lock:
            self.count += 1

    def take(self) -> int:
        """The count so far, and start again from zero."""
        with self._lock:
            taken, self.count = self.count, 0
        return taken


def substitute(value: Any, strings: dict[str, str]) -> Any:
    """A copy of a DynamoDB wire-form structure with ``{"S": old}`` values replaced.

    Used to turn a request the store sent for one saga into the same request for another.
    """
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("S"), str) and value["S"] in strings:
            return {"S": strings[value["S"]]}
        return {key: substitute(item, strings) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, strings) for item in value]
    return value


def _number(text: str) -> int | Decimal:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() and "." not in text else number


def wire_to_native(value: dict[str, Any]) -> Any:
    """A DynamoDB attribute value (``{"S": "x"}``) as a plain Python value, for pydynox."""
    ((kind, data),) = value.items()
    if kind in ("S", "BOOL"):
        return data
    if kind == "N":
        return _number(data)
    if kind == "NULL":
        return None
    if kind == "L":
        return [wire_to_native(item) for item in data]
    if kind == "M":
        return {key: wire_to_native(item) for key, item in data.items()}
    if kind == "SS":
        return set(data)
    if kind == "NS":
        return {_number(item) for item in data}
    if kind == "B":
        return bytes(data)
    if kind == "BS":
        return {bytes(item) for item in data}
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")
