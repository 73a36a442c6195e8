"""Store construction: validated up front, sends nothing, never shows a credential."""

from __future__ import annotations

import threading
import uuid
from typing import Any
from unittest import mock

import botocore.session
import pytest
from botocore.credentials import Credentials, RefreshableCredentials
from hypothesis import given, settings
from hypothesis import strategies as st
from pynamodb.connection import Connection

from saga_store_pynamo import (
    DynamoDBSagaStore,
    SagaModel,
    SagaStoreError,
    SagaValidationError,
    TableNotFoundError,
    create_table,
)
from saga_store_pynamo._sigv4 import SigV4Signer
from saga_store_pynamo.retry import RetryPolicy
from tests.conftest import REGION, Backend
from tests.models import OrderSaga, PaymentSaga

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
GOOD = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": SECRET}

BAD_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "short table name": ({"table_name": "ab"}, "table_name"),
    "bad table chars": ({"table_name": "sagas table"}, "table_name"),
    "endpoint without scheme": ({"endpoint": "localhost:8000"}, "endpoint"),
    "endpoint not str": ({"endpoint": 8000}, "endpoint"),
    "endpoint port not a number": ({"endpoint": "http://localhost:abc"}, "endpoint"),
    "endpoint port too big": ({"endpoint": "http://localhost:65536"}, "endpoint"),
    "endpoint port zero": ({"endpoint": "http://localhost:0"}, "endpoint"),
    "endpoint port negative": ({"endpoint": "http://localhost:-1"}, "endpoint"),
    "endpoint host with space": ({"endpoint": "http://local host:8000"}, "endpoint"),
    "endpoint host underscore": ({"endpoint": "http://my_host:8000"}, "endpoint"),
    "endpoint empty host": ({"endpoint": "http://:8000"}, "endpoint"),
    "endpoint unclosed ipv6": ({"endpoint": "http://[::1:8000"}, "endpoint"),
    "endpoint bad bracketed host": ({"endpoint": "http://[v1.x]:8000"}, "endpoint"),
    "endpoint ftp": ({"endpoint": "ftp://localhost:8000"}, "endpoint"),
    "endpoint leading space": ({"endpoint": " http://localhost:8000"}, "endpoint"),
    "endpoint trailing newline": ({"endpoint": "http://localhost:8000\n"}, "endpoint"),
    "endpoint tab inside": ({"endpoint": "http://local\thost:8000"}, "endpoint"),
    "endpoint user-info": ({"endpoint": "http://user:pw@localhost:8000"}, "endpoint"),
    "endpoint query": ({"endpoint": "http://localhost:8000/?a=1"}, "endpoint"),
    "empty region": ({"region": ""}, "region"),
    "ttl zero": ({"ttl_days": 0}, "ttl_days"),
    "ttl negative": ({"ttl_days": -1}, "ttl_days"),
    "ttl bool": ({"ttl_days": True}, "ttl_days"),
    "ttl str": ({"ttl_days": "30"}, "ttl_days"),
    "credentials missing secret": ({"credentials": {"aws_access_key_id": "a"}}, "credentials"),
    "credentials unknown key": ({"credentials": {**GOOD, "password": "x"}}, "credentials"),
    "credentials wrong type": ({"credentials": "AKID:secret"}, "credentials"),
    "connection and region": ({"connection": Connection(), "region": "eu-west-1"}, "connection"),
    "connection and endpoint": (
        {"connection": Connection(), "endpoint": "http://localhost:8000"},
        "connection",
    ),
    "connection wrong type": ({"connection": object()}, "connection"),
    "models bad class": ({"models": {"PaymentSaga": dict}}, "models['PaymentSaga']"),
    "models empty name": ({"models": {"": PaymentSaga}}, "models key"),
}


@pytest.mark.parametrize(("options", "field"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_configuration_is_refused_at_construction(options: dict[str, Any], field: str) -> None:
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(OrderSaga, **options)
    assert caught.value.field == field


def test_model_must_be_a_saga_model() -> None:
    with pytest.raises(SagaValidationError, match="SagaModel subclass"):
        DynamoDBSagaStore(dict)  # type: ignore[type-var]


def test_construction_sends_nothing_and_creates_no_client() -> None:
    store = DynamoDBSagaStore(OrderSaga, credentials=GOOD, endpoint="http://127.0.0.1:1")
    assert store.connection._client is None


def test_options_override_the_model_meta() -> None:
    store = DynamoDBSagaStore(
        OrderSaga, table_name="orders", region="eu-west-1", endpoint="http://localhost:8000"
    )
    assert (store.table_name, store.region, store.endpoint) == (
        "orders",
        "eu-west-1",
        "http://localhost:8000",
    )
    default = DynamoDBSagaStore(OrderSaga)
    assert (default.table_name, default.region, default.endpoint) == ("sagas", "us-east-1", None)


def test_models_mapping_chooses_the_class_per_saga_name() -> None:
    store = DynamoDBSagaStore(OrderSaga, models={"PaymentSaga": PaymentSaga})
    assert store.model_for("PaymentSaga") is PaymentSaga
    assert store.model_for("OrderSaga") is OrderSaga
    assert store.model_for("Anything") is OrderSaga


def test_no_credential_in_repr_or_errors() -> None:
    store = DynamoDBSagaStore(OrderSaga, credentials={**GOOD, "aws_session_token": "TOKEN-xyz"})
    assert SECRET not in repr(store)
    assert SECRET not in repr(store.connection)
    assert "TOKEN-xyz" not in repr(store)
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(
            OrderSaga, credentials={"aws_access_key_id": 5, "aws_secret_access_key": SECRET}
        )
    assert SECRET not in str(caught.value)
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(OrderSaga, credentials={"aws_secret_access_key": SECRET})
    assert SECRET not in str(caught.value)


def test_missing_table_is_named(backend: Backend) -> None:
    store = backend.store(table_name="no-such-table", credentials=GOOD)
    with pytest.raises(TableNotFoundError) as caught:
        store.get_by_id("OrderSaga", "x")
    assert "no-such-table" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is not None


@pytest.mark.ddblocal
def test_credentials_object_signs_the_requests(dynamodb_local_endpoint: str) -> None:
    """DynamoDB Local keeps tables per access key: the store's key is the one used."""

    def refresh() -> dict[str, str]:
        return {
            "access_key": "AKIDREFRESHED",
            "secret_key": SECRET,
            "token": "",
            "expiry_time": "2099-01-01T00:00:00Z",
        }

    refreshable = RefreshableCredentials.create_from_metadata(
        refresh(), refresh_using=refresh, method="test"
    )
    static = Credentials("AKIDSTATIC", SECRET)
    by_key = {}
    for name, credentials in (("refreshable", refreshable), ("static", static)):
        store = DynamoDBSagaStore(
            OrderSaga,
            table_name=f"creds-{name}",
            endpoint=dynamodb_local_endpoint,
            credentials=credentials,
        )
        create_table(store)
        by_key[name] = store
    import boto3

    def tables_of(key: str) -> list[str]:
        client = boto3.client(
            "dynamodb",
            endpoint_url=dynamodb_local_endpoint,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=SECRET,
        )
        names: list[str] = client.list_tables()["TableNames"]
        return names

    try:
        assert "creds-refreshable" in tables_of("AKIDREFRESHED")
        assert "creds-refreshable" not in tables_of("AKIDSTATIC")
        assert "creds-static" in tables_of("AKIDSTATIC")
    finally:
        for store in by_key.values():
            store.connection.delete_table(store.table_name)


def test_an_existing_connection_is_reused(backend: Backend, make_store: Any) -> None:
    first = make_store()
    second = DynamoDBSagaStore(OrderSaga, table_name=first.table_name, connection=first.connection)
    state = OrderSaga()
    second.insert("OrderSaga", "c", state)
    assert first.get_by_id("OrderSaga", state.saga_id) == state
    second.close()  # a borrowed connection is not closed
    assert first.connection._client is not None
    assert first.get_by_id("OrderSaga", state.saga_id) == state


def test_context_manager_closes_its_own_connection(make_store: Any) -> None:
    store = make_store()
    with store:
        store.get_by_id("OrderSaga", "x")
        assert store.connection._client is not None
    assert store.connection._client is None


def test_a_missing_region_is_refused_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(SagaModel)
    assert caught.value.field == "region"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert DynamoDBSagaStore(SagaModel).region == "eu-central-1"


class _ShopOrder(SagaModel):
    class Meta:
        table_name = "shop-sagas"
        region = "eu-west-1"


class _ShopRefund(SagaModel):
    class Meta:
        table_name = "shop-sagas"
        region = "eu-west-1"


class _AuditSaga(SagaModel):
    class Meta:
        table_name = "audit-sagas"
        region = "eu-west-1"


def test_with_only_models_their_meta_gives_table_and_region() -> None:
    store = DynamoDBSagaStore(models={"Order": _ShopOrder, "Refund": _ShopRefund})
    assert (store.table_name, store.region) == ("shop-sagas", "eu-west-1")


@pytest.mark.parametrize(
    "options",
    [
        {"models": {"Order": _ShopOrder, "Audit": _AuditSaga}},
        {"model": _ShopOrder, "models": {"Audit": _AuditSaga}},
    ],
)
def test_models_naming_another_table_are_refused(options: dict[str, Any]) -> None:
    # Otherwise one of them would be written to a table its Meta does not name.
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(**options)
    assert caught.value.field == "models"
    assert "'audit-sagas'" in str(caught.value)
    assert "'shop-sagas'" in str(caught.value)
    chosen = DynamoDBSagaStore(**options, table_name="shop-sagas")
    assert chosen.table_name == "shop-sagas"


def test_models_naming_another_region_are_refused() -> None:
    class Elsewhere(SagaModel):
        class Meta:
            table_name = "shop-sagas"
            region = "us-west-2"

    with pytest.raises(SagaValidationError, match="region is 'us-west-2'"):
        DynamoDBSagaStore(_ShopOrder, models={"Elsewhere": Elsewhere})
    assert DynamoDBSagaStore(_ShopOrder, models={"Elsewhere": Elsewhere}, region="eu-west-1")


def test_models_given_as_a_list_are_refused_by_name() -> None:
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(models=[_ShopOrder])  # type: ignore[arg-type]
    assert caught.value.field == "models"
    assert "mapping" in str(caught.value)


def test_saga_model_defaults() -> None:
    assert SagaModel.Meta.table_name == "sagas"
    assert OrderSaga.Meta.billing_mode == "PAY_PER_REQUEST"


# -- Meta credentials (the model's own keys sign the store's requests) ---------------------


def meta_model(
    key_id: str | None = "AKIDMETA",
    secret: str | None = SECRET,
    token: str | None = None,
    host: str | None = None,
) -> type[OrderSaga]:
    """An ``OrderSaga`` subclass whose ``Meta`` carries these keys and host."""
    meta = type(
        "Meta",
        (),
        {
            "table_name": "sagas",
            "region": REGION,
            "host": host,
            "aws_access_key_id": key_id,
            "aws_secret_access_key": secret,
            "aws_session_token": token,
        },
    )
    return type("MetaKeysSaga", (OrderSaga,), {"Meta": meta, "__module__": __name__})


def signing_credentials(store: DynamoDBSagaStore[Any]) -> Any:
    """The frozen credentials the store's botocore client signs with (builds no request)."""
    return store.connection.client._request_signer._credentials.get_frozen_credentials()


@pytest.fixture
def env_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    """Environment credentials with a fresh key id, which must NOT sign the requests."""
    key_id = f"AKIDENV{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return key_id


def test_meta_credentials_sign_instead_of_the_environment(env_credentials: str) -> None:
    store = DynamoDBSagaStore(meta_model(token="META-TOKEN"))
    signed = signing_credentials(store)
    assert (signed.access_key, signed.secret_key, signed.token) == (
        "AKIDMETA",
        SECRET,
        "META-TOKEN",
    )
    assert SECRET not in repr(store)
    assert "META-TOKEN" not in repr(store)


def test_credentials_option_beats_meta_credentials(env_credentials: str) -> None:
    store = DynamoDBSagaStore(meta_model(token="META-TOKEN"), credentials=GOOD)
    signed = signing_credentials(store)
    assert (signed.access_key, signed.token) == ("AKIDEXAMPLE", None)


def test_without_any_keys_the_default_chain_signs(env_credentials: str) -> None:
    store = DynamoDBSagaStore(meta_model(key_id=None, secret=None))
    assert signing_credentials(store).access_key == env_credentials


INCOMPLETE_META = {
    "key id only": {"secret": None},
    "secret only": {"key_id": None},
    "empty key id": {"key_id": ""},
    "token only": {"key_id": None, "secret": None, "token": "META-TOKEN"},
    "key id and token": {"secret": None, "token": "META-TOKEN"},
}


@pytest.mark.parametrize("keys", INCOMPLETE_META.values(), ids=INCOMPLETE_META.keys())
def test_incomplete_meta_credentials_are_refused(keys: dict[str, Any]) -> None:
    """PynamoDB would silently sign with the default chain, i.e. maybe another account."""
    model = meta_model(**keys)
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(model)
    assert caught.value.field == "credentials"
    assert "MetaKeysSaga.Meta" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert "META-TOKEN" not in str(caught.value)
    # An explicit credentials option makes the Meta keys irrelevant.
    assert signing_credentials(DynamoDBSagaStore(model, credentials=GOOD)).access_key == (
        "AKIDEXAMPLE"
    )


def test_non_str_meta_credentials_are_refused_without_the_value() -> None:
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(meta_model(key_id=12345678))  # type: ignore[arg-type]
    assert caught.value.field == "credentials"
    assert "aws_access_key_id" in str(caught.value)
    assert "12345678" not in str(caught.value)


def test_meta_session_token_is_sent(
    backend: Backend, env_credentials: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_id = f"AKIDMETA{uuid.uuid4().hex[:8]}"
    store = DynamoDBSagaStore(
        meta_model(key_id=key_id, token="META-TOKEN"),
        table_name=f"sagas-{uuid.uuid4().hex[:12]}",
        endpoint=backend.endpoint,
        transport=backend.transport,  # type: ignore[arg-type]
    )
    create_table(store)
    headers: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        headers.append(
            {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        )

    # What botocore sends, and what the store's own transport signs.
    store.connection.client.meta.events.register_first("before-send.dynamodb.*", record)
    sign = SigV4Signer.sign

    def signed(self: SigV4Signer, *args: Any, **kwargs: Any) -> dict[str, str]:
        result = sign(self, *args, **kwargs)
        headers.append(dict(result))
        return result

    monkeypatch.setattr(SigV4Signer, "sign", signed)
    try:
        assert store.get_by_id("OrderSaga", "x") is None
        assert headers[-1]["X-Amz-Security-Token"] == "META-TOKEN"
        assert f"Credential={key_id}/" in headers[-1]["Authorization"]
    finally:
        store.connection.delete_table(store.table_name)


@pytest.mark.ddblocal
def test_meta_credentials_pick_the_account_on_dynamodb_local(
    dynamodb_local_endpoint: str, env_credentials: str
) -> None:
    """DynamoDB Local keeps tables per key id: the store sees Meta's tables, not env's."""
    meta_key = f"AKIDMETA{uuid.uuid4().hex[:8]}"
    owners = {
        "meta-table": DynamoDBSagaStore(
            OrderSaga,
            table_name="meta-table",
            endpoint=dynamodb_local_endpoint,
            credentials={"aws_access_key_id": meta_key, "aws_secret_access_key": SECRET},
        ),
        "env-table": DynamoDBSagaStore(  # signs with the environment's key
            OrderSaga, table_name="env-table", endpoint=dynamodb_local_endpoint
        ),
    }
    for owner in owners.values():
        create_table(owner)
    model = meta_model(key_id=meta_key, token="META-TOKEN", host=dynamodb_local_endpoint)
    try:
        store = DynamoDBSagaStore(model, table_name="meta-table")
        state = model()
        store.insert("OrderSaga", "c-1", state)
        found = owners["meta-table"].get_by_id("OrderSaga", state.saga_id)
        assert found is not None
        assert found.correlation_id == "c-1"
        with pytest.raises(TableNotFoundError):
            DynamoDBSagaStore(model, table_name="env-table").get_by_id("OrderSaga", "x")
    finally:
        for owner in owners.values():
            owner.connection.delete_table(owner.table_name)


# -- endpoints ------------------------------------------------------------------------------

PASSWORD = "s3cr3t-pw"


@pytest.mark.parametrize(
    "endpoint",
    [
        f"http://user:{PASSWORD}@localhost:8000",
        f"https://:{PASSWORD}@dynamodb.us-east-1.amazonaws.com",
        f"http://user:{PASSWORD}@local host:8000",
        f"user:{PASSWORD}@localhost:8000",
        f"http://u:pa://{PASSWORD}@localhost:8000",
        f"http://localhost:8000/{PASSWORD}@x",
    ],
)
def test_endpoint_user_info_is_refused_and_never_shown(endpoint: str) -> None:
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(OrderSaga, endpoint=endpoint)
    assert caught.value.field == "endpoint"
    assert "***@" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


def test_a_passed_connection_with_user_info_is_refused() -> None:
    connection = Connection(host=f"http://user:{PASSWORD}@localhost:8000")
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(OrderSaga, connection=connection)
    assert caught.value.field == "connection"
    assert PASSWORD not in str(caught.value)


@pytest.mark.parametrize(
    "host", ["http://localhost:abc", "http://localhost:99999", f"http://u:{PASSWORD}@localhost"]
)
def test_a_malformed_meta_host_is_refused(host: str) -> None:
    with pytest.raises(SagaValidationError) as caught:
        DynamoDBSagaStore(meta_model(key_id=None, secret=None, host=host))
    assert caught.value.field == "endpoint"
    assert "MetaKeysSaga.Meta.host" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    # An explicit endpoint replaces Meta.host, which is then not checked.
    model = meta_model(key_id=None, secret=None, host=host)
    assert DynamoDBSagaStore(model, endpoint="http://localhost:8000").endpoint == (
        "http://localhost:8000"
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://localhost:8000",
        "https://dynamodb.eu-west-1.amazonaws.com",
        "http://127.0.0.1:8000/",
        "http://[::1]:8000",
        "http://localhost:4566/prefix",
        "HTTP://LOCALHOST:8000",
    ],
)
def test_valid_endpoints_are_accepted(endpoint: str) -> None:
    assert DynamoDBSagaStore(OrderSaga, endpoint=endpoint).endpoint == endpoint


_URL_PARTS = st.tuples(
    st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "", "http:", "http:///"]),
    st.sampled_from(["", "user@", f"user:{PASSWORD}@", f":{PASSWORD}@"]),
    st.sampled_from(
        [
            *("localhost", "127.0.0.1", "[::1]", "[::1", "[v1.x]", "my_host", "local host"),
            *("", "x..y", "-bad", "a" * 64, "xn--bcher-kva.example", "ex%41mple", "host."),
        ]
    )
    | st.text(max_size=10),
    st.sampled_from(["", ":", ":0", ":1", ":65535", ":65536", ":abc", ":-1", ":+1", ": 1"])
    | st.text(alphabet="0123456789:+- ", max_size=7).map(":".__add__),
    st.sampled_from(["", "/", "/prefix", "/?x=1", "#f", "/a b", "\n", "/%zz"])
    | st.text(max_size=8),
)
_ENDPOINTS = _URL_PARTS.map("".join) | st.text(max_size=30)


@settings(max_examples=150, deadline=None)
@given(endpoint=_ENDPOINTS)
def test_an_endpoint_is_refused_at_construction_or_works(endpoint: str) -> None:
    """Never a raw ValueError at the first call, never the password in a message."""
    refused: SagaValidationError | None = None
    try:
        store = DynamoDBSagaStore(
            OrderSaga, endpoint=endpoint, credentials=GOOD, retry=RetryPolicy(max_attempts=1)
        )
    except SagaValidationError as exc:
        refused = exc
    if refused is not None:
        assert refused.field == "endpoint"
        assert PASSWORD not in str(refused)
        return
    assert PASSWORD not in repr(store)
    # No network: every connection attempt is refused, after all URL parsing has run.
    refuse = mock.patch(
        "urllib3.util.connection.create_connection",
        side_effect=ConnectionRefusedError("offline test"),
    )
    with refuse, store, pytest.raises(SagaStoreError) as caught:
        store.get_by_id("OrderSaga", "x")
    assert PASSWORD not in str(caught.value)


# -- one botocore client per store, shared by all threads -----------------------------------


@pytest.fixture
def client_creations(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every botocore client created from now on."""
    created: list[Any] = []
    original = botocore.session.Session.create_client

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        created.append(client)
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", counting)
    return created


def test_threads_share_one_client(make_store: Any, client_creations: list[Any]) -> None:
    threads = 8
    store = make_store(max_pool_connections=threads)
    store.close()  # forget the client create_table used: the threads' first call makes one
    client_creations.clear()
    barrier = threading.Barrier(threads)
    used: list[Any] = []
    errors: list[BaseException] = []

    def first_call(i: int) -> None:
        try:
            barrier.wait()
            state = OrderSaga()
            store.insert("OrderSaga", f"c-{i}", state)
            assert store.get_by_id("OrderSaga", state.saga_id) == state
            used.append(store.connection.client)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=first_call, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert len(client_creations) == 1
    assert all(client is client_creations[0] for client in used)


def test_the_shared_client_keeps_the_store_configuration() -> None:
    store = DynamoDBSagaStore(
        OrderSaga,
        credentials=GOOD,
        connect_timeout_seconds=2.5,
        read_timeout_seconds=7,
        max_pool_connections=33,
    )
    config = store.connection.client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.max_pool_connections) == (
        2.5,
        7,
        33,
    )
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert signing_credentials(store).access_key == "AKIDEXAMPLE"


def test_close_makes_the_next_call_build_a_new_client(
    make_store: Any, client_creations: list[Any]
) -> None:
    store = make_store()
    first = store.connection.client
    store.close()
    assert store.get_by_id("OrderSaga", "x") is None
    assert store.connection.client is not first
    assert store.connection.client is client_creations[-1]


def test_a_client_without_credentials_is_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    """As PynamoDB does: a client botocore built without credentials is not kept."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    store = DynamoDBSagaStore(OrderSaga)
    without = store.connection.client
    assert without._request_signer._credentials is None
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLATER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    rebuilt = store.connection.client
    assert rebuilt is not without
    assert signing_credentials(store).access_key == "AKIDLATER"
    assert store.connection.client is rebuilt
