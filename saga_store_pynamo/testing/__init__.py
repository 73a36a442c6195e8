"""Test your own sagas against moto or the official DynamoDB Local: a pytest plugin.

pytest loads this package by itself once the project is installed (entry point ``pytest11``;
with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, pass ``-p saga_store_pynamo.testing``). It gives:

- ``saga_store_factory``: a fixture that makes ``DynamoDBSagaStore`` objects on fresh tables
  (and, with ``saga_store_factory.async_store(...)``, ``AsyncDynamoDBSagaStore`` ones), on
  moto (in-process) or on DynamoDB Local, and removes the tables afterwards;
- ``dynamodb_local_endpoint``: a session fixture, the endpoint of one DynamoDB Local server
  (skipped with the reason when Java 17+ or npm is missing, failed instead under ``CI=true``);
- ``SagaStoreContract``: a test class to subclass, which runs the store's behavioural contract
  on your own ``SagaModel``;
- ``RequestRecorder``: records the DynamoDB requests a store sends;
- the ``ddblocal`` marker, on every test that needs DynamoDB Local.

Import everything from here; the modules inside are private. Only pytest and the package
are imported at first; moto (the ``[demo]`` extra) when a test first asks for it, and the
asyncio store when a test first makes one. See ``docs/testing-kit.md``.
"""

from __future__ import annotations

from ._backends import (
    BACKENDS,
    DYNAMODB_LOCAL_ENDPOINT_ENV,
    TEST_CREDENTIALS,
    TEST_REGION,
    BackendName,
    backend_params,
    serve_dynamodb_local,
)
from ._contract import SEED_IAM_ACTIONS, SagaStoreContract
from ._factory import SagaStoreFactory

# pytest looks for the plugin's hook and fixtures on this package, the module it loads.
from ._plugin import dynamodb_local_endpoint, saga_store_factory
from ._plugin import pytest_configure as pytest_configure
from ._recorder import RequestRecorder
from ._table import RawTable

__all__ = [
    "BACKENDS",
    "DYNAMODB_LOCAL_ENDPOINT_ENV",
    "SEED_IAM_ACTIONS",
    "TEST_CREDENTIALS",
    "TEST_REGION",
    "BackendName",
    "RawTable",
    "RequestRecorder",
    "SagaStoreContract",
    "SagaStoreFactory",
    "backend_params",
    "dynamodb_local_endpoint",
    "saga_store_factory",
    "serve_dynamodb_local",
]
