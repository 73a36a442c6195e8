"""Creating (or checking) the table from the model's own schema."""

from __future__ import annotations

import time
from typing import Any, Literal

from pynamodb.connection import Connection

from ._dispatch import DEFAULT_POLICY, dispatch
from .errors import (
    IncompatibleTableError,
    SagaStoreRequestError,
    SagaValidationError,
    TableNotFoundError,
)
from .models import SagaModel
from .store import DynamoDBSagaStore

__all__ = ["StreamViewType", "create_table", "table_definition"]

StreamViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
_STREAM_VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")
_BILLING_MODES = ("PAY_PER_REQUEST", "PROVISIONED")


def table_definition(
    model: type[SagaModel] = SagaModel,
    *,
    table_name: str | None = None,
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST",
    read_capacity_units: int | None = None,
    write_capacity_units: int | None = None,
    stream_view_type: StreamViewType | None = None,
) -> dict[str, Any]:
    """The DynamoDB ``CreateTable`` request for ``model``'s table (keys, indexes, billing).

    TTL and point-in-time recovery are separate API calls, made by ``create_table()``.
    ``create_table()`` and the CloudFormation and Terraform generators all build on it.

    :raises SagaValidationError: on an invalid option, or a model that declares a
        ``LocalSecondaryIndex`` (``field`` is ``"model"``).
    """
    _check_no_local_indexes(model)
    if billing_mode not in _BILLING_MODES:
        raise SagaValidationError("billing_mode", f"must be one of {_BILLING_MODES}")
    if stream_view_type is not None and stream_view_type not in _STREAM_VIEW_TYPES:
        raise SagaValidationError("stream_view_type", f"must be one of {_STREAM_VIEW_TYPES}")
    provisioned = billing_mode == "PROVISIONED"
    for field, units in (
        ("read_capacity_units", read_capacity_units),
        ("write_capacity_units", write_capacity_units),
    ):
        if provisioned and (type(units) is not int or units < 1):
            raise SagaValidationError(
                field, f"PROVISIONED billing needs an int >= 1, got {units!r}"
            )
    if not provisioned and (read_capacity_units is not None or write_capacity_units is not None):
        raise SagaValidationError(
            "billing_mode", "capacity units are only meaningful with PROVISIONED billing"
        )
    throughput = {
        "ReadCapacityUnits": read_capacity_units,
        "WriteCapacityUnits": write_capacity_units,
    }
    schema = model._get_schema()
    request: dict[str, Any] = {
        "TableName": table_name or model.Meta.table_name,
        "AttributeDefinitions": [dict(a) for a in schema["attribute_definitions"]],
        "KeySchema": sorted((dict(k) for k in schema["key_schema"]), key=lambda k: k["KeyType"]),
        "BillingMode": billing_mode,
    }
    if provisioned:
        request["ProvisionedThroughput"] = throughput
    indexes = []
    for index in schema["global_secondary_indexes"]:
        definition = {
            "IndexName": index["index_name"],
            "KeySchema": sorted((dict(k) for k in index["key_schema"]), key=lambda k: k["KeyType"]),
            "Projection": dict(index["projection"]),
        }
        if provisioned:
            definition["ProvisionedThroughput"] = throughput
        indexes.append(definition)
    if indexes:
        request["GlobalSecondaryIndexes"] = indexes
    if stream_view_type is not None:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream_view_type}
    return request


def _check_no_local_indexes(model: type[SagaModel]) -> None:
    """Refuse a model that declares a ``LocalSecondaryIndex``: the saga table has none.

    :raises SagaValidationError: naming the model and the index (``field`` is ``"model"``).
    """
    local = model._get_schema().get("local_secondary_indexes") or []
    if local:
        names = ", ".join(repr(index["index_name"]) for index in local)
        plural = "es" if len(local) > 1 else ""
        hash_key = model._hash_key_attribute().attr_name  # type: ignore[no-untyped-call]
        raise SagaValidationError(
            "model",
            f"{model.__name__} declares the LocalSecondaryIndex{plural} {names}, which the "
            f"saga table cannot have: with {hash_key!r} as partition key, an LSI caps each saga "
            "type (all items of one partition key value) at 10 GB, and an LSI cannot be added "
            "to an existing table; declare a GlobalSecondaryIndex instead",
        )


def create_table(
    target: DynamoDBSagaStore[Any] | type[SagaModel],
    *,
    wait: bool = True,
    billing_mode: Literal["PAY_PER_REQUEST", "PROVISIONED"] = "PAY_PER_REQUEST",
    read_capacity_units: int | None = None,
    write_capacity_units: int | None = None,
    stream_view_type: StreamViewType | None = None,
    point_in_time_recovery: bool = False,
    timeout_seconds: float = 300.0,
) -> bool:
    """Create the saga table for a store (or a model), or check that the existing one fits.

    The table gets ``sagaName``/``sagaId`` keys, the ``correlationIndex`` GSI (projection
    ALL) and TTL on ``ttl``, as in the seed's CloudFormation. An existing table with that
    layout is accepted as it is (TTL is switched on if it is off); its billing mode and
    streams are left alone, and point-in-time recovery is switched on when asked for.
    Several processes may call it on one table at once: all succeed, one returns True. Uses
    the control-plane actions ``DescribeTable``, ``CreateTable``, ``DescribeTimeToLive``,
    ``UpdateTimeToLive`` and, with ``point_in_time_recovery``, ``UpdateContinuousBackups``.

    :param target: a store (its connection, table name and model are used) or a model class
        (its ``Meta`` is used).
    :param wait: wait until the table is ACTIVE before returning. DynamoDB accepts TTL and
        backup settings only on an ACTIVE table: with ``wait=False`` on a table still being
        created they are skipped, and a later call (with ``wait=True``) applies them.
    :returns: True if the table was created, False if a compatible one existed.
    :raises SagaValidationError: on an invalid option or a model with a
        ``LocalSecondaryIndex``, before any request.
    :raises IncompatibleTableError: an existing table differs; the message names how.
    """
    policy = DEFAULT_POLICY
    if isinstance(target, DynamoDBSagaStore):
        policy = target.retry
        connection: Connection = target.connection
        table_name = target.table_name
        model: type[SagaModel] = target.model
    elif isinstance(target, type) and issubclass(target, SagaModel):
        model = target
        connection = model._get_connection().connection
        table_name = model.Meta.table_name
    else:
        raise SagaValidationError("target", "must be a DynamoDBSagaStore or a SagaModel class")
    request = table_definition(
        model,
        table_name=table_name,
        billing_mode=billing_mode,
        read_capacity_units=read_capacity_units,
        write_capacity_units=write_capacity_units,
        stream_view_type=stream_view_type,
    )

    def send(operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if isinstance(target, DynamoDBSagaStore):  # its transport and request observers
            return target._dispatch(operation, body)
        return dispatch(connection, table_name, operation, body, policy)

    created = False
    description = _describe(send, table_name)
    if description is None:
        try:
            description = send("CreateTable", request)["TableDescription"]
            created = True
        except SagaStoreRequestError as exc:
            # Another process created it between our DescribeTable and CreateTable.
            if exc.code != "ResourceInUseException":
                raise
            description = _describe(send, table_name)
            if description is None:
                raise
    differences = _differences(request, description)
    if differences:
        raise IncompatibleTableError(table_name, differences)
    if not _is_active(description):
        if not wait:
            return created  # TTL and backups need an ACTIVE table: a later call sets them
        _wait_active(send, table_name, timeout_seconds)
    ttl_attribute = model._ttl_attribute()  # type: ignore[no-untyped-call]
    if ttl_attribute is not None:
        _ensure_ttl(send, table_name, ttl_attribute.attr_name)
    if point_in_time_recovery:
        send(
            "UpdateContinuousBackups",
            {
                "TableName": table_name,
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            },
        )
    return created


def _describe(send: Any, table_name: str) -> dict[str, Any] | None:
    try:
        return send("DescribeTable", {"TableName": table_name})["Table"]  # type: ignore[no-any-return]
    except TableNotFoundError:
        return None


def _key_schema(keys: list[dict[str, str]]) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in keys}


def _differences(wanted: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """How an existing table (DescribeTable's ``Table``) differs from a CreateTable request."""
    found = []
    want_keys, have_keys = _key_schema(wanted["KeySchema"]), _key_schema(actual["KeySchema"])
    if want_keys != have_keys:
        found.append(f"key schema is {have_keys}, the model needs {want_keys}")
    have_types = {a["AttributeName"]: a["AttributeType"] for a in actual["AttributeDefinitions"]}
    for attribute in wanted["AttributeDefinitions"]:
        name, kind = attribute["AttributeName"], attribute["AttributeType"]
        if have_types.get(name, kind) != kind:
            found.append(f"attribute {name!r} has type {have_types[name]}, the model needs {kind}")
    have_indexes = {i["IndexName"]: i for i in actual.get("GlobalSecondaryIndexes") or []}
    for index in wanted.get("GlobalSecondaryIndexes", []):
        name = index["IndexName"]
        have = have_indexes.get(name)
        if have is None:
            found.append(f"global secondary index {name!r} is missing")
            continue
        want_keys, have_keys = _key_schema(index["KeySchema"]), _key_schema(have["KeySchema"])
        if want_keys != have_keys:
            found.append(f"index {name!r} has key schema {have_keys}, the model needs {want_keys}")
        want_projection = index["Projection"]["ProjectionType"]
        have_projection = have.get("Projection", {}).get("ProjectionType")
        if have_projection != want_projection:
            found.append(
                f"index {name!r} projects {have_projection}, the model needs {want_projection}"
            )
    return found


def _statuses(table: dict[str, Any]) -> list[str | None]:
    indexes = table.get("GlobalSecondaryIndexes") or []
    return [table.get("TableStatus"), *(i.get("IndexStatus") for i in indexes)]


def _is_active(table: dict[str, Any]) -> bool:
    return all(status in ("ACTIVE", None) for status in _statuses(table))


def _wait_active(send: Any, table_name: str, timeout_seconds: float) -> None:
    deadline = time.monotonic() + timeout_seconds
    while True:
        table = send("DescribeTable", {"TableName": table_name})["Table"]
        if _is_active(table):
            return
        if time.monotonic() > deadline:
            raise SagaStoreRequestError(
                "DescribeTable",
                None,
                f"table {table_name!r} not ACTIVE after {timeout_seconds:g} s: {_statuses(table)}",
            )
        time.sleep(1.0)


def _ensure_ttl(send: Any, table_name: str, attribute_name: str) -> None:
    """Enable TTL on ``attribute_name`` unless it is on already.

    Another caller may enable it between our DescribeTimeToLive and UpdateTimeToLive; DynamoDB
    then refuses ours ("TimeToLive is already enabled"). So a refused update is judged by a
    second DescribeTimeToLive: TTL on our attribute is success, on another one incompatible.
    """
    if _ttl_matches(send, table_name, attribute_name):
        return
    try:
        # DISABLING cannot be changed until it settles; DynamoDB says so with a clear error.
        send(
            "UpdateTimeToLive",
            {
                "TableName": table_name,
                "TimeToLiveSpecification": {"AttributeName": attribute_name, "Enabled": True},
            },
        )
    except (SagaValidationError, SagaStoreRequestError) as exc:
        try:
            enabled = _ttl_matches(send, table_name, attribute_name)
        except IncompatibleTableError as incompatible:
            raise incompatible from exc
        if not enabled:
            raise


def _ttl_matches(send: Any, table_name: str, attribute_name: str) -> bool:
    """Whether TTL is enabled (or enabling) on ``attribute_name``; False when it is off.

    :raises IncompatibleTableError: TTL is enabled on another attribute.
    """
    description = send("DescribeTimeToLive", {"TableName": table_name})["TimeToLiveDescription"]
    if description.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        return False
    current = description.get("AttributeName")
    if current != attribute_name:
        raise IncompatibleTableError(
            table_name, [f"TTL is enabled on {current!r}, the model needs {attribute_name!r}"]
        )
    return True
