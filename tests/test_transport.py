"""The store's ``transport`` option: ``"http"`` sends the item operations through the store's
own signed keep-alive pool (opt-in), inside the same retry loop as botocore's.

The behavioural contract over ``transport="http"`` is in tests/test_store.py, its lost
responses in tests/test_integrity.py and its corrupted answers in tests/test_checksum.py.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from botocore.regions import EndpointRulesetResolver
from pynamodb.connection import Connection

from saga_store_pynamo import ConcurrencyError, DynamoDBSagaStore, SagaValidationError, create_table
from saga_store_pynamo._aiohttp import AsyncHttpTransport
from saga_store_pynamo._moto import atomic_moto
from saga_store_pynamo._transport import moto_mock_active
from saga_store_pynamo.errors import SagaStoreRequestError
from saga_store_pynamo.testing import RequestRecorder
from tests.conftest import CREDENTIALS, REGION, store_behind
from tests.ddb_proxy import DynamoDBProxy, FaultInjector
from tests.models import OrderSaga
from tests.tls_proxy import ForwardProxy

NAME = "OrderSaga"


def botocore_sends(store: DynamoDBSagaStore[Any]) -> list[str]:
    """The operations the store's botocore client sends from now on."""
    sent: list[str] = []

    def record(request: Any, **_: Any) -> None:
        target = request.headers["X-Amz-Target"]
        sent.append(target.decode() if isinstance(target, bytes) else target)

    store.connection.client.meta.events.register("before-send.dynamodb", record)
    return sent


@pytest.mark.parametrize("transport", ["tcp", "HTTP", "", 1])
def test_an_unknown_transport_is_refused(transport: Any) -> None:
    with pytest.raises(SagaValidationError, match="transport"):
        DynamoDBSagaStore(OrderSaga, region=REGION, transport=transport)


def test_http_transport_refuses_a_passed_connection() -> None:
    with pytest.raises(SagaValidationError, match="passed connection"):
        DynamoDBSagaStore(OrderSaga, connection=Connection(region=REGION), transport="http")


def test_the_default_is_http_and_it_resolves_nothing_at_construction() -> None:
    store = DynamoDBSagaStore(OrderSaga, region=REGION)
    assert store.transport == "http"
    assert store._http is not None
    assert store._http._table.routes == {}  # no endpoint, credentials or pool until the first call
    assert store._http.pools == []
    assert store._http.handles("GetItem")  # cheap: resolves nothing either
    assert not store._http.handles("CreateTable")
    assert store._http._table.routes == {}
    assert store.connection._client is None
    store.close()  # closing an unused store is fine


@pytest.mark.ddblocal
def test_one_http_request_per_call_conflicts_included(
    faulty: tuple[FaultInjector, DynamoDBProxy],
) -> None:
    injector, proxy = faulty
    store = store_behind(proxy, OrderSaga, transport="http")
    recorder = RequestRecorder()
    recorder.attach(store)
    via_botocore = botocore_sends(store)
    injector.requests.clear()

    state = OrderSaga(order_id="order-1")
    store.insert(NAME, "order-1", state)
    stale = store.get_by_id(NAME, state.saga_id)
    assert stale is not None
    state.status = "paid"
    store.update(NAME, state, 0)
    with pytest.raises(ConcurrencyError):
        store.update(NAME, stale, 0)
    assert store.get_by_correlation_id(NAME, "order-1") == state
    store.delete(NAME, state.saga_id)

    expected = ["PutItem", "GetItem", "UpdateItem", "UpdateItem", "Query", "DeleteItem"]
    assert recorder.take() == expected
    assert sum(injector.requests.values()) == len(expected)
    assert via_botocore == []  # every one of them went through the store's own pool
    assert store._http is not None
    (pool,) = store._http.pools  # the store's custom endpoint, exactly
    assert pool.endpoint == proxy.endpoint
    assert pool.stats().open == 1  # one keep-alive connection, reused
    store.close()
    assert pool.stats().open == 0


def test_under_moto_the_http_store_sends_through_botocore() -> None:
    # Built before the mock starts: the choice is made per call, so it never leaves moto.
    store = DynamoDBSagaStore(
        OrderSaga, table_name="sagas-http", region=REGION, credentials=CREDENTIALS, transport="http"
    )
    assert not moto_mock_active()
    with atomic_moto():
        assert moto_mock_active()
        create_table(store)
        state = OrderSaga(order_id="order-2")
        store.insert(NAME, "order-2", state)
        assert store.get_by_id(NAME, state.saga_id) == state
    assert not moto_mock_active()
    assert store._http is not None
    assert store._http.pools == []


# -- where each request goes: botocore's endpoint resolution, per request -------------------

ACCOUNT = "123456789012"
GET = {"TableName": "sagas", "Key": {"sagaName": {"S": NAME}, "sagaId": {"S": "id-1"}}}
_AWS_ENVIRONMENT = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_ACCOUNT_ID",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No endpoint, proxy or profile setting of the machine running the tests leaks in."""
    for name in _AWS_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


def http_store(account_id: str | None = None, **options: Any) -> DynamoDBSagaStore[Any]:
    """An http-transport store whose credentials carry ``account_id``."""
    credentials = Credentials(
        CREDENTIALS["aws_access_key_id"],
        CREDENTIALS["aws_secret_access_key"],
        account_id=account_id,
    )
    options.setdefault("region", REGION)
    return DynamoDBSagaStore(OrderSaga, credentials=credentials, transport="http", **options)


def frozen(account_id: str | None) -> Any:
    return Credentials("AKID", "secret", account_id=account_id).get_frozen_credentials()


async def send_async(transport: AsyncHttpTransport) -> dict[str, Any]:
    """``GET`` through the asyncio transport, its session closed after."""
    try:
        return await transport.send("GetItem", GET)
    finally:
        await transport.aclose()


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("environment", "account_id", "host"),
    [
        ({}, ACCOUNT, f"{ACCOUNT}.ddb.us-east-1.amazonaws.com"),
        ({}, None, "dynamodb.us-east-1.amazonaws.com"),
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, ACCOUNT, "dynamodb-fips.us-east-1.amazonaws.com"),
        ({"AWS_USE_DUALSTACK_ENDPOINT": "true"}, ACCOUNT, f"{ACCOUNT}.ddb.us-east-1.api.aws"),
        ({"AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}, ACCOUNT, "dynamodb.us-east-1.amazonaws.com"),
    ],
    ids=["account-id", "no-account-id", "fips", "dualstack", "account-id-disabled"],
)
def test_each_request_goes_where_botocore_sends_it(
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    account_id: str | None,
    host: str,
) -> None:
    # Observed on the wire, offline: through a loopback forward proxy, each transport asks
    # for a CONNECT tunnel to the host it resolved; the proxy refuses anything off 127.0.0.1.
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url())
        store = http_store(account_id)
        assert store._http is not None
        with pytest.raises(BotoCoreError):
            store._http.send("GetItem", GET)
        with pytest.raises(BotoCoreError):
            store.connection.client._make_api_call("GetItem", GET)
        with pytest.raises(BotoCoreError):
            asyncio.run(send_async(AsyncHttpTransport(store.connection, max_connections=1)))
        # (The http version of a CONNECT differs: urllib3 says HTTP/1.0.)
        targets = [line.split()[:2] for line in proxy.request_lines()]
        assert targets == [["CONNECT", f"{host}:443"]] * 3
    (pool,) = store._http.pools
    assert pool.endpoint == f"https://{host}"
    route = store._http.route(frozen(account_id), "GetItem", "sagas")
    assert route is not None
    assert (route.signer.region, route.signer.service, route.signer.host) == (
        REGION,
        "dynamodb",
        host,
    )
    store.close()


@pytest.mark.usefixtures("clean_environment")
def test_one_pool_and_signer_per_resolved_endpoint() -> None:
    store = http_store(ACCOUNT, region="eu-west-1")
    transport = store._http
    assert transport is not None
    mine = transport.route(frozen(ACCOUNT), "GetItem", "sagas")
    assert mine is not None
    assert transport.route(frozen(ACCOUNT), "GetItem", "sagas") is mine
    for operation in ("PutItem", "UpdateItem", "DeleteItem", "Query"):
        route = transport.route(frozen(ACCOUNT), operation, "sagas")
        assert route is not None
        assert route.pool is mine.pool
        assert route.signer is mine.signer
    other = transport.route(frozen("999988887777"), "GetItem", "sagas")
    plain = transport.route(frozen(None), "GetItem", "sagas")
    assert other is not None
    assert plain is not None
    assert [pool.endpoint for pool in transport.pools] == [
        f"https://{ACCOUNT}.ddb.eu-west-1.amazonaws.com",
        "https://999988887777.ddb.eu-west-1.amazonaws.com",
        "https://dynamodb.eu-west-1.amazonaws.com",
    ]
    assert transport._table.resolver.resolutions == 7
    store.close()


@pytest.mark.usefixtures("clean_environment")
def test_threads_making_their_first_request_at_once_build_one_pool() -> None:
    store = http_store(ACCOUNT)
    transport = store._http
    assert transport is not None
    start = threading.Barrier(8)
    routes: list[Any] = []

    def first_request() -> None:
        start.wait()
        routes.append(transport.route(frozen(ACCOUNT), "GetItem", "sagas"))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(transport.pools) == 1
    assert len({id(route) for route in routes}) == 1
    assert transport._table.resolver.resolutions == 1


@pytest.mark.usefixtures("clean_environment")
def test_a_request_botocore_refuses_is_refused_by_botocore(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # account_id_endpoint_mode=required and credentials without an account id: the request
    # is handed to botocore, which refuses it with its own error (nothing is sent).
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "required")
    store = http_store(None)
    with pytest.raises(SagaStoreRequestError, match="AccountIdEndpointMode is required"):
        store.get_by_id(NAME, "id-1")
    assert store._http is not None
    assert store._http.pools == []
    assert store._http.route(frozen(None), "GetItem", "sagas") is None


@pytest.mark.ddblocal
def test_an_endpoint_the_transport_cannot_honour_goes_through_botocore(
    faulty: tuple[FaultInjector, DynamoDBProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A ruleset whose endpoint asks for a header: botocore sends it, so botocore sends these.
    injector, proxy = faulty
    store = store_behind(proxy, OrderSaga, transport="http")
    original = EndpointRulesetResolver.construct_endpoint

    def with_a_header(self: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, *args, **kwargs)._replace(headers={"x-amz-test-route": "blue"})

    monkeypatch.setattr(EndpointRulesetResolver, "construct_endpoint", with_a_header)
    via_botocore = botocore_sends(store)
    injector.requests.clear()

    state = OrderSaga(order_id="order-3")
    store.insert(NAME, "order-3", state)
    assert store.get_by_id(NAME, state.saga_id) == state
    assert via_botocore == ["DynamoDB_20120810.PutItem", "DynamoDB_20120810.GetItem"]
    assert sum(injector.requests.values()) == 2
    assert store._http is not None
    assert store._http.pools == []
    store.close()


class CountingCredentials(Credentials):  # type: ignore[misc]
    """Credentials that count how often they are frozen."""

    frozen = 0

    def get_frozen_credentials(self) -> Any:
        self.frozen += 1
        return super().get_frozen_credentials()


@pytest.mark.ddblocal
def test_credentials_are_frozen_once_per_attempt(dynamodb_local_endpoint: str) -> None:
    credentials = CountingCredentials(
        CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"]
    )
    store = DynamoDBSagaStore(
        OrderSaga,
        table_name=f"frozen-{uuid.uuid4().hex[:10]}",
        endpoint=dynamodb_local_endpoint,
        region=REGION,
        credentials=credentials,
        transport="http",
    )
    create_table(store)
    state = OrderSaga(order_id="order-4")
    credentials.frozen = 0
    store.insert(NAME, "order-4", state)
    assert credentials.frozen == 1  # one set picks the route and signs
    assert store.get_by_id(NAME, state.saga_id) == state
    assert credentials.frozen == 2
    assert store._http is not None
    assert [pool.endpoint for pool in store._http.pools] == [dynamodb_local_endpoint]
    store.close()
