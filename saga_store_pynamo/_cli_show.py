"""``saga-store show``, and stored values as plain JSON data for people to read (``show``
and ``list --json``): declared attributes typed by the saga name's model, the rest as stored."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from pynamodb.attributes import Attribute, BinaryAttribute, BinarySetAttribute, JSONAttribute

from . import _plain
from ._cli_options import CommandError, UsageError, store_from_args, utc_text
from ._model_info import model_info
from ._validation import MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, check_key
from .models import SagaModel
from .store import CORRELATION_INDEX, DynamoDBSagaStore


def field_value(state: SagaModel, name: str) -> Any:
    """One field of a loaded saga as plain JSON data; datetimes as UTC ``...Z`` text."""
    return typed_value(state.get_attributes()[name], getattr(state, name))


def typed_value(attribute: Attribute[Any], value: Any) -> Any:
    """A model attribute's Python value as plain JSON data, as ``list --json`` and ``show``
    print it: datetimes (``UTCDateTimeAttribute``, ``TTLAttribute``) as UTC ``...Z`` text,
    a ``JSONAttribute`` as the JSON it holds, binary as base64 of the bytes the model reads
    (legacy-encoded or not), anything else as its stored form (``plain_value``)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(attribute, JSONAttribute):
        return value
    if isinstance(attribute, BinaryAttribute) and isinstance(value, bytes):
        return _plain.base64_text(value)
    if isinstance(attribute, BinarySetAttribute) and isinstance(value, (set, frozenset)):
        return [_plain.base64_text(blob) for blob in sorted(value)]
    return plain_value({attribute.attr_type: attribute.serialize(value)})


def show_document(model: type[SagaModel] | None, item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored item as ``show`` prints it: every stored attribute, by its stored name.

    The attributes ``model`` declares are read through the model (``typed_value``); the others,
    and every attribute when ``model`` is None (``--raw``), as stored (``plain_value``). Only
    what the item holds is printed: no model default is filled in and nothing is dropped.
    """
    declared = {} if model is None else _declared(model)
    document: dict[str, Any] = {}
    for stored_name, value in item.items():
        attribute = declared.get(stored_name)
        document[stored_name] = (
            plain_value(value) if attribute is None else _read_typed(attribute, value)
        )
    return document


def _declared(model: type[SagaModel]) -> dict[str, Attribute[Any]]:
    return {attribute.attr_name: attribute for attribute in model.get_attributes().values()}


def _read_typed(attribute: Attribute[Any], value: Mapping[str, Any]) -> Any:
    if "NULL" in value:
        return None
    try:
        python_value = attribute.deserialize(attribute.get_value(dict(value)))
    except Exception:  # stored with another type than the model declares: print it as stored
        return plain_value(value)
    return typed_value(attribute, python_value)


def cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    if (args.saga_id is None) == (args.correlation_id is None):
        raise UsageError("show takes a saga id or --correlation-id ID (one of them)")
    store = store_from_args(args)
    if args.saga_id is not None:
        saga_id = args.saga_id
        item = _read_item(store, args.name, saga_id)
        where = f"id {saga_id!r}"
    else:
        ids = _ids_by_correlation(store, args.name, args.correlation_id)
        where = f"correlation id {args.correlation_id!r}"
        if len(ids) > 1:
            shown = ", ".join(ids[:_MAX_IDS_SHOWN]) + (", ..." if len(ids) > _MAX_IDS_SHOWN else "")
            raise CommandError(
                f"{len(ids)} {args.name!r} sagas have {where} in {store.table_name!r} ({shown}); "
                f"show one by its id: saga-store show {args.name} ID"
            )
        # The index is eventually consistent: the item itself comes from a consistent read.
        item = _read_item(store, args.name, ids[0]) if ids else None
    if item is None:
        raise CommandError(f"saga {args.name!r} {where} not found in {store.table_name!r}")
    document = show_document(None if args.raw else store.model_for(args.name), item)
    out.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


_MAX_IDS_SHOWN = 10


def _ids_by_correlation(
    store: DynamoDBSagaStore[Any], saga_name: str, correlation_id: str
) -> list[str]:
    """The ids of the sagas of ``saga_name`` with ``correlation_id``: Query on the
    ``correlationIndex`` GSI, every page, keys only."""
    check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
    check_key("correlation_id", correlation_id, MAX_SORT_KEY_BYTES)
    info = model_info(store.model_for(saga_name))
    request: dict[str, Any] = {
        "TableName": store.table_name,
        "IndexName": CORRELATION_INDEX,
        "KeyConditionExpression": "#n = :n AND #c = :c",
        "ProjectionExpression": "#i",
        "ExpressionAttributeNames": {
            "#n": info.hash_key,
            "#c": info.correlation_id,
            "#i": info.range_key,
        },
        "ExpressionAttributeValues": {":n": {"S": saga_name}, ":c": {"S": correlation_id}},
    }
    ids: list[str] = []
    while True:
        response = store._dispatch("Query", request)
        ids.extend(item[info.range_key]["S"] for item in response.get("Items") or [])
        start = response.get("LastEvaluatedKey")
        if not start:
            return ids
        request = {**request, "ExclusiveStartKey": start}


def _read_item(
    store: DynamoDBSagaStore[Any], saga_name: str, saga_id: str
) -> dict[str, Any] | None:
    """The stored item as DynamoDB holds it (every attribute, declared or not), or None.

    One strongly consistent GetItem, as ``get_by_id`` sends; the model would drop the
    attributes it does not declare.
    """
    check_key("saga_name", saga_name, MAX_PARTITION_KEY_BYTES)
    check_key("saga_id", saga_id, MAX_SORT_KEY_BYTES)
    info = model_info(store.model_for(saga_name))
    key = {info.hash_key: {"S": saga_name}, info.range_key: {"S": saga_id}}
    request = {"TableName": store.table_name, "Key": key, "ConsistentRead": True}
    response = store._dispatch("GetItem", request)
    item: dict[str, Any] | None = response.get("Item")
    return item


def plain_value(value: Mapping[str, Any]) -> Any:
    """A DynamoDB attribute value (``{"S": ...}``, ...) as plain JSON data (``_plain``)."""
    try:
        return _plain.plain_value(value)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
