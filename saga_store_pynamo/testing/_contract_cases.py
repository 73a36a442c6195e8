"""What ``SagaStoreContract`` compares against: expected requests and the calls it must refuse."""

from __future__ import annotations

import calendar
import dataclasses
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import DynamoDBSagaStore, SagaModel

if TYPE_CHECKING:
    from ._contract import SagaStoreContract

__all__: list[str] = []


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def _attr_name(model: type[SagaModel], name: str) -> str:
    """The DynamoDB name of ``model``'s attribute ``name``."""
    return model.get_attributes()[name].attr_name


def _epoch(moment: datetime) -> int:
    return calendar.timegm(moment.utctimetuple())


def _lookup_ops(store: DynamoDBSagaStore[Any], *, found: bool) -> list[str]:
    """The requests ``get_by_correlation_id`` sends with ``store``'s options."""
    if not store.unique_correlation:
        return ["Query"]
    if found or not store.correlation_fallback:
        return ["GetItem"]
    return ["GetItem", "Query"]


def _not_found_ops(store: DynamoDBSagaStore[Any]) -> list[str]:
    """The requests an update of a missing saga sends with ``store``'s options."""
    return ["UpdateItem", "GetItem"] if store.read_on_conflict else ["UpdateItem"]


@dataclasses.dataclass(frozen=True)
class _BadCall:
    """One call the store must refuse before sending anything."""

    label: str
    field: str
    call: Callable[[SagaStoreContract[Any], DynamoDBSagaStore[Any], str], object]


_BAD_CALLS: tuple[_BadCall, ...] = (
    _BadCall("insert, empty name", "saga_name", lambda c, s, n: s.insert("", "c", c.fresh())),
    _BadCall(
        "insert, name over 2,048 bytes",
        "saga_name",
        lambda c, s, n: s.insert("n" * 2049, "c", c.fresh()),
    ),
    _BadCall(
        "insert, empty correlation id", "correlation_id", lambda c, s, n: s.insert(n, "", c.fresh())
    ),
    _BadCall(
        "insert, correlation id over 1,024 bytes",
        "correlation_id",
        lambda c, s, n: s.insert(n, "c" * 1025, c.fresh()),
    ),
    _BadCall(
        "insert, empty saga id",
        "state.saga_id",
        lambda c, s, n: s.insert(n, "c", c.fresh(saga_id="")),
    ),
    _BadCall(
        "insert, saga id over 1,024 bytes",
        "state.saga_id",
        lambda c, s, n: s.insert(n, "c", c.fresh(saga_id="i" * 1025)),
    ),
    _BadCall(
        "insert, state with a version",
        "state.version",
        lambda c, s, n: s.insert(n, "c", c.fresh(version=3)),
    ),
    _BadCall(
        "update, negative version",
        "expected_version",
        lambda c, s, n: s.update(n, c.loaded_like(n), -1),
    ),
    _BadCall(
        "update, saga id over 1,024 bytes",
        "state.saga_id",
        lambda c, s, n: s.update(n, c.loaded_like(n, saga_id="i" * 1025), 0),
    ),
    _BadCall("get_by_id, empty saga id", "saga_id", lambda c, s, n: s.get_by_id(n, "")),
    _BadCall(
        "get_by_id, name over 2,048 bytes",
        "saga_name",
        lambda c, s, n: s.get_by_id("n" * 2049, "x"),
    ),
    _BadCall(
        "get_by_correlation_id, empty correlation id",
        "correlation_id",
        lambda c, s, n: s.get_by_correlation_id(n, ""),
    ),
    _BadCall(
        "get_by_correlation_id, correlation id over 1,024 bytes",
        "correlation_id",
        lambda c, s, n: s.get_by_correlation_id(n, "c" * 1025),
    ),
    _BadCall("delete, empty saga id", "saga_id", lambda c, s, n: s.delete(n, "")),
    _BadCall(
        "delete, name over 2,048 bytes", "saga_name", lambda c, s, n: s.delete("n" * 2049, "x")
    ),
)
