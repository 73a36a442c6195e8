"""Capacity units one saga's lifecycle consumes, as DynamoDB reports them.

The store does not ask for consumed capacity; here a hook adds
``ReturnConsumedCapacity=INDEXES`` to each of its data-plane requests, so the GSI's share is
reported separately, and another reads the ``ConsumedCapacity`` of each response. Expected
units follow DynamoDB's rules: a write costs 1 WCU per started KB of the larger of the old
and new item, in the table and again in the ``correlationIndex`` (it projects every
attribute); a strongly consistent GetItem costs 1 RCU per started 4 KB, an eventually
consistent Query half of that.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Callable
from typing import Any

from saga_store_pynamo._size import item_size

from .backends import Fixture
from .common import SAGA_NAME, BenchmarkError, BenchSaga, bench_store

__all__ = ["UPDATES", "Lifecycle", "Step", "measure_lifecycle"]

#: Updates between insert and completion.
UPDATES = 10


@dataclasses.dataclass(frozen=True)
class Step:
    """One call of the lifecycle and the units it consumed."""

    name: str  # "insert", "update", "complete", "get_by_correlation_id", "get_by_id"
    operation: str  # the DynamoDB operation sent
    item_bytes: int  # stored item size after the call (DynamoDB's way of counting)
    table: float  # units the table consumed (WCU for writes, RCU for reads)
    index: float  # units the GSI consumed
    expected_table: float
    expected_index: float

    @property
    def is_write(self) -> bool:
        """Whether the units are write units."""
        return self.operation in ("PutItem", "UpdateItem", "DeleteItem")

    @property
    def as_expected(self) -> bool:
        """Whether DynamoDB reported the units its pricing rules give."""
        return math.isclose(self.table, self.expected_table) and math.isclose(
            self.index, self.expected_index
        )


@dataclasses.dataclass(frozen=True)
class Lifecycle:
    """insert, ``UPDATES`` updates, completion (TTL set), get_by_correlation_id, get_by_id."""

    label: str
    steps: list[Step]

    def total(self, writes: bool, index: bool, expected: bool = False) -> float:
        """Sum of the table's or the GSI's write or read units, measured or expected."""
        total = 0.0
        for step in self.steps:
            if step.is_write == writes:
                if expected:
                    total += step.expected_index if index else step.expected_table
                else:
                    total += step.index if index else step.table
        return total

    @property
    def as_expected(self) -> bool:
        """Whether every step consumed what DynamoDB's rules give."""
        return all(step.as_expected for step in self.steps)


def _units(consumed: dict[str, Any] | None) -> tuple[float, float]:
    if not consumed:
        raise BenchmarkError("no ConsumedCapacity in the response")
    table = float((consumed.get("Table") or {}).get("CapacityUnits", 0.0))
    indexes = consumed.get("GlobalSecondaryIndexes") or {}
    index = sum(float(i.get("CapacityUnits", 0.0)) for i in indexes.values())
    if not consumed.get("Table") and not indexes:
        table = float(consumed.get("CapacityUnits", 0.0))  # a TOTAL-only answer
    return table, index


def measure_lifecycle(fixture: Fixture, label: str, state: BenchSaga) -> Lifecycle:
    """Run one saga's lifecycle through a store and record each call's consumed units."""
    store = bench_store(fixture.table_name, fixture.backend.endpoint)
    responses: list[tuple[str, dict[str, Any] | None]] = []

    def ask_for_indexes(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"

    def record(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        responses.append((model.name, parsed.get("ConsumedCapacity")))

    events = store.connection.client.meta.events
    for operation in ("PutItem", "UpdateItem", "DeleteItem", "GetItem", "Query"):
        events.register(f"before-parameter-build.dynamodb.{operation}", ask_for_indexes)
    events.register("after-call.dynamodb", record)

    key: dict[str, Any] = {}

    def stored_bytes() -> int:
        item = fixture.setup.get_item(TableName=fixture.table_name, Key=key, ConsistentRead=True)
        return item_size(item["Item"]) if "Item" in item else 0

    steps: list[Step] = []

    def step(name: str, call: Callable[[], Any]) -> None:
        before = stored_bytes() if key else 0
        responses.clear()
        call()
        if len(responses) != 1:
            raise BenchmarkError(f"{name} sent {len(responses)} requests, expected 1")
        if not key:
            key.update(
                {"sagaName": {"S": SAGA_NAME}, "sagaId": {"S": state.saga_id}},
            )
        operation, consumed = responses[0]
        table, index = _units(consumed)
        after = stored_bytes()
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            written = math.ceil(max(before, after) / 1024)
            expected_table, expected_index = float(written), float(written)
        elif operation == "GetItem":
            expected_table, expected_index = float(math.ceil(after / 4096)), 0.0
        else:  # an eventually consistent Query of the GSI
            expected_table, expected_index = 0.0, math.ceil(after / 4096) / 2
        steps.append(Step(name, operation, after, table, index, expected_table, expected_index))

    try:
        correlation_id = f"corr-{uuid.uuid4().hex}"
        step("insert", lambda: store.insert(SAGA_NAME, correlation_id, state))
        for number in range(UPDATES):
            state.status = f"step-{number}"
            state.total_cents = (state.total_cents or 0) + 1
            step("update", lambda: store.update(SAGA_NAME, state, state.version))
        state.is_completed = True
        state.status = "done"
        step("complete", lambda: store.update(SAGA_NAME, state, state.version))
        step(
            "get_by_correlation_id",
            lambda: store.get_by_correlation_id(SAGA_NAME, correlation_id),
        )
        step("get_by_id", lambda: store.get_by_id(SAGA_NAME, state.saga_id))
    finally:
        store.close()
    return Lifecycle(label, steps)
