"""The pytest side of the kit: the ``ddblocal`` marker and the two fixtures.

``saga_store_pynamo.testing`` re-exports these, and that package is the plugin pytest loads.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._backends import serve_dynamodb_local
from ._factory import SagaStoreFactory

__all__ = ["dynamodb_local_endpoint", "pytest_configure", "saga_store_factory"]

_MARKER = "ddblocal: needs the official Amazon DynamoDB Local server (Java 17 + npm)"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ddblocal`` marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line("markers", _MARKER)


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """The endpoint URL of one DynamoDB Local server shared by the whole session."""
    with serve_dynamodb_local() as endpoint:
        yield endpoint


@pytest.fixture
def saga_store_factory(request: pytest.FixtureRequest) -> Iterator[SagaStoreFactory]:
    """``factory(model, *, backend="moto" | "dynamodb-local", **store_options)``: a store on a
    fresh table (``factory.async_store(...)``: an asyncio one); the tables are removed, the
    stores closed and moto left after the test.
    """
    factory = SagaStoreFactory(request)
    yield factory
    factory.close()
