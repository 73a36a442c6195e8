"""create_table: the seed's schema, idempotent, and loud about an incompatible table."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pynamodb.attributes import UnicodeAttribute
from pynamodb.indexes import AllProjection, LocalSecondaryIndex

from saga_store_pynamo import (
    IncompatibleTableError,
    SagaModel,
    SagaStoreRequestError,
    SagaValidationError,
    create_table,
)
from saga_store_pynamo.table import _ensure_ttl, table_definition
from tests.conftest import CREDENTIALS, REGION, Backend, RequestRecorder
from tests.models import OrderSaga

# The seed's CloudFormation "Properties", verbatim (as the CreateTable API takes them).
SEED_CLOUDFORMATION: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": "sagaName", "AttributeType": "S"},
        {"AttributeName": "sagaId", "AttributeType": "S"},
        {"AttributeName": "correlationId", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "sagaName", "KeyType": "HASH"},
        {"AttributeName": "sagaId", "KeyType": "RANGE"},
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": "correlationIndex",
            "KeySchema": [
                {"AttributeName": "sagaName", "KeyType": "HASH"},
                {"AttributeName": "correlationId", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
}
SEED_TTL = {"AttributeName": "ttl", "Enabled": True}


def table_name() -> str:
    return f"sagas-{uuid.uuid4().hex[:12]}"


def schema_of(client: Any, name: str) -> dict[str, Any]:
    """The parts of DescribeTable / DescribeTimeToLive that the contract fixes."""
    table = client.describe_table(TableName=name)["Table"]
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    return {
        "keys": sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]),
        "attributes": sorted(
            (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
        ),
        "indexes": sorted(
            (
                i["IndexName"],
                tuple(sorted((k["AttributeName"], k["KeyType"]) for k in i["KeySchema"])),
                i["Projection"]["ProjectionType"],
            )
            for i in table.get("GlobalSecondaryIndexes", [])
        ),
        "billing": table.get("BillingModeSummary", {}).get("BillingMode"),
        "ttl": (ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")),
    }


SEED_SCHEMA = {
    "keys": [("sagaId", "RANGE"), ("sagaName", "HASH")],
    "attributes": [("correlationId", "S"), ("sagaId", "S"), ("sagaName", "S")],
    "indexes": [("correlationIndex", (("correlationId", "RANGE"), ("sagaName", "HASH")), "ALL")],
    "billing": "PAY_PER_REQUEST",
    "ttl": ("ENABLED", "ttl"),
}


def test_created_table_matches_the_seed(
    make_store: Any, backend: Backend, recorder: RequestRecorder
) -> None:
    store = make_store(create=False)
    assert create_table(store) is True
    assert schema_of(backend.client(), store.table_name) == SEED_SCHEMA


def test_create_table_is_a_no_op_on_a_compatible_table(make_store: Any) -> None:
    store = make_store(create=False)
    assert create_table(store) is True
    sent: list[str] = []
    store.connection.client.meta.events.register(
        "before-parameter-build.dynamodb", lambda model, **_: sent.append(model.name)
    )
    assert create_table(store) is False
    assert sent == ["DescribeTable", "DescribeTimeToLive"]


def test_a_table_made_from_the_seed_cloudformation_works(make_store: Any, backend: Backend) -> None:
    client = backend.client()
    name = table_name()
    client.create_table(TableName=name, **SEED_CLOUDFORMATION)
    client.update_time_to_live(TableName=name, TimeToLiveSpecification=SEED_TTL)
    store = make_store(table_name=name, create=False, ttl_days=7)
    try:
        assert create_table(store) is False
        state = OrderSaga(total_cents=3)
        store.insert("OrderSaga", "order-9", state)
        state.is_completed = True
        store.update("OrderSaga", state, 0)
        assert store.get_by_correlation_id("OrderSaga", "order-9") == state
        assert schema_of(client, name) == SEED_SCHEMA
    finally:
        client.delete_table(TableName=name)


def test_pynamodb_create_table_yields_the_same_schema(make_store: Any, backend: Backend) -> None:
    name = table_name()

    class Meta:
        table_name = name
        region = REGION
        host = backend.endpoint
        aws_access_key_id = CREDENTIALS["aws_access_key_id"]
        aws_secret_access_key = CREDENTIALS["aws_secret_access_key"]

    model: Any = type("PynamoOrderSaga", (OrderSaga,), {"Meta": Meta})
    model.create_table(wait=True)
    try:
        assert schema_of(backend.client(), name) == SEED_SCHEMA
        # And ours accepts it as it is.
        assert create_table(model) is False
    finally:
        backend.client().delete_table(TableName=name)


def test_create_table_from_a_model_uses_its_meta(backend: Backend) -> None:
    name = table_name()

    class Meta:
        table_name = name
        region = REGION
        host = backend.endpoint
        aws_access_key_id = CREDENTIALS["aws_access_key_id"]
        aws_secret_access_key = CREDENTIALS["aws_secret_access_key"]

    model: Any = type("MetaOrderSaga", (OrderSaga,), {"Meta": Meta})
    try:
        assert create_table(model) is True
        assert schema_of(backend.client(), name) == SEED_SCHEMA
    finally:
        backend.client().delete_table(TableName=name)


def test_ttl_is_switched_on_for_an_existing_table_without_it(
    make_store: Any, backend: Backend
) -> None:
    client = backend.client()
    name = table_name()
    client.create_table(TableName=name, **SEED_CLOUDFORMATION)
    store = make_store(table_name=name, create=False)
    try:
        assert create_table(store) is False
        assert schema_of(client, name)["ttl"] == ("ENABLED", "ttl")
    finally:
        client.delete_table(TableName=name)


INCOMPATIBLE = {
    "missing index": (
        {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": SEED_CLOUDFORMATION["AttributeDefinitions"][:2],
            "KeySchema": SEED_CLOUDFORMATION["KeySchema"],
        },
        "global secondary index 'correlationIndex' is missing",
    ),
    "keys only projection": (
        {
            **SEED_CLOUDFORMATION,
            "GlobalSecondaryIndexes": [
                {
                    **SEED_CLOUDFORMATION["GlobalSecondaryIndexes"][0],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
        },
        "projects KEYS_ONLY, the model needs ALL",
    ),
    "other keys": (
        {
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        },
        "key schema is {'HASH': 'pk'}",
    ),
    "numeric sort key": (
        {
            **SEED_CLOUDFORMATION,
            "AttributeDefinitions": [
                {"AttributeName": "sagaName", "AttributeType": "S"},
                {"AttributeName": "sagaId", "AttributeType": "N"},
                {"AttributeName": "correlationId", "AttributeType": "S"},
            ],
        },
        "attribute 'sagaId' has type N, the model needs S",
    ),
}


@pytest.mark.parametrize(
    ("definition", "difference"), INCOMPATIBLE.values(), ids=INCOMPATIBLE.keys()
)
def test_incompatible_table_is_named(
    make_store: Any, backend: Backend, definition: dict[str, Any], difference: str
) -> None:
    client = backend.client()
    name = table_name()
    client.create_table(TableName=name, **definition)
    store = make_store(table_name=name, create=False)
    try:
        with pytest.raises(IncompatibleTableError) as caught:
            create_table(store)
        assert difference in str(caught.value)
        assert name in str(caught.value)
    finally:
        client.delete_table(TableName=name)


def test_ttl_on_another_attribute_is_incompatible(make_store: Any, backend: Backend) -> None:
    client = backend.client()
    name = table_name()
    client.create_table(TableName=name, **SEED_CLOUDFORMATION)
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True}
    )
    store = make_store(table_name=name, create=False)
    try:
        with pytest.raises(IncompatibleTableError, match="TTL is enabled on 'expiresAt'"):
            create_table(store)
    finally:
        client.delete_table(TableName=name)


def test_stream_option(make_store: Any, backend: Backend) -> None:
    store = make_store(create=False)
    create_table(store, stream_view_type="NEW_AND_OLD_IMAGES")
    table = backend.client().describe_table(TableName=store.table_name)["Table"]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }


def test_point_in_time_recovery_option(make_store: Any, backend: Backend) -> None:
    store = make_store(create=False)
    if backend.name != "moto":
        # DynamoDB Local has no backups: the table is made, and the refusal is reported.
        with pytest.raises(SagaStoreRequestError) as caught:
            create_table(store, point_in_time_recovery=True)
        assert caught.value.operation == "UpdateContinuousBackups"
        assert caught.value.code == "UnknownOperationException"
        assert schema_of(backend.client(), store.table_name) == SEED_SCHEMA
        return
    create_table(store, point_in_time_recovery=True)
    backups = backend.client().describe_continuous_backups(TableName=store.table_name)
    description = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert description["PointInTimeRecoveryStatus"] == "ENABLED"


def test_table_definition_is_the_seed_cloudformation() -> None:
    definition = table_definition(SagaModel, table_name="sagas")
    attributes = definition.pop("AttributeDefinitions")
    seed = {"TableName": "sagas", **SEED_CLOUDFORMATION}
    seed_attributes = seed.pop("AttributeDefinitions")
    assert definition == seed
    assert sorted(attributes, key=str) == sorted(seed_attributes, key=str)


def test_provisioned_billing_needs_capacity() -> None:
    with pytest.raises(SagaValidationError, match="read_capacity_units"):
        table_definition(SagaModel, billing_mode="PROVISIONED")
    definition = table_definition(
        SagaModel, billing_mode="PROVISIONED", read_capacity_units=5, write_capacity_units=5
    )
    assert definition["ProvisionedThroughput"] == {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    assert definition["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 5,
        "WriteCapacityUnits": 5,
    }


# -- concurrent callers ---------------------------------------------------------------------


def test_concurrent_create_table_calls_all_succeed(make_store: Any, backend: Backend) -> None:
    """Several processes starting at once on a fresh table: all succeed, one creates it."""
    callers = 10
    name = table_name()
    stores = [make_store(table_name=name, create=False) for _ in range(callers)]
    barrier = threading.Barrier(callers)

    def call(store: Any) -> bool:
        barrier.wait(timeout=60)
        return create_table(store)

    with ThreadPoolExecutor(max_workers=callers) as pool:
        futures = [pool.submit(call, store) for store in stores]
        results = [future.result(timeout=120) for future in futures]
    assert results.count(True) == 1
    assert schema_of(backend.client(), name) == SEED_SCHEMA


def test_table_created_by_another_caller_in_between(make_store: Any, backend: Backend) -> None:
    """CreateTable meets ResourceInUseException: the other caller's table is used."""
    client = backend.client()
    store = make_store(create=False)

    def other_caller_creates_it(**_: Any) -> None:
        client.create_table(TableName=store.table_name, **SEED_CLOUDFORMATION)

    store.connection.client.meta.events.register(
        "before-call.dynamodb.CreateTable", other_caller_creates_it
    )
    assert create_table(store) is False
    assert schema_of(client, store.table_name) == SEED_SCHEMA


@pytest.mark.parametrize("attribute", ["ttl", "expiresAt"])
def test_ttl_enabled_by_another_caller_in_between(
    make_store: Any, backend: Backend, attribute: str
) -> None:
    """Another caller enables TTL after this one read it as disabled (DynamoDB then refuses
    the second UpdateTimeToLive): the same attribute is success, another is incompatible."""
    client = backend.client()
    store = make_store(create=False)
    enabled: list[str] = []

    def other_caller_enables_ttl(**_: Any) -> None:
        if not enabled:
            enabled.append(attribute)
            client.update_time_to_live(
                TableName=store.table_name,
                TimeToLiveSpecification={"AttributeName": attribute, "Enabled": True},
            )

    store.connection.client.meta.events.register(
        "after-call.dynamodb.DescribeTimeToLive", other_caller_enables_ttl
    )
    if attribute == "ttl" or backend.name == "moto":
        # moto accepts a second UpdateTimeToLive and moves TTL to ``ttl``; DynamoDB refuses.
        assert create_table(store) is True
        assert schema_of(client, store.table_name) == SEED_SCHEMA
    else:
        with pytest.raises(IncompatibleTableError, match="TTL is enabled on 'expiresAt'"):
            create_table(store)
    assert enabled == [attribute]


class ScriptedSend:
    """Stands in for create_table's ``send``: answers from a script, records the calls."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[str] = []

    def __call__(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        self.sent.append(operation)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ttl_status(status: str, attribute: str | None = None) -> dict[str, Any]:
    description: dict[str, Any] = {"TimeToLiveStatus": status}
    if attribute is not None:
        description["AttributeName"] = attribute
    return {"TimeToLiveDescription": description}


ALREADY_ENABLED = SagaValidationError(
    "request", "DynamoDB refused UpdateTimeToLive: TimeToLive is already enabled"
)


@pytest.mark.parametrize("status", ["ENABLED", "ENABLING"])
def test_ttl_already_enabled_on_the_same_attribute_is_success(status: str) -> None:
    send = ScriptedSend(ttl_status("DISABLED"), ALREADY_ENABLED, ttl_status(status, "ttl"))
    _ensure_ttl(send, "sagas", "ttl")
    assert send.sent == ["DescribeTimeToLive", "UpdateTimeToLive", "DescribeTimeToLive"]


def test_ttl_already_enabled_on_another_attribute_is_incompatible() -> None:
    send = ScriptedSend(ttl_status("DISABLED"), ALREADY_ENABLED, ttl_status("ENABLED", "exp"))
    with pytest.raises(IncompatibleTableError) as caught:
        _ensure_ttl(send, "sagas", "ttl")
    assert caught.value.differences == ["TTL is enabled on 'exp', the model needs 'ttl'"]
    assert caught.value.__cause__ is ALREADY_ENABLED


def test_a_ttl_refusal_that_enabled_nothing_is_raised() -> None:
    refused = SagaStoreRequestError("UpdateTimeToLive", "LimitExceededException", "too often")
    send = ScriptedSend(ttl_status("DISABLED"), refused, ttl_status("DISABLED"))
    with pytest.raises(SagaStoreRequestError) as caught:
        _ensure_ttl(send, "sagas", "ttl")
    assert caught.value is refused


# -- local secondary indexes are refused ----------------------------------------------------


class StatusIndex(LocalSecondaryIndex["LsiSaga"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "statusIndex"
        projection = AllProjection()

    saga_name = UnicodeAttribute(hash_key=True, attr_name="sagaName")
    status = UnicodeAttribute(range_key=True)


class LsiSaga(OrderSaga):
    """A saga model that declares a LocalSecondaryIndex, which the saga table cannot have."""

    status_index = StatusIndex()


def assert_lsi_refused(caught: pytest.ExceptionInfo[SagaValidationError]) -> None:
    assert caught.value.field == "model"
    message = str(caught.value)
    for part in ("LsiSaga", "'statusIndex'", "10 GB", "existing table", "GlobalSecondaryIndex"):
        assert part in message, message


def test_table_definition_refuses_a_local_secondary_index() -> None:
    with pytest.raises(SagaValidationError) as caught:
        table_definition(LsiSaga)
    assert_lsi_refused(caught)


@pytest.mark.parametrize("target", ["store", "model"])
def test_create_table_refuses_a_local_secondary_index_before_any_request(
    make_store: Any, backend: Backend, recorder: RequestRecorder, target: str
) -> None:
    store = make_store(LsiSaga, create=False)
    if target == "store":
        argument: Any = store
    else:

        class Meta:
            table_name = store.table_name
            region = REGION
            host = backend.endpoint
            aws_access_key_id = CREDENTIALS["aws_access_key_id"]
            aws_secret_access_key = CREDENTIALS["aws_secret_access_key"]

        argument = type("MetaLsiSaga", (LsiSaga,), {"Meta": Meta})
    with pytest.raises(SagaValidationError) as caught:
        create_table(argument)
    assert_lsi_refused(caught)
    assert recorder.requests == []
    with pytest.raises(backend.client().exceptions.ResourceNotFoundException):
        backend.client().describe_table(TableName=store.table_name)
