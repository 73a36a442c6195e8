"""``RawTable``: a store's table as stored, read and written behind the store's back."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._recorder import RequestRecorder, _sync_of

if TYPE_CHECKING:
    from .. import DynamoDBSagaStore
    from ..aio import AsyncDynamoDBSagaStore

__all__ = ["RawTable"]


class RawTable:
    """A store's table as stored, read and written behind the store's back.

    Uses the store's own botocore client, with ``recorder`` (if any) paused, so the kit needs
    nothing beyond the package. Its calls are plain blocking calls, for an asyncio store too
    (which is looked at through ``store.sync``).
    """

    def __init__(
        self,
        store: DynamoDBSagaStore[Any] | AsyncDynamoDBSagaStore[Any],
        recorder: RequestRecorder | None = None,
    ):
        """Look at ``store``'s table; pause ``recorder`` during our own requests."""
        #: The (sync) store whose table and botocore client are used.
        self.store: DynamoDBSagaStore[Any] = _sync_of(store)
        self.recorder = recorder

    def _call(self, operation: str, **params: Any) -> Any:
        pause = self.recorder.paused() if self.recorder else contextlib.nullcontext()
        with pause:
            return getattr(self.store.connection.client, operation)(**params)

    def _key(self, saga_name: str, saga_id: str) -> dict[str, Any]:
        attributes = self.store.model_for(saga_name).get_attributes()
        return {
            attributes["saga_name"].attr_name: {"S": saga_name},
            attributes["saga_id"].attr_name: {"S": saga_id},
        }

    def item(self, saga_name: str, saga_id: str) -> dict[str, Any] | None:
        """The stored item in DynamoDB's JSON (``{"version": {"N": "1"}, ...}``), or None."""
        response = self._call(
            "get_item",
            TableName=self.store.table_name,
            Key=self._key(saga_name, saga_id),
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def items(self) -> list[dict[str, Any]]:
        """Every item of the table (a consistent Scan)."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"TableName": self.store.table_name, "ConsistentRead": True}
        while True:
            response = self._call("scan", **params)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def set_attribute(
        self, saga_name: str, saga_id: str, name: str, value: Mapping[str, Any]
    ) -> None:
        """Set one attribute of an existing item, e.g. ``value={"S": "text"}``."""
        key = self._key(saga_name, saga_id)
        self._call(
            "update_item",
            TableName=self.store.table_name,
            Key=key,
            UpdateExpression="SET #a = :a",
            ConditionExpression="attribute_exists(#k)",  # never create an item
            ExpressionAttributeNames={"#a": name, "#k": next(iter(key))},
            ExpressionAttributeValues={":a": dict(value)},
        )
