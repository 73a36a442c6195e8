"""``RequestRecorder``: the DynamoDB requests stores send, as a test sees them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import DynamoDBSagaStore

if TYPE_CHECKING:
    from ..aio import AsyncDynamoDBSagaStore

__all__ = ["RequestRecorder"]


class RequestRecorder:
    """Records the DynamoDB requests stores send: one entry per API call.

    ``attach(store)`` hooks the store's own send point, so the requests of either transport
    (``transport="botocore"`` or ``"http"``) are recorded, each attempt of a retried request
    included. An ``AsyncDynamoDBSagaStore`` sends through its ``sync`` store's send point,
    so its requests are recorded too, on whichever event loop or thread they are sent.
    """

    def __init__(self) -> None:
        """Start with nothing recorded."""
        #: The operation names recorded since the last ``take()``, e.g. ``"PutItem"``.
        self.operations: list[str] = []
        #: (operation, request parameters) for each of ``operations``.
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._paused = 0

    def attach(self, store: DynamoDBSagaStore[Any] | AsyncDynamoDBSagaStore[Any]) -> None:
        """Record every request ``store`` sends from now on (attaching twice records once).

        An asyncio store is attached through ``store.sync``: the two share one send point.
        """
        _sync_of(store)._observe_requests(self._record)

    def _record(self, operation: str, params: dict[str, Any]) -> None:
        with self._lock:
            if not self._paused:
                self.operations.append(operation)
                self.requests.append((operation, params))

    def take(self) -> list[str]:
        """The operations recorded since the last take; clears ``operations`` and ``requests``."""
        with self._lock:
            taken, self.operations, self.requests = self.operations, [], []
        return taken

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Record nothing inside the block (for requests a test makes itself)."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1


def _sync_of(store: DynamoDBSagaStore[Any] | AsyncDynamoDBSagaStore[Any]) -> DynamoDBSagaStore[Any]:
    """``store`` itself, or the sync store an asyncio store sends through."""
    return store if isinstance(store, DynamoDBSagaStore) else store.sync
