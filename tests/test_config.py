"""Store construction: validated up front, sends nothing, never shows a credential."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.credentials import Credentials, RefreshableCredentials
from pynamodb.connection import Connection

from saga_store_pynamo import (
    DynamoDBSagaStore,
    SagaModel,
    SagaValidationError,
    TableNotFoundError,
    create_table,
)
from tests.conftest import Backend
from tests.models import OrderSaga, PaymentSaga

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
GOOD = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": SECRET}

BAD_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "short table name": ({"table_name": "ab"}, "table_name"),
    "bad table chars": ({"table_name": "sagas table"}, "table_name"),
    "endpoint without scheme": ({"endpoint": "localhost:8000"}, "endpoint"),
    "endpoint not str": ({"endpoint": 8000}, "endpoint"),
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


def test_saga_model_defaults() -> None:
    assert SagaModel.Meta.table_name == "sagas"
    assert OrderSaga.Meta.billing_mode == "PAY_PER_REQUEST"
