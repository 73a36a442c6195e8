"""The operator calls of ``DynamoDBSagaStore``: listing a saga name's sagas and purging the
completed ones (``find_by_name``, ``iter_by_name``, ``purge_completed``).

A mixin the store inherits, kept apart from the ``SagaStore`` calls; like them, each call is
written as steps (``_steps``) that the sync and the asyncio store run alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic

from typing_extensions import TypeVar

from ._cursor import decode_cursor, encode_cursor
from ._dispatch import ConditionFailed
from ._model_info import ModelInfo, model_info
from ._steps import Send, Steps
from ._tokens import INCARNATION, incarnation_of, set_incarnation
from ._validation import MAX_PARTITION_KEY_BYTES, check_key
from .errors import SagaValidationError
from .models import SagaModel

__all__ = ["OperatorCalls", "SagaPage", "load_state"]

M = TypeVar("M", bound=SagaModel, default=SagaModel)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class SagaPage(Generic[M]):
    """One page of sagas from ``find_by_name``."""

    #: The sagas of this page, as model instances.
    items: list[M]
    #: Pass it back as ``cursor`` for the next page; None when there are no more.
    cursor: str | None


def load_state(info: ModelInfo, item: dict[str, Any]) -> SagaModel:
    """The state stored as ``item``, knowing the incarnation it was loaded from."""
    state = info.codec.decode(item)
    set_incarnation(state, item)
    return state


class OperatorCalls(Generic[M]):
    """``find_by_name``, ``iter_by_name`` and ``purge_completed``, for ``DynamoDBSagaStore``."""

    table_name: str

    if TYPE_CHECKING:  # provided by DynamoDBSagaStore

        def model_for(self, saga_name: str) -> type[SagaModel]: ...

        def _run(
            self,
            steps: Steps[T],
            call: str,
            saga_name: object,
            saga_id: object = None,
            operation: str | None = None,
            sleep: Callable[[float], object] = ...,
        ) -> T: ...

    def find_by_name(
        self,
        saga_name: str,
        *,
        completed: bool | None = None,
        limit: int = 100,
        cursor: str | None = None,
        consistent_read: bool = False,
    ) -> SagaPage[M]:
        """One page of the sagas of one saga name, in saga id order (Query, never Scan).

        Pages are full: with a ``completed`` filter the store keeps reading until ``limit``
        matching sagas or the end (DynamoDB applies ``Limit`` before a filter).

        :param completed: True for completed sagas only, False for active ones, None for all.
        :param limit: page size, 1 to 1,000.
        :param cursor: the ``cursor`` of the previous page.
        :param consistent_read: a strongly consistent Query (twice the read units).
        :raises SagaValidationError: on a bad name, limit or cursor.
        """
        return self._run(
            self._find_by_name(saga_name, completed, limit, cursor, consistent_read),
            "find_by_name",
            saga_name,
        )

    def _find_by_name(
        self,
        saga_name: str,
        completed: bool | None,
        limit: int,
        cursor: str | None,
        consistent_read: bool,
    ) -> Steps[SagaPage[M]]:
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise SagaValidationError("limit", f"must be an int from 1 to 1,000, got {limit!r}")
        if not (completed is None or completed is True or completed is False):
            raise SagaValidationError(
                "completed", f"must be True, False or None, got {completed!r}"
            )
        model = self.model_for(saga_name)
        info = model_info(model)
        key_of = {info.hash_key: {"S": saga_name}, info.range_key: None}
        start = None if cursor is None else decode_cursor(cursor, key_of)
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "#n = :n",
            "ExpressionAttributeNames": {"#n": info.hash_key},
            "ExpressionAttributeValues": {":n": {"S": saga_name}},
            "ConsistentRead": bool(consistent_read),
        }
        if completed is not None:
            _add_completed_filter(request, info, completed)
        items: list[M] = []
        while True:
            # Without a filter, ask for exactly what is missing; with one, read in pages of
            # at least 100 so a selective filter costs few round trips.
            missing = limit - len(items)
            request["Limit"] = missing if completed is None else max(missing, 100)
            if start is not None:
                request["ExclusiveStartKey"] = start
            response = yield Send("Query", request)
            page = response.get("Items") or []
            for position, item in enumerate(page):
                items.append(load_state(info, item))  # type: ignore[arg-type]
                if len(items) == limit:
                    more = position + 1 < len(page) or "LastEvaluatedKey" in response
                    last = {
                        info.hash_key: item[info.hash_key],
                        info.range_key: item[info.range_key],
                    }
                    return SagaPage(items, encode_cursor(last) if more else None)
            start = response.get("LastEvaluatedKey")
            if start is None:
                return SagaPage(items, None)

    def iter_by_name(
        self, saga_name: str, *, completed: bool | None = None, page_size: int = 100
    ) -> Iterator[M]:
        """Every saga of one saga name, page by page (see ``find_by_name()``)."""
        cursor = None
        while True:
            page = self.find_by_name(saga_name, completed=completed, limit=page_size, cursor=cursor)
            yield from page.items
            if page.cursor is None:
                return
            cursor = page.cursor

    def purge_completed(
        self,
        saga_name: str,
        *,
        before: datetime,
        dry_run: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Delete the completed sagas of one saga name last updated before ``before``.

        Each DeleteItem is conditioned on the saga still being completed at the version that
        was read, so a saga changed in between is skipped, not deleted. TTL (``ttl_days``)
        remains the main cleanup; this is for operators.

        :param before: an aware datetime.
        :param dry_run: count what would be deleted, delete nothing.
        :param on_progress: called with (sagas matched so far, sagas deleted so far).
        :returns: the number of sagas deleted (or, with ``dry_run``, that would be).
        """
        return self._run(
            self._purge_completed(saga_name, before, dry_run, on_progress),
            "purge_completed",
            saga_name,
        )

    def _purge_completed(
        self,
        saga_name: str,
        before: datetime,
        dry_run: bool,
        on_progress: Callable[[int, int], None] | None,
    ) -> Steps[int]:
        check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
        if not isinstance(before, datetime) or before.utcoffset() is None:
            raise SagaValidationError("before", "must be a timezone-aware datetime")
        model = self.model_for(saga_name)
        info = model_info(model)
        matched = deleted = 0
        cursor: str | None = None
        while True:
            page = yield from self._find_by_name(saga_name, True, 100, cursor, False)
            for state in page.items:
                if state.updated_at is None or state.updated_at >= before:
                    continue
                matched += 1
                if not dry_run:
                    deleted += yield from self._purge_one(info, saga_name, state)
                if on_progress is not None:
                    on_progress(matched, deleted)
            cursor = page.cursor
            if cursor is None:
                return matched if dry_run else deleted

    def _purge_one(self, info: ModelInfo, saga_name: str, state: SagaModel) -> Steps[int]:
        """Delete one completed saga if it is still as read: 1 if deleted, else 0."""
        # Same version => same updatedAt: every write bumps the version. Same
        # incarnation => the same saga, not one inserted since under its id that
        # has reached that version too.
        incarnation = incarnation_of(state)
        if incarnation:
            same_saga, incarnation_value = "#i = :i", {":i": {"S": incarnation}}
        else:
            same_saga, incarnation_value = "attribute_not_exists(#i)", {}
        try:
            yield Send(
                "DeleteItem",
                {
                    "TableName": self.table_name,
                    "Key": {
                        info.hash_key: {"S": saga_name},
                        info.range_key: {"S": state.saga_id},
                    },
                    "ConditionExpression": f"#v = :v AND #c = :t AND {same_saga}",
                    "ExpressionAttributeNames": {
                        "#v": info.version,
                        "#c": info.completed,
                        "#i": INCARNATION,
                    },
                    "ExpressionAttributeValues": {
                        ":v": {"N": str(state.version)},
                        ":t": {"BOOL": True},
                        **incarnation_value,
                    },
                },
                saga_name=saga_name,
                saga_id=state.saga_id,
            )
        except ConditionFailed:
            return 0  # changed since it was read: not ours to delete any more
        return 1


def _add_completed_filter(request: dict[str, Any], info: ModelInfo, completed: bool) -> None:
    request["ExpressionAttributeNames"]["#c"] = info.completed
    request["ExpressionAttributeValues"][":t"] = {"BOOL": True}
    # A saga written without isCompleted (by another tool) counts as active.
    request["FilterExpression"] = (
        "#c = :t" if completed else "(attribute_not_exists(#c) OR NOT #c = :t)"
    )
