"""The store's own transport as users configure it: TLS, proxies and refreshing credentials,
through ``DynamoDBSagaStore`` and ``AsyncDynamoDBSagaStore`` end to end on DynamoDB Local.

The transports' own tests (``test_http.py``, ``test_aiohttp_transport.py``) pin each case at
the level of one request; these check that the stores pass the settings on and that their
retries and errors treat the outcomes as documented.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
from botocore.credentials import RefreshableCredentials

from saga_store_pynamo import (
    DynamoDBSagaStore,
    RetryPolicy,
    SagaStoreUnavailableError,
    TableNotFoundError,
    create_table,
)
from saga_store_pynamo._sigv4 import SigV4Signer
from saga_store_pynamo.aio import AsyncDynamoDBSagaStore
from tests.conftest import CREDENTIALS, REGION, Backend
from tests.models import OrderSaga
from tests.tls_proxy import CertificateAuthority, ForwardProxy, TLSTerminatingProxy

pytestmark = pytest.mark.ddblocal

NAME = "OrderSaga"
_ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "AWS_CA_BUNDLE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))


class Stores(NamedTuple):
    sync: DynamoDBSagaStore[OrderSaga]
    aio: AsyncDynamoDBSagaStore[OrderSaga]


def stores(endpoint: str, table_name: str, **options: Any) -> Stores:
    """A sync and an async store on ``endpoint``, both on the store's own transport."""
    options.setdefault("credentials", CREDENTIALS)
    common = {"endpoint": endpoint, "region": REGION, "table_name": table_name, **options}
    pair = Stores(
        DynamoDBSagaStore(OrderSaga, **common), AsyncDynamoDBSagaStore(OrderSaga, **common)
    )
    assert pair.sync.transport == "http"
    assert pair.aio.native
    return pair


def round_trip(pair: Stores, saga_id: str) -> None:
    """insert, modify, read back: with the sync store, then with the async one."""
    pair.sync.insert(NAME, f"c-{saga_id}", OrderSaga(saga_id=saga_id))
    pair.sync.modify(NAME, saga_id, lambda state: setattr(state, "status", "sync"))

    async def scenario() -> OrderSaga | None:
        try:
            await pair.aio.modify(NAME, saga_id, lambda state: setattr(state, "total_cents", 7))
            return await pair.aio.get_by_id(NAME, saga_id)
        finally:
            await pair.aio.aclose()

    final = asyncio.run(scenario())
    assert final is not None
    assert (final.status, final.total_cents, final.version) == ("sync", 7, 2)


@pytest.fixture
def table(dynamodb_local_endpoint: str) -> Iterator[str]:
    store = DynamoDBSagaStore(
        OrderSaga,
        table_name=f"network-{uuid.uuid4().hex[:10]}",
        endpoint=dynamodb_local_endpoint,
        region=REGION,
        credentials=CREDENTIALS,
        transport="botocore",
    )
    create_table(store)
    yield store.table_name
    Backend("dynamodb-local", dynamodb_local_endpoint, 0).client().delete_table(
        TableName=store.table_name
    )


def host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or "127.0.0.1", parts.port or 80


class TLS(NamedTuple):
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    proxy: TLSTerminatingProxy


@pytest.fixture
def tls(tmp_path: Path, dynamodb_local_endpoint: str) -> Iterator[TLS]:
    """DynamoDB Local behind TLS, with a certificate for 127.0.0.1 from ``ca``."""
    ca = CertificateAuthority(tmp_path, "test CA")
    other = CertificateAuthority(tmp_path, "other CA")
    certificate = ca.issue("loopback", ips=("127.0.0.1",))
    with TLSTerminatingProxy(host_port(dynamodb_local_endpoint), *certificate) as proxy:
        yield TLS(ca, other, proxy)


def test_tls_with_the_ca_bundle_of_aws_ca_bundle(
    tls: TLS, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.ca.cert_path))
    round_trip(stores(tls.proxy.endpoint, table), "tls")
    assert tls.proxy.handshakes == 2  # one kept-alive connection per store


def test_tls_with_an_untrusted_certificate_sends_nothing_and_says_so(
    tls: TLS, table: str, dynamodb_local_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls.other_ca.cert_path))
    pair = stores(tls.proxy.endpoint, table, retry=RetryPolicy(max_attempts=2, base_delay=0))
    with pytest.raises(SagaStoreUnavailableError) as sync_error:
        pair.sync.insert(NAME, "c", OrderSaga(saga_id="refused"))

    async def scenario() -> None:
        try:
            await pair.aio.insert(NAME, "c", OrderSaga(saga_id="refused-too"))
        finally:
            await pair.aio.aclose()

    with pytest.raises(SagaStoreUnavailableError) as async_error:
        asyncio.run(scenario())
    for error in (sync_error.value, async_error.value):
        assert error.attempts == 2
        assert error.may_have_landed is False  # no byte of the request was sent
        assert "certificate verify failed" in str(error.__cause__)
    assert tls.proxy.handshakes == 0
    plain = stores(dynamodb_local_endpoint, table)
    assert plain.sync.find_by_name(NAME).items == []


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
def test_a_proxy_from_the_environment_carries_every_request(
    dynamodb_local_endpoint: str, table: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    with ForwardProxy() as proxy, monkeypatch.context() as environment:
        environment.setenv(variable, proxy.url())
        round_trip(stores(dynamodb_local_endpoint, table), "proxied")
        lines = proxy.request_lines()
    # insert, then modify's read and write from each store, then the final read.
    assert lines == [f"POST {dynamodb_local_endpoint}/ HTTP/1.1"] * 6


def test_no_proxy_names_the_endpoint_and_nothing_goes_through_the_proxy(
    dynamodb_local_endpoint: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ForwardProxy() as proxy, monkeypatch.context() as environment:
        environment.setenv("HTTP_PROXY", proxy.url())
        environment.setenv("NO_PROXY", f"example.test,{host_port(dynamodb_local_endpoint)[0]}")
        round_trip(stores(dynamodb_local_endpoint, table), "direct")
        assert proxy.request_lines() == []


class Rotating:
    """Refreshable credentials that expire at once: every request freezes fresh ones."""

    def __init__(self) -> None:
        self.access_key = CREDENTIALS["aws_access_key_id"]
        self.refreshes = 0

    def refresh(self) -> dict[str, str]:
        self.refreshes += 1
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
        return {
            "access_key": self.access_key,
            "secret_key": f"secret-{self.refreshes}",
            "token": f"token-{self.refreshes}",
            "expiry_time": expiry.isoformat(),
        }

    def credentials(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(
            self.refresh(), refresh_using=self.refresh, method="test-rotation"
        )


def test_credentials_refreshed_mid_run_sign_the_next_requests(
    dynamodb_local_endpoint: str, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotating = Rotating()
    pair = stores(dynamodb_local_endpoint, table, credentials=rotating.credentials())
    tokens: list[str | None] = []
    sign = SigV4Signer.sign

    def spy(self: SigV4Signer, credentials: Any, *args: Any, **kwargs: Any) -> Any:
        tokens.append(credentials.token)
        return sign(self, credentials, *args, **kwargs)

    monkeypatch.setattr(SigV4Signer, "sign", spy)
    round_trip(pair, "refreshed")
    assert len(tokens) == 6
    assert len(set(tokens)) == 6  # a fresh set for every request, as refreshed
    assert rotating.refreshes >= 6

    # DynamoDB Local keeps one database per access key: a refresh to another key moves the
    # next request to it, where this table does not exist.
    rotating.access_key = "AKIDANOTHERACCOUNT"
    with pytest.raises(TableNotFoundError):
        pair.sync.get_by_id(NAME, "refreshed")
