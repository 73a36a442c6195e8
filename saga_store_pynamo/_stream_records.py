"""One DynamoDB Streams record as a typed saga change: ``SagaChange`` and ``decode_record``.

Both record shapes are read: the Lambda event record (``userIdentity`` as ``{"principalId",
"type"}``, ``ApproximateCreationDateTime`` as epoch seconds) and the record botocore returns
from the Streams API's ``GetRecords`` (``{"PrincipalId", "Type"}``, a ``datetime``). The
images become instances of the model the store serves for the saga name, through the store's
own codec (``_operations.load_state``), exactly as ``get_by_id`` loads them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Collection, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from ._model_info import model_info
from ._operations import load_state
from ._tokens import RESERVED_NAMES
from .errors import SagaDataError, SagaStoreError, SagaValidationError
from .models import SagaModel
from .store import DynamoDBSagaStore

if TYPE_CHECKING:
    from .aio import AsyncDynamoDBSagaStore

__all__ = [
    "CHANGE_KINDS",
    "ChangeKind",
    "SagaChange",
    "StreamGap",
    "StreamGapError",
    "StreamNotEnabledError",
    "decode_record",
    "sync_store",
]

#: What happened to a saga, as read from one stream record.
ChangeKind = Literal["started", "updated", "completed", "reopened", "deleted", "expired"]
#: Every ``ChangeKind``, in a saga's usual order.
CHANGE_KINDS: tuple[ChangeKind, ...] = (
    "started",
    "updated",
    "completed",
    "reopened",
    "deleted",
    "expired",
)

#: The principal of DynamoDB's TTL service in a REMOVE record's ``userIdentity``.
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
#: DynamoDB Local 3.3 writes its TTL deletions with this event name and no ``userIdentity``
#: (its Java SDK's name for an event type it does not know); read as ``expired``.
DYNAMODB_LOCAL_TTL_EVENT = "UNKNOWN_TO_SDK_VERSION"

_TABLE_OF_ARN = re.compile(r"^arn:[^:]+:dynamodb:[^:]*:[^:]*:table/([^/]+)(?:/|$)")


class StreamNotEnabledError(SagaStoreError):
    """The table has no DynamoDB stream (or it is not visible to the caller)."""

    def __init__(self, table_name: str, message: str | None = None) -> None:
        self.table_name = table_name
        super().__init__(
            message
            or f"table {table_name!r} has no stream; enable one with "
            "create_table(store, stream_view_type='NEW_AND_OLD_IMAGES') on a new table, or "
            "UpdateTable StreamSpecification on an existing one"
        )


@dataclasses.dataclass(frozen=True)
class StreamGap:
    """Changes that a resumed read could not deliver: trimmed, or in a replaced stream."""

    #: ``"trimmed"`` (older than the stream's 24-hour retention), ``"stream-replaced"``
    #: (the table's stream was disabled and enabled again; changes in between were never
    #: recorded, and those of the old stream after the checkpoint may be lost) or
    #: ``"parent-trimmed"`` (a shard's parent was trimmed before it was read).
    reason: str
    #: The stream the missing changes were in.
    stream_arn: str
    #: The shard, when the gap is within one.
    shard_id: str | None
    #: The last sequence number read before the gap, when known.
    after_sequence_number: str | None
    #: One line for an operator.
    message: str


class StreamGapError(SagaStoreError):
    """``iter_changes`` met a gap and no ``on_gap`` callback was given to accept it."""

    def __init__(self, gap: StreamGap) -> None:
        self.gap = gap
        super().__init__(
            f"checkpoint: {gap.message}; pass on_gap=... to iter_changes to continue past it"
        )


@dataclasses.dataclass(frozen=True)
class SagaChange:
    """One change of one saga, read from a DynamoDB stream record.

    ``old`` and ``new`` are instances of the model the store serves for ``saga_name``; each
    is None where the stream view or the kind provides no image (``KEYS_ONLY`` has none,
    ``NEW_IMAGE`` no ``old``, ``OLD_IMAGE`` no ``new``; ``started`` has no ``old``,
    ``deleted`` and ``expired`` no ``new``).
    """

    #: What happened. ``completed``/``reopened`` need both images (``NEW_AND_OLD_IMAGES``);
    #: with another view every MODIFY is ``updated``.
    kind: ChangeKind
    saga_name: str
    saga_id: str
    #: From the new image, else the old one; None with ``KEYS_ONLY``.
    correlation_id: str | None
    #: The saga's version after the change (before it, for a removal); None with ``KEYS_ONLY``.
    version: int | None
    old: SagaModel | None
    new: SagaModel | None
    #: When DynamoDB wrote the record (UTC; DynamoDB Local rounds it down to the minute).
    event_time: datetime | None
    #: The record's sequence number (its position in its shard).
    sequence_number: str
    #: The record as received, for anything else (``eventID``, ``SizeBytes``, the raw images).
    record: Mapping[str, Any] = dataclasses.field(repr=False, compare=False)

    @property
    def stream_view_type(self) -> str | None:
        """The view of the stream the record came from (``NEW_AND_OLD_IMAGES``, ...)."""
        view = self.record.get("dynamodb", {}).get("StreamViewType")
        return view if isinstance(view, str) else None

    def changed_fields(self) -> dict[str, tuple[Any, Any]]:
        """The fields this change set or altered, as ``{name: (old value, new value)}``.

        Compares the raw images attribute by attribute, leaving out ``updatedAt``, the version
        and the store's write tokens. Declared attributes are named by their Python names,
        others by their DynamoDB names; values stay in DynamoDB JSON (``{"S": "paid"}``), None
        where the attribute is absent. ``started`` lists every attribute of the new image
        except the keys, ``deleted``/``expired`` those of the old one; empty without images.
        """
        images = self.record.get("dynamodb", {})
        old_image: Mapping[str, Any] = images.get("OldImage") or {}
        new_image: Mapping[str, Any] = images.get("NewImage") or {}
        state = self.new if self.new is not None else self.old
        if state is None:
            return {}
        model = type(state)
        info = model_info(model)
        skip = {info.hash_key, info.range_key, info.updated_at, info.version, *RESERVED_NAMES}
        names = {a.attr_name: name for name, a in model.get_attributes().items()}
        changed: dict[str, tuple[Any, Any]] = {}
        for attribute in [*old_image, *(n for n in new_image if n not in old_image)]:
            if attribute in skip:
                continue
            before, after = old_image.get(attribute), new_image.get(attribute)
            if before != after:
                changed[names.get(attribute, attribute)] = (before, after)
        return changed


def sync_store(store: Any, field: str = "store") -> DynamoDBSagaStore[Any]:
    """The sync store behind ``store`` (an ``AsyncDynamoDBSagaStore`` hands over its ``sync``)."""
    if isinstance(store, DynamoDBSagaStore):
        return store
    inner = getattr(store, "sync", None)
    if isinstance(inner, DynamoDBSagaStore):
        return inner
    raise SagaValidationError(
        field, f"must be a DynamoDBSagaStore or an AsyncDynamoDBSagaStore, got {type(store)!r}"
    )


def table_of_arn(arn: Any) -> str | None:
    """The table name in a table or stream ARN, or None."""
    match = _TABLE_OF_ARN.match(arn) if isinstance(arn, str) else None
    return match.group(1) if match else None


def decode_record(
    record: Mapping[str, Any],
    store: DynamoDBSagaStore[Any] | AsyncDynamoDBSagaStore[Any],
    *,
    saga_names: Collection[str] | None = None,
) -> SagaChange | None:
    """The saga change one DynamoDB Streams record describes, or None when it is not one.

    Accepts a Lambda event record and a record of the Streams API (botocore's
    ``GetRecords``) alike. Returns None, without raising, for a record of another table (by
    its ``eventSourceARN``, when it has one), an item that is not a saga (no string
    ``sagaName``/``sagaId`` keys), a saga name outside ``saga_names`` (when given), and an
    event name other than INSERT, MODIFY and REMOVE. ``expired`` is a REMOVE made by
    DynamoDB's TTL service; DynamoDB Local's own TTL record (event name
    ``UNKNOWN_TO_SDK_VERSION``) is read as one too.

    :param store: a ``DynamoDBSagaStore`` or ``AsyncDynamoDBSagaStore``; its table name and
        its model for each saga name are used. Nothing is sent.
    :param saga_names: only these saga names; None for all.
    :raises SagaValidationError: ``record`` is not a stream record (``field`` names what is
        missing).
    :raises SagaDataError: an image cannot be loaded as the saga name's model.
    """
    sync = sync_store(store)
    if not isinstance(record, Mapping):
        raise SagaValidationError("record", f"must be a mapping, got {type(record).__name__}")
    body = record.get("dynamodb")
    event_name = record.get("eventName")
    if not isinstance(body, Mapping) or not isinstance(event_name, str):
        raise SagaValidationError(
            "record", "is not a DynamoDB stream record: it needs 'eventName' and 'dynamodb'"
        )
    source_table = table_of_arn(record.get("eventSourceARN"))
    if source_table is not None and source_table != sync.table_name:
        return None
    info = model_info(sync.model)
    keys = body.get("Keys")
    if not isinstance(keys, Mapping):
        raise SagaValidationError("record['dynamodb']['Keys']", "is missing")
    saga_name = _string(keys.get(info.hash_key))
    saga_id = _string(keys.get(info.range_key))
    if saga_name is None or saga_id is None:
        return None  # another kind of item sharing the table
    if saga_names is not None and saga_name not in saga_names:
        return None
    sequence_number = body.get("SequenceNumber")
    if not isinstance(sequence_number, str) or not sequence_number:
        raise SagaValidationError("record['dynamodb']['SequenceNumber']", "is missing")

    model = sync.model_for(saga_name)
    model_details = model_info(model)
    old_image, new_image = body.get("OldImage"), body.get("NewImage")
    old = _load(model_details, old_image, saga_name, saga_id, "OldImage")
    new = _load(model_details, new_image, saga_name, saga_id, "NewImage")

    kind: ChangeKind
    if event_name == "INSERT":
        kind = "started"
    elif event_name == "MODIFY":
        kind = "updated"
        if isinstance(old_image, Mapping) and isinstance(new_image, Mapping):
            was = _completed(old_image, model_details.completed)
            now = _completed(new_image, model_details.completed)
            if now and not was:
                kind = "completed"
            elif was and not now:
                kind = "reopened"
    elif event_name == "REMOVE":
        kind = "expired" if _by_ttl(record) else "deleted"
    elif event_name == DYNAMODB_LOCAL_TTL_EVENT:
        kind = "expired"
    else:
        return None

    images = [i for i in (new_image, old_image) if isinstance(i, Mapping)]
    correlation_id = next(
        (c for c in (_string(i.get(model_details.correlation_id)) for i in images) if c), None
    )
    version = next(
        (v for v in (_number(i.get(model_details.version)) for i in images) if v is not None),
        None,
    )
    return SagaChange(
        kind=kind,
        saga_name=saga_name,
        saga_id=saga_id,
        correlation_id=correlation_id,
        version=version,
        old=old,
        new=new,
        event_time=_event_time(body.get("ApproximateCreationDateTime")),
        sequence_number=sequence_number,
        record=record,
    )


def _load(info: Any, image: Any, saga_name: str, saga_id: str, which: str) -> SagaModel | None:
    if image is None:
        return None
    if not isinstance(image, Mapping):
        raise SagaDataError(saga_name, saga_id, which, "is not a map of attributes")
    try:
        attributes = {name: _blobs_as_bytes(value) for name, value in image.items()}
    except (binascii.Error, TypeError, ValueError) as exc:
        raise SagaDataError(
            saga_name, saga_id, which, f"has a binary value that is not base64: {exc}"
        ) from exc
    return load_state(info, attributes)


def _blobs_as_bytes(value: Any) -> Any:
    """An attribute value with binary as bytes, as botocore gives it: the Lambda runtime
    delivers ``B``/``BS`` as base64 text (JSON), the Streams API as bytes. A new value: the
    caller's record is never changed."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    ((tag, data),) = value.items()
    if tag == "B" and isinstance(data, str):
        return {"B": base64.b64decode(data, validate=True)}
    if tag == "BS" and isinstance(data, list):
        return {
            "BS": [base64.b64decode(b, validate=True) if isinstance(b, str) else b for b in data]
        }
    if tag == "M" and isinstance(data, Mapping):
        return {"M": {name: _blobs_as_bytes(each) for name, each in data.items()}}
    if tag == "L" and isinstance(data, list):
        return {"L": [_blobs_as_bytes(each) for each in data]}
    return value


def _string(value: Any) -> str | None:
    text = value.get("S") if isinstance(value, Mapping) else None
    return text if isinstance(text, str) else None


def _number(value: Any) -> int | None:
    text = value.get("N") if isinstance(value, Mapping) else None
    try:
        return int(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _completed(image: Mapping[str, Any], name: str) -> bool:
    value = image.get(name)
    return isinstance(value, Mapping) and value.get("BOOL") is True


def _by_ttl(record: Mapping[str, Any]) -> bool:
    """Whether a REMOVE was made by DynamoDB's TTL service (either record shape)."""
    identity = record.get("userIdentity")
    if not isinstance(identity, Mapping):
        return False
    kind = identity.get("type", identity.get("Type"))
    principal = identity.get("principalId", identity.get("PrincipalId"))
    return bool(kind == "Service" and principal == TTL_PRINCIPAL)


def _event_time(value: Any) -> datetime | None:
    """``ApproximateCreationDateTime`` in UTC: epoch seconds (Lambda) or a datetime (API)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    return None
